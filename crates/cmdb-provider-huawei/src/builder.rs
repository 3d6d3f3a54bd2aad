//! [`HuaweiBuilder`]: credentials, region, endpoint and tuning -> client, host provider
//! or database provider.

use cmdb_core::{Error, Result, Vendor};
use cmdb_http::{client_settings_methods, ClientSettings, Endpoint};
use cmdb_secret::Credentials;

use crate::client::{HuaweiClient, ServiceEndpoints, MAX_DATABASE_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::database::HuaweiDatabaseProvider;
use crate::error::HuaweiClassifier;
use crate::provider::HuaweiHostProvider;

/// Servers per ListServersDetails page by default (Huawei advises 200 for large
/// accounts; the API allows up to 1000).
pub const DEFAULT_PAGE_SIZE: u32 = 200;

/// Pages in flight at once by default, after the first.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// IAM's global endpoint, which serves every IAM API for every region of the main site.
const GLOBAL_IAM_HOST: &str = "iam.myhuaweicloud.com";

/// Regions whose IAM host breaks the `iam.<region>.myhuaweicloud.com` rule, after the
/// official Go SDK (huaweicloud-sdk-go-v3 0.1.188, March 2026). eu-west-101 is Huawei Cloud
/// Europe, on its own domain: the host of the SDK's IAM module
/// (`services/iam/v3/region/region.go`), also named by Huawei's EU documentation. The
/// others are regions the SDK's ECS module lists but neither IAM table does; the SDK's own
/// project-id lookup (`core/auth/internal/iam_endpoint.go`) sends them to the global
/// endpoint, which Huawei documents as serving every IAM API.
const IAM_HOST_EXCEPTIONS: &[(&str, &str)] = &[
    ("eu-west-101", "iam.eu-west-101.myhuaweicloud.eu"),
    ("af-north-1", GLOBAL_IAM_HOST),
    ("ap-southeast-5", GLOBAL_IAM_HOST),
    ("cn-north-11", GLOBAL_IAM_HOST),
    ("cn-south-4", GLOBAL_IAM_HOST),
    ("cn-southwest-3", GLOBAL_IAM_HOST),
];

/// The public IAM and ECS hosts of `region`: `iam.<region>.myhuaweicloud.com` (but see
/// `IAM_HOST_EXCEPTIONS`) and `ecs.<region>.myhuaweicloud.com`, the ECS host of every
/// region the SDK's `services/ecs/v2/region/region.go` lists.
pub(crate) fn public_hosts(region: &str) -> (String, String) {
    let iam = IAM_HOST_EXCEPTIONS
        .iter()
        .find(|(r, _)| *r == region)
        .map_or_else(
            || format!("iam.{region}.myhuaweicloud.com"),
            |(_, h)| (*h).to_owned(),
        );
    (iam, format!("ecs.{region}.myhuaweicloud.com"))
}

/// The public RDS host of `region`: `rds.<region>.myhuaweicloud.com`.
pub(crate) fn rds_host(region: &str) -> String {
    format!("rds.{region}.myhuaweicloud.com")
}

/// Builds a [`HuaweiClient`], a [`HuaweiHostProvider`] or a [`HuaweiDatabaseProvider`].
///
/// ```no_run
/// use cmdb_core::HostProvider;
/// use cmdb_provider_huawei::HuaweiBuilder;
///
/// # fn demo() -> cmdb_core::Result<()> {
/// let provider = HuaweiBuilder::from_env() // HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK
///     .with_region("cn-north-4")
///     .with_page_size(500)
///     .build()?;
/// assert_eq!(provider.region(), "cn-north-4");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HuaweiBuilder {
    settings: ClientSettings,
    project_id: Option<String>,
    page_size: u32,
    database_page_size: u32,
    concurrency: usize,
}

impl Default for HuaweiBuilder {
    fn default() -> Self {
        HuaweiBuilder::new()
    }
}

