//! The normalized host model and the small enums around it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Error returned when a string names no variant of one of the model's enums.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}, expected one of: {expected}")]
pub struct ParseEnumError {
    // Built by `named_enum!`, which other modules of the crate use too.
    pub(crate) what: &'static str,
    pub(crate) value: String,
    pub(crate) expected: &'static str,
}

/// Implements `as_str`, `Display`, `FromStr` and `ALL` for a fieldless enum whose serde
/// names are given once, so that the wire names and the string names cannot drift apart.
macro_rules! named_enum {
    ($ty:ident, $what:literal, [$($variant:ident => $name:literal),+ $(,)?]) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The name used on the wire and in the store.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(ParseEnumError {
                        what: $what,
                        value: s.to_owned(),
                        expected: concat!($($name, " "),+),
                    }),
                }
            }
        }
    };
}

/// A cloud vendor (or on-premises virtualization platform) cmdb can list hosts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum Vendor {
    /// Alibaba Cloud ECS.
    Aliyun,
    /// Tencent Cloud CVM.
    Tencent,
    /// Huawei Cloud ECS.
    Huawei,
    /// VMware vSphere (vCenter or ESXi).
    Vsphere,
}

named_enum!(Vendor, "vendor", [
    Aliyun => "aliyun",
    Tencent => "tencent",
    Huawei => "huawei",
    Vsphere => "vsphere",
]);

impl Vendor {
    /// Whether a sync of this vendor needs a region (vSphere lists a whole vCenter).
    pub const fn requires_region(self) -> bool {
        !matches!(self, Vendor::Vsphere)
    }
}

/// The kind of resource a sync lists.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum ResourceType {
    /// Virtual machines.
    #[default]
    Host,
    /// Managed relational database instances ([`Database`](crate::Database)).
    Rds,
}

named_enum!(ResourceType, "resource type", [Host => "host", Rds => "rds"]);

/// Normalized lifecycle state of a host; the vendor's own word is kept in
/// [`Host::raw_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum HostStatus {
    Pending,
    CreateFailed,
    Starting,
    Running,
    Stopping,
    Stopped,
    Rebooting,
    Suspended,
    Error,
    Shutdown,
    Deleting,
    Destroyed,
    #[default]
    Unknown,
}

named_enum!(HostStatus, "host status", [
    Pending => "PENDING",
    CreateFailed => "CREATE_FAILED",
    Starting => "STARTING",
    Running => "RUNNING",
    Stopping => "STOPPING",
    Stopped => "STOPPED",
    Rebooting => "REBOOTING",
    Suspended => "SUSPENDED",
    Error => "ERROR",
    Shutdown => "SHUTDOWN",
    Deleting => "DELETING",
    Destroyed => "DESTROYED",
    Unknown => "UNKNOWN",
]);

/// Normalized billing mode of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum PayMode {
    /// Paid in advance for a period (subscription).
    Prepaid,
    /// Pay as you go.
    Postpaid,
    /// Spot / preemptible.
    Spot,
    /// Covered by a reservation.
    Reserved,
    /// Not known or not applicable (vSphere).
    #[default]
    Unknown,
}

named_enum!(PayMode, "pay mode", [
    Prepaid => "PREPAID",
    Postpaid => "POSTPAID",
    Spot => "SPOT",
    Reserved => "RESERVED",
    Unknown => "UNKNOWN",
]);

/// Operating system family of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum OsType {
    /// Linux and other Unix-likes reported as linux.
    Linux,
    /// Microsoft Windows.
    Windows,
    /// Anything else, or unknown.
    #[default]
    Other,
}

named_enum!(OsType, "os type", [Linux => "linux", Windows => "windows", Other => "other"]);

impl OsType {
    /// Classifies a vendor's free-form OS word ("linux", "Windows", "CentOS", ...).
    pub fn from_vendor(word: &str) -> OsType {
        let w = word.trim().to_ascii_lowercase();
        if w.contains("windows") || w.starts_with("win") {
            OsType::Windows
        } else if w.is_empty() || w == "other" || w == "unknown" {
            OsType::Other
        } else if [
            "linux",
            "centos",
            "ubuntu",
            "debian",
            "redhat",
            "rhel",
            "suse",
            "sles",
            "fedora",
            "alma",
            "rocky",
            "anolis",
            "alinux",
            "aliyun",
            "tencentos",
            "tlinux",
            "euler",
            "openeuler",
            "coreos",
            "oracle",
            "freebsd",
            "kylin",
            "uos",
        ]
        .iter()
        .any(|k| w.contains(k))
        {
            OsType::Linux
        } else {
            OsType::Other
        }
    }
}

