//! [`AliyunBuilder`]: configuration -> [`AliyunClient`] / [`AliyunHostProvider`].

use std::fmt;
use std::sync::Arc;

use cmdb_core::{Error, Result, Vendor};
use cmdb_http::{system_clock, Clock, Endpoint, HttpClient, HttpConfig, RateLimiter};
use cmdb_secret::Credentials;
use tokio::runtime::Handle;
use tokio::sync::OnceCell;

use crate::client::{default_endpoint_host, AliyunClient, EndpointChoice, MAX_PAGE_SIZE};
use crate::error::AliyunClassifier;
use crate::provider::AliyunHostProvider;

/// Builds an [`AliyunClient`] or an [`AliyunHostProvider`].
///
/// Credentials and region are required. Without an endpoint override the endpoint is
/// discovered with `DescribeRegions` on first use.
#[derive(Default)]
pub struct AliyunBuilder {
    credentials: Option<Credentials>,
    region: Option<String>,
    endpoint: Option<String>,
    request_rate: Option<u32>,
    limiter: Option<Arc<RateLimiter>>,
    http_config: HttpConfig,
    io_runtime: Option<Handle>,
    jitter_seed: Option<u64>,
    clock: Option<Clock>,
    page_size: Option<u32>,
}

impl fmt::Debug for AliyunBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials print masked (see `Credentials`' own Debug).
        f.debug_struct("AliyunBuilder")
            .field("credentials", &self.credentials)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("request_rate", &self.request_rate)
            .field("limiter", &self.limiter.is_some())
            .field("http_config", &self.http_config)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl AliyunBuilder {
    /// An empty builder.
    pub fn new() -> AliyunBuilder {
        AliyunBuilder::default()
    }

    /// A builder from the Alibaba Cloud SDKs' variables: `ALIBABA_CLOUD_ACCESS_KEY_ID`,
    /// `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and, when set, `ALIBABA_CLOUD_REGION_ID`.
    pub fn from_env() -> AliyunBuilder {
        let mut b = AliyunBuilder::new();
        if let (Ok(id), Ok(secret)) = (
            std::env::var("ALIBABA_CLOUD_ACCESS_KEY_ID"),
            std::env::var("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        ) {
            b.credentials = Some(Credentials::new(id, secret));
        }
        if let Ok(region) = std::env::var("ALIBABA_CLOUD_REGION_ID") {
            b.region = Some(region);
        }
        b
    }

    /// The access key pair.
    pub fn with_credentials(mut self, credentials: Credentials) -> AliyunBuilder {
        self.credentials = Some(credentials);
        self
    }

    /// The region to list, e.g. `cn-hangzhou`.
    pub fn with_region(mut self, region: impl Into<String>) -> AliyunBuilder {
        self.region = Some(region.into());
        self
    }

    /// An endpoint override, a full http or https URL, used for every call.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> AliyunBuilder {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Requests per second, when no shared limiter is given (0: unlimited).
    pub fn with_request_rate(mut self, rate: u32) -> AliyunBuilder {
        self.request_rate = Some(rate);
        self
    }

    /// A rate limiter shared with the other clients of the same access key.
    pub fn with_limiter(mut self, limiter: Arc<RateLimiter>) -> AliyunBuilder {
        self.limiter = Some(limiter);
        self
    }

    /// Timeouts, retries, concurrency and TLS of the HTTP client.
    pub fn with_http_config(mut self, config: HttpConfig) -> AliyunBuilder {
        self.http_config = config;
        self
    }

    /// Runs network I/O on `runtime` (see [`HttpClient::with_io_runtime`]); tests with a
    /// paused clock need it.
    pub fn with_io_runtime(mut self, runtime: Handle) -> AliyunBuilder {
        self.io_runtime = Some(runtime);
        self
    }

    /// Seeds the backoff jitter.
    pub fn with_jitter_seed(mut self, seed: u64) -> AliyunBuilder {
        self.jitter_seed = Some(seed);
        self
    }

    /// The clock that timestamps signatures (`x-acs-date`), unix seconds (default: the
    /// system clock).
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> AliyunBuilder {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// `MaxResults` per page, 1 to 100 (default 100).
    pub fn with_page_size(mut self, page_size: u32) -> AliyunBuilder {
        self.page_size = Some(page_size);
        self
    }

    /// Builds the client. Makes no request.
    ///
    /// Errors are [`InvalidInput`](cmdb_core::ErrorKind::InvalidInput) about one field:
    /// `api_key`/`api_secret` missing or empty, `region` missing or not a region id,
    /// `address` not a valid URL, `page_size` out of 1..=100.
    pub fn build_client(self) -> Result<AliyunClient> {
        let credentials = self
            .credentials
            .ok_or_else(|| Error::invalid_field("api_key", "is required"))?;
        if credentials.api_key().trim().is_empty() {
            return Err(Error::invalid_field("api_key", "is empty"));
        }
        if credentials.api_secret().is_empty() {
            return Err(Error::invalid_field("api_secret", "is empty"));
        }
        let region = self.region.unwrap_or_default().trim().to_owned();
        if region.is_empty() {
            return Err(Error::invalid_field("region", "is required"));
        }
        if !region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(Error::invalid_field(
                "region",
                "is not a region id (lowercase letters, digits and '-')",
            ));
        }
        let page_size = self.page_size.unwrap_or(MAX_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(Error::invalid_field(
                "page_size",
                "must be between 1 and 100",
            ));
        }
        let endpoint = match self
            .endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            Some(address) => EndpointChoice::Override(Endpoint::parse(address)?),
            None => EndpointChoice::Discover {
                fallback: Endpoint::https_host(&default_endpoint_host(&region))?,
                resolved: OnceCell::new(),
            },
        };
        let limiter = match (self.limiter, self.request_rate) {
            (Some(limiter), _) => limiter,
            (None, Some(rate)) => Arc::new(RateLimiter::per_second(rate)),
            (None, None) => Arc::new(RateLimiter::unlimited()),
        };
        let mut http = HttpClient::new(self.http_config, Some(Vendor::Aliyun), AliyunClassifier)?
            .with_limiter(limiter);
        if let Some(runtime) = self.io_runtime {
            http = http.with_io_runtime(runtime);
        }
        if let Some(seed) = self.jitter_seed {
            http = http.with_jitter_seed(seed);
        }
        Ok(AliyunClient::new(
            http,
            credentials,
            region,
            endpoint,
            page_size,
            self.clock.unwrap_or_else(system_clock),
        ))
    }

    /// Builds the host provider. Makes no request.
    pub fn build(self) -> Result<AliyunHostProvider> {
        Ok(AliyunHostProvider::new(self.build_client()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new("LTAI5tTestKey0001", "top-secret-value")
    }

    #[test]
    fn build_checks_every_field() {
        let field = |b: AliyunBuilder| b.build().unwrap_err().field();
        assert_eq!(
            field(AliyunBuilder::new().with_region("cn-hangzhou")),
            Some("api_key")
        );
        assert_eq!(
            field(
                AliyunBuilder::new()
                    .with_credentials(Credentials::new("ak", ""))
                    .with_region("r")
            ),
            Some("api_secret")
        );
        assert_eq!(
            field(AliyunBuilder::new().with_credentials(creds())),
            Some("region")
        );
        assert_eq!(
            field(
                AliyunBuilder::new()
                    .with_credentials(creds())
                    .with_region("cn/../x")
            ),
            Some("region")
        );
        assert_eq!(
            field(
                AliyunBuilder::new()
                    .with_credentials(creds())
                    .with_region("cn-hangzhou")
                    .with_endpoint("ftp://x")
            ),
            Some("address")
        );
        assert_eq!(
            field(
                AliyunBuilder::new()
                    .with_credentials(creds())
                    .with_region("cn-hangzhou")
                    .with_page_size(101)
            ),
            Some("page_size")
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let b = AliyunBuilder::new()
            .with_credentials(creds())
            .with_region("cn-beijing");
        let shown = format!("{b:?}");
        assert!(!shown.contains("top-secret-value"), "{shown}");
        assert!(!shown.contains("LTAI5tTestKey0001"), "{shown}");
        let client = b.build_client().unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("top-secret-value"), "{shown}");
        assert!(shown.contains("cn-beijing"), "{shown}");
        assert!(shown.contains("ecs.cn-beijing.aliyuncs.com"), "{shown}");
    }

    #[test]
    fn default_endpoints_follow_the_pattern_and_its_exceptions() {
        assert_eq!(
            default_endpoint_host("cn-beijing"),
            "ecs.cn-beijing.aliyuncs.com"
        );
        assert_eq!(
            default_endpoint_host("eu-central-1"),
            "ecs.eu-central-1.aliyuncs.com"
        );
        assert_eq!(
            default_endpoint_host("cn-hangzhou"),
            "ecs-cn-hangzhou.aliyuncs.com"
        );
    }
}
