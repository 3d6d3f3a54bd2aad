//! The normalized database model: a managed relational database instance (Alibaba Cloud
//! RDS, Tencent Cloud CDB, Huawei Cloud RDS), the second resource type after hosts.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::hash::Feed;
use crate::model::{ParseEnumError, PayMode, Vendor};

/// Normalized lifecycle state of a database instance; the vendor's own word is kept in
/// [`Database::raw_status`].
///
/// The vendors' words map as follows (anything else is [`Unknown`](Self::Unknown)):
///
/// | normalized | Alibaba Cloud RDS | Tencent Cloud CDB | Huawei Cloud RDS |
/// |---|---|---|---|
/// | CREATING | Creating, GuardDBInstanceCreating, INS_CLONING | 0 | BUILD |
/// | RUNNING | Running | 1 | ACTIVE |
/// | MODIFYING | DBInstanceClassChanging, EngineVersionUpgrading, DBInstanceNetTypeChanging, TRANSING, TransingToOthers, GuardSwitching | | MODIFYING, MODIFYING INSTANCE TYPE, MODIFYING DATABASE PORT, SWITCHOVER, MIGRATING |
/// | REBOOTING | Rebooting | | REBOOTING |
/// | RESTORING | Restoring, Importing, ImportingFromOthers | | RESTORING |
/// | BACKING_UP | | | BACKING UP |
/// | STORAGE_FULL | | | STORAGE FULL |
/// | ISOLATING | | 4 | |
/// | ISOLATED | | 5 | FROZEN |
/// | ERROR | | | FAILED |
/// | DELETING | Deleting | | |
/// | RELEASED | Released | | |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum DatabaseStatus {
    /// Being created (or cloned).
    Creating,
    /// Serving.
    Running,
    /// A change of class, version, network, port or node is under way; it still serves.
    Modifying,
    /// Restarting.
    Rebooting,
    /// Data is being restored or imported.
    Restoring,
    /// A backup is being taken.
    BackingUp,
    /// The disk is full: the instance accepts no more writes.
    StorageFull,
    /// Stopped by its owner.
    Stopped,
    /// Being isolated (expired, unpaid or deleted into a recycle bin).
    Isolating,
    /// Isolated or frozen: not serving, recoverable for a while.
    Isolated,
    /// Failed.
    Error,
    /// Being deleted.
    Deleting,
    /// Released: gone from the vendor.
    Released,
    /// A state the vendor reported that has no normalized name.
    #[default]
    Unknown,
}

named_enum!(DatabaseStatus, "database status", [
    Creating => "CREATING",
    Running => "RUNNING",
    Modifying => "MODIFYING",
    Rebooting => "REBOOTING",
    Restoring => "RESTORING",
    BackingUp => "BACKING_UP",
    StorageFull => "STORAGE_FULL",
    Stopped => "STOPPED",
    Isolating => "ISOLATING",
    Isolated => "ISOLATED",
    Error => "ERROR",
    Deleting => "DELETING",
    Released => "RELEASED",
    Unknown => "UNKNOWN",
]);

/// The database engine of an instance.
///
/// An open set: the engines every vendor offers have a variant, and any other engine a
/// vendor reports is kept, lowercased, in [`Other`](Self::Other) rather than lost or
/// refused. On the wire and in the store it is one lowercase string: `mysql`,
/// `postgresql`, `sqlserver`, `mariadb`, or the other engine's word. Build one with
/// [`DatabaseEngine::from_vendor`] (or `parse`, which is the same), so that a known
/// engine never ends up in `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
#[non_exhaustive]
pub enum DatabaseEngine {
    /// MySQL (Tencent Cloud CDB is always MySQL).
    MySql,
    /// PostgreSQL.
    PostgreSql,
    /// Microsoft SQL Server.
    SqlServer,
    /// MariaDB.
    MariaDb,
    /// Any other engine, as the vendor names it, trimmed and lowercased (never empty,
    /// never a name the other variants have).
    Other(String),
    /// Not reported.
    #[default]
    Unknown,
}

