//! [`ClientSettings`]: what every vendor builder holds besides its own options, checked
//! in one place, and [`client_settings_methods!`], the `with_*` methods that set it.

use std::fmt;
use std::sync::Arc;

use cmdb_core::{Error, Result, Vendor};
use cmdb_secret::Credentials;
use tokio::runtime::Handle;

use crate::{system_clock, Clock, Endpoint, ErrorClassifier, HttpClient, HttpConfig, RateLimiter};

/// The settings every provider builder shares: credentials, region, endpoint override,
/// request rate or shared limiter, HTTP configuration, I/O runtime, jitter seed and
/// signing clock. A builder embeds one, sets it with [`client_settings_methods!`](crate::client_settings_methods) and
/// checks it with the methods below, so that every vendor checks alike and names the
/// same fields in its errors.
#[derive(Clone, Default)]
pub struct ClientSettings {
    /// The API key and secret.
    pub credentials: Option<Credentials>,
    /// The region to list.
    pub region: Option<String>,
    /// An endpoint override (a full http or https URL).
    pub endpoint: Option<String>,
    /// Requests per second of this client's own, when no limiter is shared (0: unlimited).
    pub request_rate: Option<u32>,
    /// A rate limiter shared with the other clients of the same credentials.
    pub limiter: Option<Arc<RateLimiter>>,
    /// Timeouts, retries, requests in flight and TLS trust.
    pub http: HttpConfig,
    /// The runtime network I/O runs on, when not the caller's.
    pub io_runtime: Option<Handle>,
    /// A seed for the retry jitter.
    pub jitter_seed: Option<u64>,
    /// The clock that timestamps signatures.
    pub clock: Option<Clock>,
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSettings")
            // `Credentials` shows the key masked and never the secret.
            .field("credentials", &self.credentials)
            .field("region", &self.region)
            .field(
                "endpoint",
                &self.endpoint.as_deref().map(cmdb_secret::redact_address),
            )
            .field("request_rate", &self.request_rate)
            .field("limiter", &self.limiter)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl ClientSettings {
    /// The credentials: an [`InvalidInput`](cmdb_core::ErrorKind::InvalidInput) error
    /// naming `api_key` when they are missing or the key is blank, `api_secret` when the
    /// secret is empty.
    pub fn credentials(&self) -> Result<Credentials> {
        let credentials = self
            .credentials
            .clone()
            .ok_or_else(|| Error::invalid_field("api_key", "is required"))?;
        if credentials.api_key().trim().is_empty() {
            return Err(Error::invalid_field("api_key", "is empty"));
        }
        if credentials.api_secret().is_empty() {
            return Err(Error::invalid_field("api_secret", "is empty"));
        }
        Ok(credentials)
    }

    /// The region id, trimmed: an error naming `region` when it is missing or is not
    /// lowercase letters, digits, `-` and `_` (it becomes part of host names and paths).
    /// `example` is a region of the vendor, shown in the error.
    pub fn region(&self, example: &str) -> Result<String> {
        let region = self.region.as_deref().unwrap_or_default().trim();
        let valid = !region.is_empty()
            && region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid {
            return Err(Error::invalid_field(
                "region",
                format!(
                    "must be a region id such as {example} (lowercase letters, digits and '-')"
                ),
            ));
        }
        Ok(region.to_owned())
    }

    /// The endpoint override, parsed, when set and not blank: an error naming `address`
    /// when it is not an http or https URL.
    pub fn endpoint(&self) -> Result<Option<Endpoint>> {
        self.endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(Endpoint::parse)
            .transpose()
    }

    /// The limiter requests wait on: the shared one, else one of `request_rate`, else
    /// none (unlimited).
    pub fn limiter(&self) -> Arc<RateLimiter> {
        match (&self.limiter, self.request_rate) {
            (Some(limiter), _) => Arc::clone(limiter),
            (None, Some(rate)) => Arc::new(RateLimiter::per_second(rate)),
            (None, None) => Arc::new(RateLimiter::unlimited()),
        }
    }

    /// The HTTP client of `vendor`: `config` (usually [`http`](Self::http), adjusted by
    /// the builder), `classifier`, the [`limiter`](Self::limiter), the I/O runtime, the
    /// jitter seed, and the region as the `region` label of its metrics.
    pub fn http_client(
        &self,
        config: HttpConfig,
        vendor: Vendor,
        classifier: impl ErrorClassifier + 'static,
    ) -> Result<HttpClient> {
        let mut http =
            HttpClient::new(config, Some(vendor), classifier)?.with_limiter(self.limiter());
        if let Some(runtime) = &self.io_runtime {
            http = http.with_io_runtime(runtime.clone());
        }
        if let Some(seed) = self.jitter_seed {
            http = http.with_jitter_seed(seed);
        }
        if let Some(region) = &self.region {
            http = http.with_region(region.trim());
        }
        Ok(http)
    }

    /// The signing clock: the one set, else the system's.
    pub fn clock(&self) -> Clock {
        self.clock.clone().unwrap_or_else(system_clock)
    }
}

/// The `with_*` methods every provider builder has, setting its [`ClientSettings`] field
/// (named by the first argument). With `signed` it also has `with_region` and
/// `with_clock`, for the vendors whose requests are signed per region.
///
/// ```
/// use cmdb_http::{client_settings_methods, ClientSettings};
///
/// /// A builder.
/// #[derive(Debug, Default)]
/// pub struct ExampleBuilder {
///     settings: ClientSettings,
/// }
///
/// impl ExampleBuilder {
///     client_settings_methods!(settings, signed);
/// }
///
/// let b = ExampleBuilder::default().with_region("cn-north-4").with_request_rate(20);
/// assert_eq!(b.settings.region("cn-north-4").unwrap(), "cn-north-4");
/// ```
#[macro_export]
macro_rules! client_settings_methods {
    ($settings:ident, signed) => {
        $crate::client_settings_methods!($settings);

        /// The region to list, e.g. `cn-hangzhou`, `ap-guangzhou`, `cn-north-4`.
        pub fn with_region(mut self, region: impl Into<String>) -> Self {
            self.$settings.region = Some(region.into());
            self
        }

        /// The clock that timestamps signatures, Unix seconds (default: the system's).
        pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
            self.$settings.clock = Some(::std::sync::Arc::new(clock));
            self
        }
    };
    ($settings:ident) => {
        /// The API key and secret: the `api_key` and `api_secret` of a secret.
        pub fn with_credentials(mut self, credentials: ::cmdb_secret::Credentials) -> Self {
            self.$settings.credentials = Some(credentials);
            self
        }

        /// An endpoint override, a full http or https URL, used for every call.
        pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
            self.$settings.endpoint = Some(endpoint.into());
            self
        }