/// One virtual machine as cmdb stores it, whatever vendor it came from.
///
/// Fields a vendor does not report are `None` or empty. `secret_id` records which secret
/// last saw the host and, like the store's bookkeeping, is not part of
/// [`content_hash`](Host::content_hash). Build one with [`Host::new`] and set the fields
/// the vendor reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Host {
    /// Where the host lives.
    pub vendor: Vendor,
    /// The vendor's id of the host (vSphere: `config.instanceUuid`).
    pub instance_id: String,
    /// The secret that last saw the host.
    #[serde(default)]
    pub secret_id: String,
    /// Region (vSphere: the vCenter host).
    pub region: String,
    /// Availability zone (vSphere: the datacenter name).
    #[serde(default)]
    pub zone: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Free-form description.
    #[serde(default)]
    pub description: Option<String>,
    /// Guest hostname.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Normalized status.
    #[serde(default)]
    pub status: HostStatus,
    /// The vendor's own status word.
    #[serde(default)]
    pub raw_status: String,
    /// The vendor's instance type or flavor, e.g. `ecs.g6.large`.
    #[serde(default)]
    pub instance_type: Option<String>,
    /// Number of vCPUs.
    #[serde(default)]
    pub cpu: Option<u32>,
    /// Memory in MiB.
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// Number of GPUs, where known.
    #[serde(default)]
    pub gpu_count: Option<u32>,
    /// GPU model, where known.
    #[serde(default)]
    pub gpu_spec: Option<String>,
    /// Operating system family.
    #[serde(default)]
    pub os_type: OsType,
    /// Operating system name as the vendor reports it.
    #[serde(default)]
    pub os_name: Option<String>,
    /// Image the host was created from.
    #[serde(default)]
    pub image_id: Option<String>,
    /// Public addresses, elastic IPs included.
    #[serde(default)]
    pub public_ips: Vec<String>,
    /// Private addresses.
    #[serde(default)]
    pub private_ips: Vec<String>,
    /// Billing mode.
    #[serde(default)]
    pub pay_mode: PayMode,
    /// Creation time (UTC).
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// Expiry time (UTC); `None` when the host does not expire.
    #[serde(default)]
    pub expire_at: Option<DateTime<Utc>>,
    /// Tags as a string map.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// VPC (or network) id.
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// Security group ids.
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Key pair names or ids.
    #[serde(default)]
    pub key_pairs: Vec<String>,
    /// Serial number or BIOS uuid.
    #[serde(default)]
    pub serial_number: Option<String>,
    /// Vendor fields worth keeping that have no column.
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Host {
    /// A host with the identifying fields set and everything else unknown.
    pub fn new(vendor: Vendor, instance_id: impl Into<String>, region: impl Into<String>) -> Host {
        Host {
            vendor,
            instance_id: instance_id.into(),
            secret_id: String::new(),
            region: region.into(),
            zone: None,
            name: String::new(),
            description: None,
            hostname: None,
            status: HostStatus::Unknown,
            raw_status: String::new(),
            instance_type: None,
            cpu: None,
            memory_mib: None,
            gpu_count: None,
            gpu_spec: None,
            os_type: OsType::Other,
            os_name: None,
            image_id: None,
            public_ips: Vec::new(),
            private_ips: Vec::new(),
            pay_mode: PayMode::Unknown,
            created_at: None,
            expire_at: None,
            tags: BTreeMap::new(),
            vpc_id: None,
            security_groups: Vec::new(),
            key_pairs: Vec::new(),
            serial_number: None,
            extra: BTreeMap::new(),
        }
    }

    /// Whether the host contains `keyword` in its name, instance id or any IP address
    /// (case-insensitive for the name). An empty keyword matches every host.
    pub fn matches_keyword(&self, keyword: &str) -> bool {
        if keyword.is_empty() {
            return true;
        }
        let lower = keyword.to_lowercase();
        self.name.to_lowercase().contains(&lower)
            || self.instance_id.contains(keyword)
            || self
                .public_ips
                .iter()
                .chain(&self.private_ips)
                .any(|ip| ip.contains(keyword))
    }
}

/// One page of hosts as a provider lists them.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct HostPage {
    /// The hosts of this page.
    pub hosts: Vec<Host>,
    /// The total number of hosts the vendor reports for the whole listing, when it does.
    pub total: Option<u64>,
    /// Set on the last page of an offset-paged listing that moved while it was paged
    /// (the vendor's total changed between pages, or the hosts listed differ from it):
    /// offsets shifted, so hosts may have been skipped. Says what was seen. A sync then
    /// releases only hosts the vendor confirms gone by id, and without a by-id lookup
    /// releases nothing and answers `complete: false`.
    pub moved: Option<String>,
    /// Records of this page that could not be mapped to hosts (no id, a broken field):
    /// each is a failed detail of the sync, which then releases nothing. Never dropped
    /// silently.
    pub failed: Vec<FailedRecord>,
}