impl DatabaseEngine {
    /// Classifies a vendor's engine word (`MySQL`, `SQLServer`, `PostgreSQL`, `MariaDB`,
    /// `postgres`, `mssql`, ...), ignoring case, spaces, `-` and `_`.
    pub fn from_vendor(word: &str) -> DatabaseEngine {
        let key: String = word
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '_'))
            .flat_map(char::to_lowercase)
            .collect();
        match key.as_str() {
            "" | "unknown" => DatabaseEngine::Unknown,
            "mysql" => DatabaseEngine::MySql,
            "postgresql" | "postgres" | "pgsql" | "pg" => DatabaseEngine::PostgreSql,
            "sqlserver" | "mssql" | "microsoftsqlserver" => DatabaseEngine::SqlServer,
            "mariadb" => DatabaseEngine::MariaDb,
            _ => DatabaseEngine::Other(word.trim().to_lowercase()),
        }
    }

    /// The name used on the wire and in the store.
    pub fn as_str(&self) -> &str {
        match self {
            DatabaseEngine::MySql => "mysql",
            DatabaseEngine::PostgreSql => "postgresql",
            DatabaseEngine::SqlServer => "sqlserver",
            DatabaseEngine::MariaDb => "mariadb",
            DatabaseEngine::Other(word) => word,
            DatabaseEngine::Unknown => "unknown",
        }
    }
}

impl fmt::Display for DatabaseEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for DatabaseEngine {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DatabaseEngine::from_vendor(s))
    }
}

impl From<String> for DatabaseEngine {
    fn from(s: String) -> Self {
        DatabaseEngine::from_vendor(&s)
    }
}

impl From<DatabaseEngine> for String {
    fn from(engine: DatabaseEngine) -> Self {
        match engine {
            DatabaseEngine::Other(word) => word,
            known => known.as_str().to_owned(),
        }
    }
}

/// Whether an endpoint is reachable inside the VPC only or from the internet.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum EndpointKind {
    /// Inside the VPC (or the vendor's classic network).
    #[default]
    Private,
    /// From the internet.
    Public,
}

named_enum!(EndpointKind, "endpoint kind", [Private => "private", Public => "public"]);

/// One address a database instance is reached at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct DatabaseEndpoint {
    /// Private or public.
    pub kind: EndpointKind,
    /// An IP address or a domain name.
    pub host: String,
    /// The port, when the vendor reports it.
    #[serde(default)]
    pub port: Option<u16>,
}

impl DatabaseEndpoint {
    /// An endpoint of `kind` at `host` and `port`.
    pub fn new(kind: EndpointKind, host: impl Into<String>, port: Option<u16>) -> Self {
        DatabaseEndpoint {
            kind,
            host: host.into(),
            port,
        }
    }

    /// A private endpoint.
    pub fn private(host: impl Into<String>, port: Option<u16>) -> Self {
        DatabaseEndpoint::new(EndpointKind::Private, host, port)
    }

    /// A public endpoint.
    pub fn public(host: impl Into<String>, port: Option<u16>) -> Self {
        DatabaseEndpoint::new(EndpointKind::Public, host, port)
    }
}