        /// Requests per second of this client's own, when no limiter is shared
        /// (0: unlimited).
        pub fn with_request_rate(mut self, rate: u32) -> Self {
            self.$settings.request_rate = Some(rate);
            self
        }

        /// A rate limiter shared with the other clients of the same credentials (wins
        /// over [`with_request_rate`](Self::with_request_rate)).
        pub fn with_limiter(mut self, limiter: ::std::sync::Arc<$crate::RateLimiter>) -> Self {
            self.$settings.limiter = Some(limiter);
            self
        }

        /// Timeouts, retries, requests in flight and TLS trust.
        pub fn with_http_config(mut self, config: $crate::HttpConfig) -> Self {
            self.$settings.http = config;
            self
        }

        /// Runs network I/O on `runtime` (see [`HttpClient::with_io_runtime`]
        /// ($crate::HttpClient::with_io_runtime)): for tests on a paused clock.
        pub fn with_io_runtime(mut self, runtime: ::tokio::runtime::Handle) -> Self {
            self.$settings.io_runtime = Some(runtime);
            self
        }

        /// Seeds the retry jitter, for reproducible tests.
        pub fn with_jitter_seed(mut self, seed: u64) -> Self {
            self.$settings.jitter_seed = Some(seed);
            self
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ClientSettings {
        ClientSettings {
            credentials: Some(Credentials::new("AKID-key-0001", "top-secret")),
            region: Some(" cn-north-4 ".into()),
            ..ClientSettings::default()
        }
    }

    #[test]
    fn checks_name_the_field() {
        let field = |s: ClientSettings| {
            s.credentials()
                .and(s.region("r-1"))
                .and(s.endpoint())
                .unwrap_err()
                .field()
                .map(str::to_owned)
        };
        let mut s = settings();
        s.credentials = None;
        assert_eq!(field(s).as_deref(), Some("api_key"));
        let mut s = settings();
        s.credentials = Some(Credentials::new(" ", "x"));
        assert_eq!(field(s).as_deref(), Some("api_key"));
        let mut s = settings();
        s.credentials = Some(Credentials::new("k", ""));
        assert_eq!(field(s).as_deref(), Some("api_secret"));
        for region in ["", "cn/../x", "CN-NORTH-4", "a b"] {
            let mut s = settings();
            s.region = Some(region.into());
            assert_eq!(field(s).as_deref(), Some("region"), "{region}");
        }
        let mut s = settings();
        s.endpoint = Some("ftp://x".into());
        assert_eq!(field(s).as_deref(), Some("address"));
        let s = settings();
        assert_eq!(s.region("r").unwrap(), "cn-north-4");
        assert!(s.endpoint().unwrap().is_none());
    }

    #[test]
    fn debug_hides_the_secret_and_the_address_credentials() {
        let mut s = settings();
        s.endpoint = Some("https://user:hunter2@vc.example.com/sdk".into());
        let shown = format!("{s:?}");
        assert!(!shown.contains("top-secret"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("AKID-key-0001"), "{shown}");
    }
}
