//! [`TencentBuilder`]: credentials, region, endpoint and limits in; a client or a
//! provider out.

use std::fmt;
use std::sync::Arc;

use cmdb_core::{Error, Result, Vendor};
use cmdb_http::{Endpoint, HttpClient, HttpConfig, RateLimiter};
use cmdb_secret::Credentials;
use tokio::runtime::Handle;

use crate::client::{TencentClient, MAX_PAGE_SIZE};
use crate::error::TencentClassifier;
use crate::provider::TencentHostProvider;
use cmdb_http::{system_clock, Clock};

/// Pages in flight by default after the first one.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Builds a [`TencentClient`] or a [`TencentHostProvider`].
///
/// ```no_run
/// use cmdb_provider_tencent::TencentBuilder;
/// use cmdb_secret::Credentials;
///
/// # fn demo() -> cmdb_core::Result<()> {
/// let provider = TencentBuilder::new()
///     .with_credentials(Credentials::new("AKIDexample", "secret-key"))
///     .with_region("ap-guangzhou")
///     .with_request_rate(20)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TencentBuilder {
    credentials: Option<Credentials>,
    region: Option<String>,
    endpoint: Option<String>,
    http: HttpConfig,
    limiter: Option<Arc<RateLimiter>>,
    request_rate: Option<u32>,
    page_size: u64,
    concurrency: usize,
    io_runtime: Option<Handle>,
    jitter_seed: Option<u64>,
    clock: Option<Clock>,
}

impl Default for TencentBuilder {
    fn default() -> Self {
        TencentBuilder::new()
    }
}