/// One managed database instance as cmdb stores it, whatever vendor it came from.
///
/// Fields a vendor does not report are `None` or empty. Units are normalized: memory in
/// MiB (Huawei reports GB, Alibaba and Tencent MB), storage in GB, times in UTC (Tencent
/// reports China Standard Time without an offset). `secret_id` records which secret last
/// saw the instance and is not part of [`content_hash`](Database::content_hash). Build
/// one with [`Database::new`] and the `with_*` setters, or set the public fields.
///
/// ```
/// use cmdb_core::{Database, DatabaseEndpoint, DatabaseEngine, DatabaseStatus, Vendor};
///
/// let db = Database::new(Vendor::Huawei, "1a2b3c", "cn-north-4")
///     .with_name("orders")
///     .with_engine(DatabaseEngine::from_vendor("MySQL"), Some("8.0"))
///     .with_status(DatabaseStatus::Running, "ACTIVE")
///     .with_memory_mib(8 * 1024)
///     .with_endpoint(DatabaseEndpoint::private("192.168.0.8", Some(3306)));
/// assert_eq!(db.engine.as_str(), "mysql");
/// let mut same = db.clone();
/// same.secret_id = "another-secret".into();
/// assert_eq!(db.content_hash(), same.content_hash());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Database {
    /// Where the instance lives.
    pub vendor: Vendor,
    /// The vendor's id of the instance.
    pub instance_id: String,
    /// The secret that last saw the instance.
    #[serde(default)]
    pub secret_id: String,
    /// Region.
    pub region: String,
    /// Availability zone (of the primary node).
    #[serde(default)]
    pub zone: Option<String>,
    /// Display name (Alibaba Cloud: the description).
    #[serde(default)]
    pub name: String,
    /// Database engine.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "mysql"))]
    pub engine: DatabaseEngine,
    /// Engine version as the vendor reports it, e.g. `5.7`, `8.0`, `14`.
    #[serde(default)]
    pub engine_version: Option<String>,
    /// Normalized status.
    #[serde(default)]
    pub status: DatabaseStatus,
    /// The vendor's own status word (Tencent: its integer, as text).
    #[serde(default)]
    pub raw_status: String,
    /// The vendor's instance class or flavor, e.g. `mysql.n2.medium.1`.
    #[serde(default)]
    pub instance_class: Option<String>,
    /// Number of vCPUs.
    #[serde(default)]
    pub cpu: Option<u32>,
    /// Memory in MiB.
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// Storage size in GB.
    #[serde(default)]
    pub storage_gb: Option<u64>,
    /// Storage type as the vendor names it, e.g. `cloud_essd`, `CLOUD_SSD`, `ULTRAHIGH`.
    #[serde(default)]
    pub storage_type: Option<String>,
    /// Addresses the instance is reached at.
    #[serde(default)]
    pub endpoints: Vec<DatabaseEndpoint>,
    /// VPC id.
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// Billing mode.
    #[serde(default)]
    pub pay_mode: PayMode,
    /// Creation time (UTC).
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// Expiry time (UTC); `None` when the instance does not expire.
    #[serde(default)]
    pub expire_at: Option<DateTime<Utc>>,
    /// Tags as a string map.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Vendor fields worth keeping that have no column (role, primary instance id, ...).
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Database {
    /// An instance with the identifying fields set and everything else unknown.
    pub fn new(
        vendor: Vendor,
        instance_id: impl Into<String>,
        region: impl Into<String>,
    ) -> Database {
        Database {
            vendor,
            instance_id: instance_id.into(),
            secret_id: String::new(),
            region: region.into(),
            zone: None,
            name: String::new(),
            engine: DatabaseEngine::Unknown,
            engine_version: None,
            status: DatabaseStatus::Unknown,
            raw_status: String::new(),
            instance_class: None,
            cpu: None,
            memory_mib: None,
            storage_gb: None,
            storage_type: None,
            endpoints: Vec::new(),
            vpc_id: None,
            pay_mode: PayMode::Unknown,
            created_at: None,
            expire_at: None,
            tags: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    /// Sets the secret that saw the instance.
    pub fn with_secret_id(mut self, secret_id: impl Into<String>) -> Database {
        self.secret_id = secret_id.into();
        self
    }

    /// Sets the zone.
    pub fn with_zone(mut self, zone: impl Into<String>) -> Database {
        self.zone = Some(zone.into());
        self
    }

    /// Sets the display name.
    pub fn with_name(mut self, name: impl Into<String>) -> Database {
        self.name = name.into();
        self
    }

    /// Sets the engine and its version.
    pub fn with_engine(mut self, engine: DatabaseEngine, version: Option<&str>) -> Database {
        self.engine = engine;
        self.engine_version = version.map(str::to_owned);
        self
    }

    /// Sets the normalized status and the vendor's word for it.
    pub fn with_status(mut self, status: DatabaseStatus, raw: impl Into<String>) -> Database {
        self.status = status;
        self.raw_status = raw.into();
        self
    }

    /// Sets the instance class.
    pub fn with_instance_class(mut self, class: impl Into<String>) -> Database {
        self.instance_class = Some(class.into());
        self
    }

    /// Sets the number of vCPUs.
    pub fn with_cpu(mut self, cpu: u32) -> Database {
        self.cpu = Some(cpu);
        self
    }

    /// Sets the memory, in MiB.
    pub fn with_memory_mib(mut self, memory_mib: u64) -> Database {
        self.memory_mib = Some(memory_mib);
        self
    }

    /// Sets the storage size (GB) and, when known, its type.
    pub fn with_storage(mut self, storage_gb: u64, storage_type: Option<&str>) -> Database {
        self.storage_gb = Some(storage_gb);
        self.storage_type = storage_type.map(str::to_owned);
        self
    }

    /// Adds an endpoint.
    pub fn with_endpoint(mut self, endpoint: DatabaseEndpoint) -> Database {
        self.endpoints.push(endpoint);
        self
    }

    /// Sets the VPC id.
    pub fn with_vpc_id(mut self, vpc_id: impl Into<String>) -> Database {
        self.vpc_id = Some(vpc_id.into());
        self
    }

    /// Sets the billing mode.
    pub fn with_pay_mode(mut self, pay_mode: PayMode) -> Database {
        self.pay_mode = pay_mode;
        self
    }

    /// Sets the creation time.
    pub fn with_created_at(mut self, created_at: DateTime<Utc>) -> Database {
        self.created_at = Some(created_at);
        self
    }

    /// Sets the expiry time.
    pub fn with_expire_at(mut self, expire_at: DateTime<Utc>) -> Database {
        self.expire_at = Some(expire_at);
        self
    }

    /// Adds a tag.
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Database {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Keeps a vendor field that has no column.
    pub fn with_extra(mut self, key: impl Into<String>, value: serde_json::Value) -> Database {
        self.extra.insert(key.into(), value);
        self
    }

    /// Whether the instance contains `keyword` in its name (case-insensitive), instance
    /// id or any endpoint's host. An empty keyword matches every instance.
    pub fn matches_keyword(&self, keyword: &str) -> bool {
        if keyword.is_empty() {
            return true;
        }
        let lower = keyword.to_lowercase();
        self.name.to_lowercase().contains(&lower)
            || self.instance_id.contains(keyword)
            || self.endpoints.iter().any(|e| e.host.contains(keyword))
    }

    /// Hex SHA-256 of the instance's content; equal hashes mean nothing worth recording
    /// changed. Everything but `secret_id` is included; the order of endpoints does not
    /// matter. Encoded as host hashes are, with a version tag of its own.
    pub fn content_hash(&self) -> String {
        let mut f = Feed::new(DATABASE_HASH_VERSION);
        f.str(1, self.vendor.as_str());
        f.str(2, &self.instance_id);
        f.str(3, &self.region);
        f.opt_str(4, self.zone.as_deref());
        f.str(5, &self.name);
        f.str(6, self.engine.as_str());
        f.opt_str(7, self.engine_version.as_deref());
        f.str(8, self.status.as_str());
        f.str(9, &self.raw_status);
        f.opt_str(10, self.instance_class.as_deref());
        f.opt_u64(11, self.cpu.map(u64::from));
        f.opt_u64(12, self.memory_mib);
        f.opt_u64(13, self.storage_gb);
        f.opt_str(14, self.storage_type.as_deref());
        let mut endpoints: Vec<&DatabaseEndpoint> = self.endpoints.iter().collect();
        endpoints.sort_unstable();
        f.opt_u64(15, Some(endpoints.len() as u64));
        for e in endpoints {
            f.str(b'e', e.kind.as_str());
            f.str(b'h', &e.host);
            f.opt_u64(b'p', e.port.map(u64::from));
        }
        f.opt_str(16, self.vpc_id.as_deref());
        f.str(17, self.pay_mode.as_str());
        f.opt_str(18, self.created_at.map(|t| t.to_rfc3339()).as_deref());
        f.opt_str(19, self.expire_at.map(|t| t.to_rfc3339()).as_deref());
        f.string_map(20, &self.tags);
        f.json_map(21, &self.extra);
        f.finish()
    }
}

/// Version tag of [`Database::content_hash`]'s encoding: bump it when the encoding
/// changes, so that every stored hash reads as changed once.
const DATABASE_HASH_VERSION: &[u8] = b"cmdb-database-v1";

/// A database instance as a store keeps it, with its bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct StoredDatabase {
    /// The instance as last seen.
    #[serde(flatten)]
    pub database: Database,
    /// [`Database::content_hash`] of the stored instance.
    pub content_hash: String,
    /// When a sync first saw the instance.
    pub first_seen_at: DateTime<Utc>,
    /// When a sync last saw the instance.
    pub last_seen_at: DateTime<Utc>,
    /// When a complete sync of its scope no longer listed it; `None` while active.
    pub released_at: Option<DateTime<Utc>>,
}

impl StoredDatabase {
    /// An active stored instance with its stored content hash and the times syncs first
    /// and last saw it.
    pub fn new(
        database: Database,
        content_hash: impl Into<String>,
        first_seen_at: DateTime<Utc>,
        last_seen_at: DateTime<Utc>,
    ) -> StoredDatabase {
        StoredDatabase {
            database,
            content_hash: content_hash.into(),
            first_seen_at,
            last_seen_at,
            released_at: None,
        }
    }

    /// Sets when the instance was released (`None`: it is active).
    pub fn with_released_at(mut self, released_at: Option<DateTime<Utc>>) -> StoredDatabase {
        self.released_at = released_at;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Database {
        Database::new(Vendor::Tencent, "cdb-7x1k2p3q", "ap-guangzhou")
            .with_secret_id("s1")
            .with_zone("ap-guangzhou-3")
            .with_name("订单库")
            .with_engine(DatabaseEngine::from_vendor("MySQL"), Some("5.7"))
            .with_status(DatabaseStatus::Running, "1")
            .with_instance_class("CDB.1C1G")
            .with_cpu(1)
            .with_memory_mib(1000)
            .with_storage(50, Some("CLOUD_SSD"))
            .with_endpoint(DatabaseEndpoint::private("10.0.0.8", Some(3306)))
            .with_endpoint(DatabaseEndpoint::public(
                "gz-cdb-abc.sql.tencentcdb.com",
                Some(63_306),
            ))
            .with_vpc_id("vpc-5v8wn9m1")
            .with_pay_mode(PayMode::Postpaid)
            .with_created_at("2023-08-29T00:37:33Z".parse().unwrap())
            .with_tag("env", "prod")
            .with_extra("InstanceType", serde_json::json!(1))
    }

    #[test]
    fn round_trips_through_json() {
        let db = sample()
            .with_expire_at("2024-08-29T00:37:33Z".parse().unwrap())
            .with_extra("RoGroups", serde_json::json!([{"RoGroupId": "cdbrg-1"}]));
        let json = serde_json::to_value(&db).unwrap();
        assert_eq!(json["engine"], "mysql");
        assert_eq!(json["status"], "RUNNING");
        assert_eq!(json["pay_mode"], "POSTPAID");
        assert_eq!(json["endpoints"][1]["kind"], "public");
        let back: Database = serde_json::from_value(json).unwrap();
        assert_eq!(back, db);

        // Only the identifying fields are required.
        let minimal: Database = serde_json::from_value(serde_json::json!({
            "vendor": "huawei", "instance_id": "i-1", "region": "cn-north-4"
        }))
        .unwrap();
        assert_eq!(minimal, Database::new(Vendor::Huawei, "i-1", "cn-north-4"));

        let stored = StoredDatabase::new(
            db.clone(),
            db.content_hash(),
            "2024-01-01T00:00:00Z".parse().unwrap(),
            "2024-01-02T00:00:00Z".parse().unwrap(),
        )
        .with_released_at(Some("2024-01-03T00:00:00Z".parse().unwrap()));
        let json = serde_json::to_value(&stored).unwrap();
        // Flattened: the instance's fields sit beside the bookkeeping.
        assert_eq!(json["instance_id"], "cdb-7x1k2p3q");
        assert_eq!(json["content_hash"], db.content_hash());
        assert_eq!(
            serde_json::from_value::<StoredDatabase>(json).unwrap(),
            stored
        );
    }

    #[test]
    fn engines_normalize_and_keep_unknown_words() {
        for (word, engine) in [
            ("MySQL", DatabaseEngine::MySql),
            ("SQLServer", DatabaseEngine::SqlServer),
            ("sql_server", DatabaseEngine::SqlServer),
            ("PostgreSQL", DatabaseEngine::PostgreSql),
            ("postgres", DatabaseEngine::PostgreSql),
            ("MariaDB", DatabaseEngine::MariaDb),
            ("", DatabaseEngine::Unknown),
            ("GaussDB", DatabaseEngine::Other("gaussdb".into())),
        ] {
            assert_eq!(DatabaseEngine::from_vendor(word), engine, "{word}");
            assert_eq!(word.parse::<DatabaseEngine>().unwrap(), engine, "{word}");
            let json = serde_json::to_string(&engine).unwrap();
            assert_eq!(json, format!("\"{engine}\""));
            assert_eq!(
                serde_json::from_str::<DatabaseEngine>(&json).unwrap(),
                engine
            );
        }
    }

    #[test]
    fn status_names_match_their_serde_names() {
        for s in DatabaseStatus::ALL {
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(s.as_str().parse::<DatabaseStatus>().unwrap(), *s);
        }
        assert!("running".parse::<DatabaseStatus>().is_err());
    }

    #[test]
    fn hash_is_pinned_across_builds() {
        // A fixed value: change DATABASE_HASH_VERSION and this value together, on purpose.
        assert_eq!(
            sample().content_hash(),
            "65d1750fec0c574c95a2ba2a652879019272bf01d54752634bf632f3f6096fc0"
        );
    }

    #[test]
    fn hash_ignores_bookkeeping_and_endpoint_order() {
        let a = sample();
        let mut b = sample().with_secret_id("s2");
        b.endpoints.reverse();
        assert_eq!(a.content_hash(), b.content_hash());
    }

    #[test]
    fn hash_changes_with_content() {
        let a = sample().content_hash();
        let changes: &[fn(&mut Database)] = &[
            |d| d.status = DatabaseStatus::Isolated,
            |d| d.raw_status = "5".into(),
            |d| d.engine_version = Some("8.0".into()),
            |d| d.memory_mib = Some(2000),
            |d| d.storage_gb = None,
            |d| d.endpoints[0].port = Some(3307),
            |d| d.endpoints[1].kind = EndpointKind::Private,
            |d| d.endpoints.truncate(1),
            |d| {
                d.tags.insert("env".into(), "dev".into());
            },
            |d| d.engine = DatabaseEngine::Other("tdsql".into()),
            |d| d.expire_at = Some("2030-01-01T00:00:00Z".parse().unwrap()),
        ];
        for (n, change) in changes.iter().enumerate() {
            let mut b = sample();
            change(&mut b);
            assert_ne!(a, b.content_hash(), "change {n}");
        }
    }

    #[test]
    fn keyword_matches_name_id_and_endpoints() {
        let db = sample();
        assert!(db.matches_keyword("订单"));
        assert!(db.matches_keyword("cdb-7x1"));
        assert!(db.matches_keyword("tencentcdb.com"));
        assert!(db.matches_keyword("10.0.0"));
        assert!(!db.matches_keyword("redis"));
    }
}

/// One page of database instances as a provider lists them: what [`HostPage`] is to
/// hosts, with the same meaning for `total`, `moved` and `failed`.
///
/// [`HostPage`]: crate::HostPage
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct DatabasePage {
    /// The instances of this page.
    pub databases: Vec<Database>,
    /// The total the vendor reports for the whole listing, when it does.
    pub total: Option<u64>,
    /// Set on the last page of an offset-paged listing that moved while it was paged:
    /// instances may have been skipped. Says what was seen.
    pub moved: Option<String>,
    /// Records of this page that could not be mapped: never dropped silently.
    pub failed: Vec<crate::FailedRecord>,
}

impl DatabasePage {
    /// A page of `databases` with the vendor's reported total, if any.
    pub fn new(databases: Vec<Database>, total: Option<u64>) -> DatabasePage {
        DatabasePage {
            databases,
            total,
            moved: None,
            failed: Vec::new(),
        }
    }

    /// The page with these records that could not be mapped.
    pub fn with_failed(mut self, failed: Vec<crate::FailedRecord>) -> DatabasePage {
        self.failed = failed;
        self
    }
}
