//! Client configuration: timeouts, retries, concurrency and TLS.

use std::fmt;
use std::time::Duration;

use crate::address::AddressPolicy;
use crate::retry::RetryConfig;

/// How an [`HttpClient`](crate::HttpClient) connects, times out, retries and trusts
/// servers.
///
/// Start from [`HttpConfig::default()`] and change what you need, with the `with_*`
/// methods or by assigning the public fields.
///
/// ```
/// use std::time::Duration;
/// use cmdb_http::{HttpConfig, RetryConfig};
///
/// let config = HttpConfig::default()
///     .with_request_timeout(Duration::from_secs(60))
///     .with_retry(RetryConfig::default().with_max_attempts(3))
///     .with_max_in_flight(8);
/// assert_eq!(config.connect_timeout, Duration::from_secs(10));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Time allowed to open a connection, TLS handshake included (default 10 s).
    pub connect_timeout: Duration,
    /// Time allowed for one attempt, from sending the request to the end of the response
    /// body (default 30 s). Retries get their own; the total is bounded by
    /// [`RetryConfig::max_elapsed`].
    pub request_timeout: Duration,
    /// Retry policy.
    pub retry: RetryConfig,
    /// Requests of one client (and its clones) in flight at once (default 4).
    pub max_in_flight: usize,
    /// The `User-Agent` header (default `cmdb/<version>`).
    pub user_agent: String,
    /// Accept any server certificate, expired, self-signed or for another name (default
    /// false). Only for lab vCenters; it is logged as a warning whenever a client is
    /// built with it. Prefer [`ca_bundle_pem`](Self::ca_bundle_pem).
    pub accept_invalid_certs: bool,
    /// Extra trusted root certificates, PEM, one or several (default none): the private
    /// CA of an on-premises endpoint. The system's roots stay trusted.
    pub ca_bundle_pem: Option<Vec<u8>>,
    /// Which addresses requests may connect to, checked on the resolved IP at connect
    /// time. The default allows public, loopback and private addresses (a client built
    /// by hand goes where its caller points it) and refuses link-local, cloud metadata,
    /// unspecified, multicast and broadcast ones. A sync, whose endpoints come from
    /// stored secrets, narrows it to public addresses unless the operator allows more
    /// (`SyncOptions` in `cmdb-sync`). See [`AddressPolicy`].
    pub addresses: AddressPolicy,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            retry: RetryConfig::default(),
            max_in_flight: 4,
            user_agent: concat!("cmdb/", env!("CARGO_PKG_VERSION")).to_owned(),
            accept_invalid_certs: false,
            ca_bundle_pem: None,
            addresses: AddressPolicy::default().with_private(true),
        }
    }
}

impl HttpConfig {
    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> HttpConfig {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the timeout of one attempt.
    pub fn with_request_timeout(mut self, timeout: Duration) -> HttpConfig {
        self.request_timeout = timeout;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryConfig) -> HttpConfig {
        self.retry = retry;
        self
    }

    /// Sets how many requests may be in flight at once.
    pub fn with_max_in_flight(mut self, max_in_flight: usize) -> HttpConfig {
        self.max_in_flight = max_in_flight;
        self
    }

    /// Sets the `User-Agent` header.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> HttpConfig {
        self.user_agent = user_agent.into();
        self
    }

    /// Accepts invalid server certificates (or not). Insecure: see
    /// [`accept_invalid_certs`](Self::accept_invalid_certs).
    pub fn with_accept_invalid_certs(mut self, accept: bool) -> HttpConfig {
        self.accept_invalid_certs = accept;
        self
    }

    /// Which addresses requests may connect to (see [`addresses`](Self::addresses)).
    pub fn with_addresses(mut self, addresses: AddressPolicy) -> HttpConfig {
        self.addresses = addresses;
        self
    }

    /// Trusts the root certificate(s) of a PEM bundle, besides the system's.
    pub fn with_ca_bundle_pem(mut self, pem: impl Into<Vec<u8>>) -> HttpConfig {
        self.ca_bundle_pem = Some(pem.into());
        self
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("max_in_flight", &self.max_in_flight)
            .field("user_agent", &self.user_agent)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field(
                "ca_bundle_pem",
                &self
                    .ca_bundle_pem
                    .as_ref()
                    .map(|p| format!("<{} bytes>", p.len())),
            )
            .field("addresses", &self.addresses)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let c = HttpConfig::default();
        assert_eq!(c.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.max_in_flight, 4);
        assert_eq!(c.user_agent, format!("cmdb/{}", env!("CARGO_PKG_VERSION")));
        assert!(!c.accept_invalid_certs);
        assert!(c.ca_bundle_pem.is_none());
        assert_eq!(c.retry, RetryConfig::default());
    }

    #[test]
    fn with_methods_set_fields() {
        let c = HttpConfig::default()
            .with_connect_timeout(Duration::from_secs(1))
            .with_request_timeout(Duration::from_secs(2))
            .with_retry(RetryConfig::no_retry())
            .with_max_in_flight(9)
            .with_user_agent("x/1")
            .with_accept_invalid_certs(true)
            .with_ca_bundle_pem(b"pem".to_vec());
        assert_eq!(c.connect_timeout, Duration::from_secs(1));
        assert_eq!(c.request_timeout, Duration::from_secs(2));
        assert_eq!(c.retry.max_attempts, 1);
        assert_eq!(c.max_in_flight, 9);
        assert_eq!(c.user_agent, "x/1");
        assert!(c.accept_invalid_certs);
        assert_eq!(c.ca_bundle_pem.as_deref(), Some(&b"pem"[..]));
    }

    #[test]
    fn debug_summarises_the_ca_bundle() {
        let shown = format!(
            "{:?}",
            HttpConfig::default().with_ca_bundle_pem(vec![b'x'; 3000])
        );
        assert!(shown.contains("<3000 bytes>"), "{shown}");
        assert!(shown.len() < 600, "{shown}");
    }
}
