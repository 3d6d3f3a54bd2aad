//! [`HuaweiBuilder`]: credentials, region, endpoint and tuning -> client or provider.

use std::fmt;
use std::sync::Arc;

use cmdb_core::{Error, Result, Vendor};
use cmdb_http::{system_clock, Clock, Endpoint, HttpClient, HttpConfig, RateLimiter};
use cmdb_secret::Credentials;
use tokio::runtime::Handle;

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
#[derive(Clone)]
pub struct HuaweiBuilder {
    credentials: Option<Credentials>,
    region: Option<String>,
    endpoint: Option<String>,
    project_id: Option<String>,
    page_size: u32,
    concurrency: usize,
    http: HttpConfig,
    limiter: Option<Arc<RateLimiter>>,
    io_runtime: Option<Handle>,
    jitter_seed: Option<u64>,
    clock: Option<Clock>,
}

impl fmt::Debug for HuaweiBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HuaweiBuilder")
            // `Credentials` masks the key and hides the secret.
            .field("credentials", &self.credentials)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("project_id", &self.project_id)
            .field("page_size", &self.page_size)
            .field("concurrency", &self.concurrency)
            .field("http", &self.http)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
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
            credentials: None,
            region: None,
            endpoint: None,
            project_id: None,
            page_size: DEFAULT_PAGE_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
            http: HttpConfig::default(),
            limiter: None,
            io_runtime: None,
            jitter_seed: None,
            clock: None,
        }
    }

    /// A builder with the official SDKs' variables: `HUAWEICLOUD_SDK_AK`,
    /// `HUAWEICLOUD_SDK_SK` and, when set, `HUAWEICLOUD_SDK_PROJECT_ID`.
    pub fn from_env() -> HuaweiBuilder {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut builder = HuaweiBuilder::new();
        if let (Some(ak), Some(sk)) = (var("HUAWEICLOUD_SDK_AK"), var("HUAWEICLOUD_SDK_SK")) {
            builder.credentials = Some(Credentials::new(ak, sk));
        }
        builder.project_id = var("HUAWEICLOUD_SDK_PROJECT_ID");
        builder
    }

    /// The access key (AK) and secret key (SK).
    pub fn with_credentials(mut self, credentials: Credentials) -> HuaweiBuilder {
        self.credentials = Some(credentials);
        self
    }

    /// The region, e.g. `cn-north-4`.
    pub fn with_region(mut self, region: impl Into<String>) -> HuaweiBuilder {
        self.region = Some(region.into());
        self
    }

    /// An endpoint override (a full http or https URL) used for both IAM and ECS,
    /// instead of `iam.<region>.myhuaweicloud.com` and `ecs.<region>.myhuaweicloud.com`.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> HuaweiBuilder {
        self.endpoint = Some(endpoint.into());
        self
    }

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

    /// Timeouts, retries and TLS of the HTTP client (its `max_in_flight` is replaced by
    /// the [concurrency](Self::with_concurrency)).
    pub fn with_http_config(mut self, config: HttpConfig) -> HuaweiBuilder {
        self.http = config;
        self
    }

    /// The rate limiter of the secret, shared with every other client using it.
    pub fn with_limiter(mut self, limiter: Arc<RateLimiter>) -> HuaweiBuilder {
        self.limiter = Some(limiter);
        self
    }

    /// Runs the network I/O on `runtime`: see [`HttpClient::with_io_runtime`].
    pub fn with_io_runtime(mut self, runtime: Handle) -> HuaweiBuilder {
        self.io_runtime = Some(runtime);
        self
    }

    /// The clock that timestamps signatures (`X-Sdk-Date`), unix seconds (default: the
    /// system clock).
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> HuaweiBuilder {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Seeds the retry jitter, for deterministic tests.
    pub fn with_jitter_seed(mut self, seed: u64) -> HuaweiBuilder {
        self.jitter_seed = Some(seed);
        self
    }

    /// Builds the client. Fails with [`InvalidInput`](cmdb_core::ErrorKind::InvalidInput)
    /// on missing or empty credentials, a missing or malformed region, a page size
    /// outside 1..=1000 or an invalid endpoint override.
    pub fn build_client(&self) -> Result<HuaweiClient> {
        let credentials = self
            .credentials
            .clone()
            .filter(|c| !c.api_key().trim().is_empty() && !c.api_secret().is_empty())
            .ok_or_else(|| {
                Error::invalid_field(
                    "credentials",
                    "an access key (AK) and secret key (SK) are required",
                )
            })?;
        let region = self.region.as_deref().unwrap_or_default().trim().to_owned();
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::invalid_field(
                "region",
                "is required, letters, digits and '-' only (e.g. cn-north-4)",
            ));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(Error::invalid_field(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        let (iam, ecs) = match self.endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
            Some(address) => {
                let endpoint = Endpoint::parse(address)?;
                (endpoint.clone(), endpoint)
            }
            None => (
                Endpoint::https_host(&format!("iam.{region}.myhuaweicloud.com"))?,
                Endpoint::https_host(&format!("ecs.{region}.myhuaweicloud.com"))?,
            ),
        };
        let config = self
            .http
            .clone()
            .with_max_in_flight(self.concurrency.max(1));
        let mut http = HttpClient::new(config, Some(Vendor::Huawei), HuaweiClassifier)?;
        if let Some(limiter) = &self.limiter {
            http = http.with_limiter(Arc::clone(limiter));
        }
        if let Some(runtime) = &self.io_runtime {
            http = http.with_io_runtime(runtime.clone());
        }
        if let Some(seed) = self.jitter_seed {
            http = http.with_jitter_seed(seed);
        }
        let project_id = self.project_id.clone().filter(|p| !p.trim().is_empty());
        Ok(HuaweiClient::new(
            http,
            credentials,
            region,
            iam,
            ecs,
            project_id,
            self.clock.clone().unwrap_or_else(system_clock),
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
        assert_eq!(e.field(), Some("credentials"));
        let e = HuaweiBuilder::new()
            .with_credentials(Credentials::new("ak", ""))
            .with_region("cn-north-4")
            .build()
            .unwrap_err();
        assert_eq!(e.field(), Some("credentials"));
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