impl HuaweiBuilder {
    /// A builder with no credentials or region, the public endpoints and the defaults.
    pub fn new() -> HuaweiBuilder {
        HuaweiBuilder {
            settings: ClientSettings::default(),
            project_id: None,
            page_size: DEFAULT_PAGE_SIZE,
            database_page_size: MAX_DATABASE_PAGE_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    /// A builder with the official SDKs' variables: `HUAWEICLOUD_SDK_AK`,
    /// `HUAWEICLOUD_SDK_SK`, and when set `HUAWEICLOUD_SDK_SECURITY_TOKEN` (temporary
    /// credentials) and `HUAWEICLOUD_SDK_PROJECT_ID`.
    pub fn from_env() -> HuaweiBuilder {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut builder = HuaweiBuilder::new();
        if let (Some(ak), Some(sk)) = (var("HUAWEICLOUD_SDK_AK"), var("HUAWEICLOUD_SDK_SK")) {
            let token = var("HUAWEICLOUD_SDK_SECURITY_TOKEN").unwrap_or_default();
            builder.settings.credentials = Some(Credentials::new(ak, sk).with_session_token(token));
        }
        builder.project_id = var("HUAWEICLOUD_SDK_PROJECT_ID");
        builder
    }

    client_settings_methods!(settings, signed);

    /// The project id, which spares the IAM lookup.
    pub fn with_project_id(mut self, project_id: impl Into<String>) -> HuaweiBuilder {
        self.project_id = Some(project_id.into());
        self
    }

    /// Servers per page, 1 to 1000 (default 200).
    pub fn with_page_size(mut self, page_size: u32) -> HuaweiBuilder {
        self.page_size = page_size;
        self
    }

    /// RDS instances per page of a database listing, 1 to 100 (default 100).
    pub fn with_database_page_size(mut self, page_size: u32) -> HuaweiBuilder {
        self.database_page_size = page_size;
        self
    }

    /// Pages requested at once after the first (default 4, at least 1); the shared rate
    /// limiter still applies to each of them. Also caps the client's requests in flight.
    pub fn with_concurrency(mut self, concurrency: usize) -> HuaweiBuilder {
        self.concurrency = concurrency;
        self
    }

    /// Builds the client. Fails with [`InvalidInput`](cmdb_core::ErrorKind::InvalidInput)
    /// naming the field: missing or empty credentials (`api_key`, `api_secret`), a missing
    /// or malformed `region`, a `page_size` outside 1..=1000 or an invalid endpoint
    /// override (`address`, used for both IAM and ECS instead of the public hosts,
    /// `iam.<region>.myhuaweicloud.com` and `ecs.<region>.myhuaweicloud.com` save for the
    /// few regions whose IAM host differs; see the crate docs).
    pub fn build_client(&self) -> Result<HuaweiClient> {
        let credentials = self.settings.credentials()?;
        let region = self.settings.region("cn-north-4")?;
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(Error::invalid_field(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        let (iam, ecs, rds) = match self.settings.endpoint()? {
            Some(endpoint) => (endpoint.clone(), endpoint.clone(), endpoint),
            None => {
                let (iam, ecs) = public_hosts(&region);
                (
                    Endpoint::https_host(&iam)?,
                    Endpoint::https_host(&ecs)?,
                    Endpoint::https_host(&rds_host(&region))?,
                )
            }
        };
        let config = self
            .settings
            .http
            .clone()
            .with_max_in_flight(self.concurrency.max(1));
        let http = self
            .settings
            .http_client(config, Vendor::Huawei, HuaweiClassifier)?;
        let project_id = self.project_id.clone().filter(|p| !p.trim().is_empty());
        Ok(HuaweiClient::new(
            http,
            credentials,
            region,
            ServiceEndpoints { iam, ecs, rds },
            project_id,
            self.settings.clock(),
        ))
    }

    /// Builds the provider (no request is made until its pages are polled).
    pub fn build(&self) -> Result<HuaweiHostProvider> {
        Ok(HuaweiHostProvider::new(
            self.build_client()?,
            self.page_size,
            self.concurrency.max(1),
        ))
    }

    /// Builds the database (RDS) provider, on the same client as the hosts' (signer,
    /// rate limiter, retries, STS token, project id resolved and cached alike); RDS calls
    /// go to `rds.<region>.myhuaweicloud.com`, or the endpoint override. No request is
    /// made until its pages are polled.
    ///
    /// Fails as [`build_client`](Self::build_client) does, and when the database page
    /// size is not 1 to 100 (`page_size`).
    pub fn build_databases(&self) -> Result<HuaweiDatabaseProvider> {
        if !(1..=MAX_DATABASE_PAGE_SIZE).contains(&self.database_page_size) {
            return Err(Error::invalid_field(
                "page_size",
                format!("must be between 1 and {MAX_DATABASE_PAGE_SIZE}"),
            ));
        }
        Ok(HuaweiDatabaseProvider::new(
            self.build_client()?,
            self.database_page_size,
        ))
    }
}

#[cfg(test)]
mod tests {
    use cmdb_core::{ErrorKind, HostProvider};

    use super::*;

    fn creds() -> Credentials {
        Credentials::new("HPUAEXAMPLEAK0001", "very-secret-sk-value")
    }

    #[test]
    fn debug_output_never_shows_the_secret_key() {
        let builder = HuaweiBuilder::new()
            .with_credentials(creds())
            .with_region("cn-north-4");
        let shown = format!("{builder:?}");
        assert!(!shown.contains("very-secret-sk-value"), "{shown}");
        assert!(!shown.contains("HPUAEXAMPLEAK0001"), "{shown}");
        assert!(shown.contains("cn-north-4"), "{shown}");
        let provider = builder.build().unwrap();
        let shown = format!("{provider:?}");
        assert!(!shown.contains("very-secret-sk-value"), "{shown}");
        assert!(!shown.contains("HPUAEXAMPLEAK0001"), "{shown}");
    }

    #[test]
    fn invalid_settings_are_rejected_by_field() {
        let e = HuaweiBuilder::new()
            .with_region("cn-north-4")
            .build()
            .unwrap_err();
        assert_eq!(e.field(), Some("api_key"));
        let e = HuaweiBuilder::new()
            .with_credentials(Credentials::new("ak", ""))
            .with_region("cn-north-4")
            .build()
            .unwrap_err();
        assert_eq!(e.field(), Some("api_secret"));
        let e = HuaweiBuilder::new()
            .with_credentials(creds())
            .build()
            .unwrap_err();
        assert_eq!(e.field(), Some("region"));
        let e = HuaweiBuilder::new()
            .with_credentials(creds())
            .with_region("cn-north-4/../x")
            .build()
            .unwrap_err();
        assert_eq!(e.field(), Some("region"));
        for size in [0, 1001] {
            let e = HuaweiBuilder::new()
                .with_credentials(creds())
                .with_region("r")
                .with_page_size(size)
                .build()
                .unwrap_err();
            assert_eq!(e.field(), Some("page_size"));
        }
        let e = HuaweiBuilder::new()
            .with_credentials(creds())
            .with_region("r")
            .with_endpoint("ftp://x")
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn public_endpoints_follow_the_region() {
        let client = HuaweiBuilder::new()
            .with_credentials(creds())
            .with_region("ap-southeast-1")
            .build_client()
            .unwrap();
        let shown = format!("{client:?}");
        assert!(
            shown.contains("https://iam.ap-southeast-1.myhuaweicloud.com/"),
            "{shown}"
        );
        assert!(
            shown.contains("https://ecs.ap-southeast-1.myhuaweicloud.com/"),
            "{shown}"
        );
        let provider = HuaweiBuilder::new()
            .with_credentials(creds())
            .with_region("ap-southeast-1")
            .build()
            .unwrap();
        assert_eq!(provider.vendor(), Vendor::Huawei);
        assert_eq!(provider.region(), "ap-southeast-1");
    }

    /// Every region the official Go SDK's ECS module lists
    /// (huaweicloud/huaweicloud-sdk-go-v3, `services/ecs/v2/region/region.go`, as of March
    /// 2026, release 0.1.188: 33 regions), with the hosts that SDK resolves for it. ECS: that
    /// file (every host follows the rule, eu-west-101 included). IAM:
    /// `services/iam/v3/region/region.go` and `core/auth/internal/iam_endpoint.go`, which
    /// agree on every region both list; only the first lists eu-west-101, on the `.eu`
    /// domain; regions neither lists get the global endpoint, as the SDK's project-id lookup
    /// does. Cross-checked with Huawei's IAM "Endpoints" page
    /// (support.huaweicloud.com/intl/en-us/api-iam/iam_01_0004.html): the global endpoint
    /// serves every IAM API.
    #[test]
    fn public_endpoints_match_every_documented_region() {
        #[rustfmt::skip]
        const DOCUMENTED: &[(&str, &str, &str)] = &[
            ("af-north-1", "iam.myhuaweicloud.com", "ecs.af-north-1.myhuaweicloud.com"),
            ("af-south-1", "iam.af-south-1.myhuaweicloud.com", "ecs.af-south-1.myhuaweicloud.com"),
            ("ae-ad-1", "iam.ae-ad-1.myhuaweicloud.com", "ecs.ae-ad-1.myhuaweicloud.com"),
            ("ap-southeast-1", "iam.ap-southeast-1.myhuaweicloud.com", "ecs.ap-southeast-1.myhuaweicloud.com"),
            ("ap-southeast-2", "iam.ap-southeast-2.myhuaweicloud.com", "ecs.ap-southeast-2.myhuaweicloud.com"),
            ("ap-southeast-3", "iam.ap-southeast-3.myhuaweicloud.com", "ecs.ap-southeast-3.myhuaweicloud.com"),
            ("ap-southeast-4", "iam.ap-southeast-4.myhuaweicloud.com", "ecs.ap-southeast-4.myhuaweicloud.com"),
            ("ap-southeast-5", "iam.myhuaweicloud.com", "ecs.ap-southeast-5.myhuaweicloud.com"),
            ("cn-east-2", "iam.cn-east-2.myhuaweicloud.com", "ecs.cn-east-2.myhuaweicloud.com"),
            ("cn-east-3", "iam.cn-east-3.myhuaweicloud.com", "ecs.cn-east-3.myhuaweicloud.com"),
            ("cn-east-4", "iam.cn-east-4.myhuaweicloud.com", "ecs.cn-east-4.myhuaweicloud.com"),
            ("cn-east-5", "iam.cn-east-5.myhuaweicloud.com", "ecs.cn-east-5.myhuaweicloud.com"),
            ("cn-north-1", "iam.cn-north-1.myhuaweicloud.com", "ecs.cn-north-1.myhuaweicloud.com"),
            ("cn-north-2", "iam.cn-north-2.myhuaweicloud.com", "ecs.cn-north-2.myhuaweicloud.com"),
            ("cn-north-4", "iam.cn-north-4.myhuaweicloud.com", "ecs.cn-north-4.myhuaweicloud.com"),
            ("cn-north-9", "iam.cn-north-9.myhuaweicloud.com", "ecs.cn-north-9.myhuaweicloud.com"),
            ("cn-north-11", "iam.myhuaweicloud.com", "ecs.cn-north-11.myhuaweicloud.com"),
            ("cn-north-12", "iam.cn-north-12.myhuaweicloud.com", "ecs.cn-north-12.myhuaweicloud.com"),
            ("cn-south-1", "iam.cn-south-1.myhuaweicloud.com", "ecs.cn-south-1.myhuaweicloud.com"),
            ("cn-south-2", "iam.cn-south-2.myhuaweicloud.com", "ecs.cn-south-2.myhuaweicloud.com"),
            ("cn-south-4", "iam.myhuaweicloud.com", "ecs.cn-south-4.myhuaweicloud.com"),
            ("cn-southwest-2", "iam.cn-southwest-2.myhuaweicloud.com", "ecs.cn-southwest-2.myhuaweicloud.com"),
            ("cn-southwest-3", "iam.myhuaweicloud.com", "ecs.cn-southwest-3.myhuaweicloud.com"),
            ("eu-west-0", "iam.eu-west-0.myhuaweicloud.com", "ecs.eu-west-0.myhuaweicloud.com"),
            ("eu-west-101", "iam.eu-west-101.myhuaweicloud.eu", "ecs.eu-west-101.myhuaweicloud.com"),
            ("la-north-2", "iam.la-north-2.myhuaweicloud.com", "ecs.la-north-2.myhuaweicloud.com"),
            ("la-south-2", "iam.la-south-2.myhuaweicloud.com", "ecs.la-south-2.myhuaweicloud.com"),
            ("me-east-1", "iam.me-east-1.myhuaweicloud.com", "ecs.me-east-1.myhuaweicloud.com"),
            ("my-kualalumpur-1", "iam.my-kualalumpur-1.myhuaweicloud.com", "ecs.my-kualalumpur-1.myhuaweicloud.com"),
            ("na-mexico-1", "iam.na-mexico-1.myhuaweicloud.com", "ecs.na-mexico-1.myhuaweicloud.com"),
            ("ru-moscow-1", "iam.ru-moscow-1.myhuaweicloud.com", "ecs.ru-moscow-1.myhuaweicloud.com"),
            ("sa-brazil-1", "iam.sa-brazil-1.myhuaweicloud.com", "ecs.sa-brazil-1.myhuaweicloud.com"),
            ("tr-west-1", "iam.tr-west-1.myhuaweicloud.com", "ecs.tr-west-1.myhuaweicloud.com"),
        ];
        for (region, iam, ecs) in DOCUMENTED {
            let client = HuaweiBuilder::new()
                .with_credentials(creds())
                .with_region(*region)
                .build_client()
                .unwrap();
            let (iam_endpoint, ecs_endpoint) = client.endpoints();
            assert_eq!(iam_endpoint.host_header(), *iam, "{region}");
            assert_eq!(ecs_endpoint.host_header(), *ecs, "{region}");
            assert_eq!(
                (iam_endpoint.scheme(), ecs_endpoint.scheme()),
                ("https", "https")
            );
        }
        // A region the SDK does not list yet follows the rule.
        let (iam, ecs) = public_hosts("xx-new-1");
        assert_eq!(iam, "iam.xx-new-1.myhuaweicloud.com");
        assert_eq!(ecs, "ecs.xx-new-1.myhuaweicloud.com");
        // The override replaces both hosts, exceptions included.
        let custom = HuaweiBuilder::new()
            .with_credentials(creds())
            .with_region("eu-west-101")
            .with_endpoint("http://127.0.0.1:18080")
            .build_client()
            .unwrap();
        let (iam, ecs) = custom.endpoints();
        assert_eq!(
            (iam.host_header(), ecs.host_header()),
            ("127.0.0.1:18080".to_owned(), "127.0.0.1:18080".to_owned())
        );
    }
}