impl fmt::Debug for TencentBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TencentBuilder")
            // Credentials' own Debug masks the key and hides the secret.
            .field("credentials", &self.credentials)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("request_rate", &self.request_rate)
            .field("page_size", &self.page_size)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl TencentBuilder {
    /// A builder with no credentials or region, pages of 100 and 4 pages in flight.
    pub fn new() -> TencentBuilder {
        TencentBuilder {
            credentials: None,
            region: None,
            endpoint: None,
            http: HttpConfig::default(),
            limiter: None,
            request_rate: None,
            page_size: MAX_PAGE_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
            io_runtime: None,
            jitter_seed: None,
            clock: None,
        }
    }

    /// A builder from the Tencent Cloud SDKs' variables: `TENCENTCLOUD_SECRET_ID`,
    /// `TENCENTCLOUD_SECRET_KEY` and, when set, `TENCENTCLOUD_REGION`.
    pub fn from_env() -> TencentBuilder {
        let mut builder = TencentBuilder::new();
        if let (Ok(id), Ok(key)) = (
            std::env::var("TENCENTCLOUD_SECRET_ID"),
            std::env::var("TENCENTCLOUD_SECRET_KEY"),
        ) {
            builder.credentials = Some(Credentials::new(id, key));
        }
        if let Ok(region) = std::env::var("TENCENTCLOUD_REGION") {
            builder.region = Some(region);
        }
        builder
    }

    /// The SecretId (`api_key`) and SecretKey (`api_secret`).
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// The region to list, e.g. `ap-guangzhou` (sent as `X-TC-Region`).
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// An endpoint override, a full http or https URL, used for every call.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Timeouts, retries, in-flight cap and TLS trust.
    pub fn with_http_config(mut self, config: HttpConfig) -> Self {
        self.http = config;
        self
    }

    /// The rate limiter shared by every client of the secret (wins over
    /// [`with_request_rate`](Self::with_request_rate)).
    pub fn with_limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// A request rate of this client's own, requests per second (0: unlimited).
    /// `DescribeInstances` is documented at 40 requests a second.
    pub fn with_request_rate(mut self, rate: u32) -> Self {
        self.request_rate = Some(rate);
        self
    }

    /// Instances per page, 1 to 100 (default 100).
    pub fn with_page_size(mut self, page_size: u64) -> Self {
        self.page_size = page_size;
        self
    }

    /// Pages in flight at most after the first (default 4; at least 1). The HTTP
    /// client's own in-flight cap and the rate limiter still apply.
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Runs network I/O on `runtime` (see [`HttpClient::with_io_runtime`]): for tests on
    /// a paused clock.
    pub fn with_io_runtime(mut self, runtime: Handle) -> Self {
        self.io_runtime = Some(runtime);
        self
    }

    /// Seeds the retry jitter, for reproducible tests.
    pub fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    /// The clock that timestamps signatures, unix seconds (default: the system clock).
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Builds the client.
    ///
    /// Fails with [`InvalidInput`](cmdb_core::ErrorKind::InvalidInput) naming the field:
    /// no or empty credentials (`api_key`, `api_secret`), no region or one that is not
    /// lower-case letters, digits and `-` (`region`), a bad override (`address`).
    pub fn build_client(&self) -> Result<TencentClient> {
        let credentials = self
            .credentials
            .clone()
            .ok_or_else(|| Error::invalid_field("api_key", "Tencent Cloud needs a SecretId"))?;
        if credentials.api_key().trim().is_empty() {
            return Err(Error::invalid_field("api_key", "is empty"));
        }
        if credentials.api_secret().is_empty() {
            return Err(Error::invalid_field("api_secret", "is empty"));
        }
        let region = self.region.clone().unwrap_or_default();
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(Error::invalid_field(
                "region",
                "must be a Tencent Cloud region id such as ap-guangzhou",
            ));
        }
        let endpoint = self.endpoint.as_deref().map(Endpoint::parse).transpose()?;
        let limiter = match (&self.limiter, self.request_rate) {
            (Some(limiter), _) => Arc::clone(limiter),
            (None, Some(rate)) => Arc::new(RateLimiter::per_second(rate)),
            (None, None) => Arc::new(RateLimiter::unlimited()),
        };
        let mut http =
            HttpClient::new(self.http.clone(), Some(Vendor::Tencent), TencentClassifier)?
                .with_limiter(limiter);
        if let Some(runtime) = &self.io_runtime {
            http = http.with_io_runtime(runtime.clone());
        }
        if let Some(seed) = self.jitter_seed {
            http = http.with_jitter_seed(seed);
        }
        let clock = self.clock.clone().unwrap_or_else(system_clock);
        Ok(TencentClient::new(
            http,
            credentials,
            region,
            endpoint,
            clock,
        ))
    }

    /// Builds the provider (no request is made until its pages are polled).
    ///
    /// Fails as [`build_client`](Self::build_client) does, and when the page size is not
    /// 1 to 100 (`page_size`).
    pub fn build(&self) -> Result<TencentHostProvider> {
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return Err(Error::invalid_field(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        Ok(TencentHostProvider::new(
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
    use crate::client::{DESCRIBE_INSTANCES, DESCRIBE_REGIONS};

    fn builder() -> TencentBuilder {
        TencentBuilder::new()
            .with_credentials(Credentials::new("AKIDabcdefgh12345678", "top-secret-key"))
            .with_region("ap-guangzhou")
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let b = builder();
        let provider = b.build().unwrap();
        for shown in [
            format!("{b:?}"),
            format!("{provider:?}"),
            format!("{:?}", provider.client()),
        ] {
            assert!(!shown.contains("top-secret-key"), "{shown}");
            assert!(!shown.contains("AKIDabcdefgh12345678"), "{shown}");
            assert!(shown.contains("ap-guangzhou"), "{shown}");
        }
    }

    #[test]
    fn bad_settings_name_the_field() {
        let cases = [
            (TencentBuilder::new().with_region("ap-guangzhou"), "api_key"),
            (
                builder().with_credentials(Credentials::new("AKID", "")),
                "api_secret",
            ),
            (builder().with_region(""), "region"),
            (builder().with_region("ap-guangzhou/../x"), "region"),
            (builder().with_endpoint("ftp://x"), "address"),
            (builder().with_page_size(0), "page_size"),
            (builder().with_page_size(101), "page_size"),
        ];
        for (b, field) in cases {
            let e = b.build().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{field}");
            assert_eq!(e.field(), Some(field), "{e}");
            assert!(!e.to_string().contains("top-secret-key"));
        }
    }

    #[test]
    fn endpoints_follow_the_region_and_the_override() {
        let c = builder().build_client().unwrap();
        assert_eq!(
            c.endpoint_for(DESCRIBE_INSTANCES).unwrap().host_header(),
            "cvm.tencentcloudapi.com"
        );
        assert_eq!(
            c.endpoint_for(DESCRIBE_REGIONS).unwrap().host_header(),
            "region.tencentcloudapi.com"
        );
        let fsi = builder()
            .with_region("ap-shanghai-fsi")
            .build_client()
            .unwrap();
        assert_eq!(
            fsi.endpoint_for(DESCRIBE_INSTANCES).unwrap().host_header(),
            "cvm.ap-shanghai-fsi.tencentcloudapi.com"
        );
        let custom = builder()
            .with_endpoint("http://127.0.0.1:18080")
            .build_client()
            .unwrap();
        for api in [DESCRIBE_INSTANCES, DESCRIBE_REGIONS] {
            assert_eq!(
                custom.endpoint_for(api).unwrap().host_header(),
                "127.0.0.1:18080"
            );
        }
    }

    #[test]
    fn provider_reports_vendor_region_and_defaults() {
        let p = builder().build().unwrap();
        assert_eq!(p.vendor(), Vendor::Tencent);
        assert_eq!(p.region(), "ap-guangzhou");
        assert_eq!((p.page_size(), p.concurrency()), (100, DEFAULT_CONCURRENCY));
        assert_eq!(
            builder().with_concurrency(0).build().unwrap().concurrency(),
            1
        );
    }
}