impl HostPage {
    /// A page of `hosts` with the vendor's reported total, if any.
    pub fn new(hosts: Vec<Host>, total: Option<u64>) -> HostPage {
        HostPage {
            hosts,
            total,
            moved: None,
            failed: Vec::new(),
        }
    }

    /// The page with these records that could not be mapped.
    pub fn with_failed(mut self, failed: Vec<FailedRecord>) -> HostPage {
        self.failed = failed;
        self
    }
}

/// A vendor record that could not be mapped to a [`Host`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailedRecord {
    /// The vendor's id of the record, when it has one.
    pub instance_id: Option<String>,
    /// Why it could not be mapped, naming whatever identifies the record.
    pub reason: String,
}

impl FailedRecord {
    /// A record with this id (if known) that failed for `reason`.
    pub fn new(instance_id: Option<String>, reason: impl Into<String>) -> FailedRecord {
        FailedRecord {
            instance_id,
            reason: reason.into(),
        }
    }
}

/// The part of the inventory one sync owns: resources of one type (hosts, database
/// instances) of one vendor and region, seen through one secret. Releases never reach
/// outside a scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SyncScope {
    /// The secret the sync lists with.
    pub secret_id: String,
    /// The secret's vendor.
    pub vendor: Vendor,
    /// The region listed (vSphere: the vCenter host).
    pub region: String,
    /// What is listed.
    pub resource_type: ResourceType,
}

impl SyncScope {
    /// A scope of `resource_type` in `region` of `vendor`, listed with `secret_id`.
    pub fn new(
        secret_id: impl Into<String>,
        vendor: Vendor,
        region: impl Into<String>,
        resource_type: ResourceType,
    ) -> Self {
        SyncScope {
            secret_id: secret_id.into(),
            vendor,
            region: region.into(),
            resource_type,
        }
    }

    /// A host scope.
    pub fn hosts(secret_id: impl Into<String>, vendor: Vendor, region: impl Into<String>) -> Self {
        SyncScope::new(secret_id, vendor, region, ResourceType::Host)
    }

    /// A scope of managed database instances ([`ResourceType::Rds`]).
    pub fn databases(
        secret_id: impl Into<String>,
        vendor: Vendor,
        region: impl Into<String>,
    ) -> Self {
        SyncScope::new(secret_id, vendor, region, ResourceType::Rds)
    }

    /// Checks that a sync of this scope may store `host`: it has an instance id and the
    /// scope's vendor and region. The error is the reason, for a
    /// [`UpsertOutcome::Failed`]; every store gives the same reasons.
    pub fn check_host(&self, host: &Host) -> Result<(), String> {
        self.check_record("host", &host.instance_id, host.vendor, &host.region)
    }

    /// Whether `host` belongs to this scope.
    pub fn contains(&self, host: &Host) -> bool {
        self.contains_record(
            ResourceType::Host,
            host.vendor,
            &host.region,
            &host.secret_id,
        )
    }

    /// [`check_host`](Self::check_host) for a database instance.
    pub fn check_database(&self, database: &crate::Database) -> Result<(), String> {
        self.check_record(
            "database",
            &database.instance_id,
            database.vendor,
            &database.region,
        )
    }

    /// Whether `database` belongs to this scope (a scope of [`ResourceType::Rds`]).
    pub fn contains_database(&self, database: &crate::Database) -> bool {
        self.contains_record(
            ResourceType::Rds,
            database.vendor,
            &database.region,
            &database.secret_id,
        )
    }

    /// The checks of [`check_host`](Self::check_host), for a record of any kind (`what`
    /// names it in the reason).
    fn check_record(
        &self,
        what: &str,
        instance_id: &str,
        vendor: Vendor,
        region: &str,
    ) -> Result<(), String> {
        if instance_id.trim().is_empty() {
            return Err("instance_id is empty".to_owned());
        }
        if vendor != self.vendor {
            return Err(format!(
                "{what} vendor {vendor} is outside the scope's vendor {}",
                self.vendor
            ));
        }
        if region != self.region {
            return Err(format!(
                "{what} region {region:?} is outside the scope's region {:?}",
                self.region
            ));
        }
        Ok(())
    }

    /// Whether a record of `kind` with these fields belongs to this scope.
    fn contains_record(
        &self,
        kind: ResourceType,
        vendor: Vendor,
        region: &str,
        secret_id: &str,
    ) -> bool {
        self.resource_type == kind
            && vendor == self.vendor
            && region == self.region
            && secret_id == self.secret_id
    }
}

impl fmt::Display for SyncScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.secret_id, self.vendor, self.region, self.resource_type
        )
    }
}

