//! [`HuaweiBuilder`]: credentials, region, endpoint and tuning -> client or provider.

use cmdb_core::{Error, Result, Vendor};
use cmdb_http::{client_settings_methods, ClientSettings, Endpoint};
use cmdb_secret::Credentials;

use crate::client::{HuaweiClient, MAX_PAGE_SIZE};
use crate::error::HuaweiClassifier;
use crate::provider::HuaweiHostProvider;

/// Servers per ListServersDetails page by default (Huawei advises 200 for large
/// accounts; the API allows up to 1000).
pub const DEFAULT_PAGE_SIZE: u32 = 200;

/// Pages in flight at once by default, after the first.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Builds a [`HuaweiClient`] or a [`HuaweiHostProvider`].
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

    /// Pages requested at once after the first (default 4, at least 1); the shared rate
    /// limiter still applies to each of them. Also caps the client's requests in flight.
    pub fn with_concurrency(mut self, concurrency: usize) -> HuaweiBuilder {
        self.concurrency = concurrency;
        self
    }

    /// Builds the client. Fails with [`InvalidInput`](cmdb_core::ErrorKind::InvalidInput)
    /// naming the field: missing or empty credentials (`api_key`, `api_secret`), a missing
    /// or malformed `region`, a `page_size` outside 1..=1000 or an invalid endpoint
    /// override (`address`, used for both IAM and ECS instead of
    /// `iam.<region>.myhuaweicloud.com` and `ecs.<region>.myhuaweicloud.com`).
    pub fn build_client(&self) -> Result<HuaweiClient> {
        let credentials = self.settings.credentials()?;
        let region = self.settings.region("cn-north-4")?;
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(Error::invalid_field(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        let (iam, ecs) = match self.settings.endpoint()? {
            Some(endpoint) => (endpoint.clone(), endpoint),
            None => (
                Endpoint::https_host(&format!("iam.{region}.myhuaweicloud.com"))?,
                Endpoint::https_host(&format!("ecs.{region}.myhuaweicloud.com"))?,
            ),
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
            iam,
            ecs,
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
}