/// What happened to one host of an upserted batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum UpsertOutcome {
    /// The host was not in the store.
    Created,
    /// The host was in the store with another content hash (or was released).
    Updated,
    /// The host was in the store with the same content hash; only `last_seen_at` moved.
    Unchanged,
    /// The host could not be stored; the rest of the batch is unaffected.
    Failed(String),
}

impl UpsertOutcome {
    /// Whether the host is stored.
    pub fn is_success(&self) -> bool {
        !matches!(self, UpsertOutcome::Failed(_))
    }
}

/// A host as the store keeps it, with its bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct StoredHost {
    /// The host as last seen.
    #[serde(flatten)]
    pub host: Host,
    /// [`Host::content_hash`] of the stored host.
    pub content_hash: String,
    /// When a sync first saw the host.
    pub first_seen_at: DateTime<Utc>,
    /// When a sync last saw the host.
    pub last_seen_at: DateTime<Utc>,
    /// When a complete sync of its scope no longer listed it; `None` while active.
    pub released_at: Option<DateTime<Utc>>,
}

impl StoredHost {
    /// An active stored host with its stored content hash and the times syncs first and
    /// last saw it: what a store reads back from its row.
    pub fn new(
        host: Host,
        content_hash: impl Into<String>,
        first_seen_at: DateTime<Utc>,
        last_seen_at: DateTime<Utc>,
    ) -> StoredHost {
        StoredHost {
            host,
            content_hash: content_hash.into(),
            first_seen_at,
            last_seen_at,
            released_at: None,
        }
    }

    /// Sets when the host was released (`None`: it is active).
    pub fn with_released_at(mut self, released_at: Option<DateTime<Utc>>) -> StoredHost {
        self.released_at = released_at;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_match_design() {
        assert_eq!(
            serde_json::to_string(&Vendor::Vsphere).unwrap(),
            "\"vsphere\""
        );
        assert_eq!(
            serde_json::to_string(&HostStatus::CreateFailed).unwrap(),
            "\"CREATE_FAILED\""
        );
        assert_eq!(
            serde_json::to_string(&PayMode::Postpaid).unwrap(),
            "\"POSTPAID\""
        );
        assert_eq!(
            serde_json::to_string(&OsType::Windows).unwrap(),
            "\"windows\""
        );
        assert_eq!(
            serde_json::to_string(&ResourceType::Rds).unwrap(),
            "\"rds\""
        );
        for s in HostStatus::ALL {
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(s.as_str().parse::<HostStatus>().unwrap(), *s);
        }
        for v in Vendor::ALL {
            assert_eq!(serde_json::to_string(v).unwrap(), format!("\"{v}\""));
            assert_eq!(v.as_str().parse::<Vendor>().unwrap(), *v);
        }
    }

    #[test]
    fn unknown_enum_names_are_errors_naming_the_value() {
        let err = "azure".parse::<Vendor>().unwrap_err();
        assert!(err.to_string().contains("\"azure\""), "{err}");
        assert!(err.to_string().contains("aliyun"), "{err}");
        assert!(serde_json::from_str::<Vendor>("\"Aliyun\"").is_err());
    }

    #[test]
    fn os_type_from_vendor_words() {
        assert_eq!(OsType::from_vendor("linux"), OsType::Linux);
        assert_eq!(OsType::from_vendor("CentOS 7.9 64bit"), OsType::Linux);
        assert_eq!(OsType::from_vendor("Windows Server 2019"), OsType::Windows);
        assert_eq!(OsType::from_vendor(""), OsType::Other);
        assert_eq!(OsType::from_vendor("Plan9"), OsType::Other);
    }

    #[test]
    fn host_round_trips_through_json() {
        let mut h = Host::new(Vendor::Tencent, "ins-1", "ap-guangzhou");
        h.tags.insert("env".into(), "prod".into());
        h.extra
            .insert("RestrictState".into(), serde_json::json!("NORMAL"));
        h.created_at = Some("2024-01-02T03:04:05Z".parse().unwrap());
        let json = serde_json::to_string(&h).unwrap();
        let back: Host = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn keyword_matches_name_id_and_ips() {
        let mut h = Host::new(Vendor::Aliyun, "i-abc", "r");
        h.name = "Web-Front".into();
        h.private_ips.push("10.1.2.3".into());
        assert!(h.matches_keyword("web"));
        assert!(h.matches_keyword("i-ab"));
        assert!(h.matches_keyword("10.1.2"));
        assert!(!h.matches_keyword("db"));
    }

    #[test]
    fn scope_contains_only_its_hosts() {
        let scope = SyncScope::hosts("s1", Vendor::Aliyun, "cn-hangzhou");
        let mut h = Host::new(Vendor::Aliyun, "i-1", "cn-hangzhou");
        h.secret_id = "s1".into();
        assert!(scope.contains(&h));
        h.secret_id = "s2".into();
        assert!(!scope.contains(&h));
    }
}
