//! [`VsphereBuilder`]: configuration of a [`VsphereHostProvider`].

use std::fmt;
use std::sync::Arc;

use cmdb_core::{Error, Result, Vendor};
use cmdb_http::{Endpoint, HttpClient, HttpConfig, RateLimiter, RetryConfig};
use cmdb_secret::Credentials;
use tokio::runtime::Handle;
use url::Url;

use crate::client::VsphereClient;
use crate::error::VsphereClassifier;
use crate::provider::VsphereHostProvider;

/// Default number of virtual machines asked for per page (`maxObjects`).
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// Largest page size accepted.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Builds a [`VsphereHostProvider`]: the vCenter (or ESXi) address, a user and password,
/// and optional TLS, paging and HTTP settings.
///
/// TLS trusts the system's roots by default; add a private CA with
/// [`with_ca_bundle_pem`](Self::with_ca_bundle_pem). Accepting any certificate
/// ([`with_accept_invalid_certs`](Self::with_accept_invalid_certs)) is off unless asked
/// for, and logged as a warning when on.
///
/// ```no_run
/// use cmdb_provider_vsphere::VsphereBuilder;
/// use cmdb_secret::Credentials;
///
/// # fn demo() -> cmdb_core::Result<()> {
/// let provider = VsphereBuilder::new()
///     .with_address("https://vcenter.example.com")
///     .with_credentials(Credentials::new("administrator@vsphere.local", "secret"))
///     .with_page_size(200)
///     .build()?;
/// assert_eq!(cmdb_core::HostProvider::region(&provider), "vcenter.example.com");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct VsphereBuilder {
    address: Option<String>,
    credentials: Option<Credentials>,
    page_size: u32,
    http: HttpConfig,
    limiter: Option<Arc<RateLimiter>>,
    io_runtime: Option<Handle>,
}

impl fmt::Debug for VsphereBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VsphereBuilder")
            .field("address", &self.address)
            .field("credentials", &self.credentials)
            .field("page_size", &self.page_size)
            .field("accept_invalid_certs", &self.http.accept_invalid_certs)
            .field("ca_bundle", &self.http.ca_bundle_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for VsphereBuilder {
    fn default() -> Self {
        VsphereBuilder::new()
    }
}

impl VsphereBuilder {
    /// A builder with no address or credentials, pages of [`DEFAULT_PAGE_SIZE`] and the
    /// default [`HttpConfig`].
    pub fn new() -> VsphereBuilder {
        VsphereBuilder {
            address: None,
            credentials: None,
            page_size: DEFAULT_PAGE_SIZE,
            http: HttpConfig::default(),
            limiter: None,
            io_runtime: None,
        }
    }

    /// A builder from govc's variables: `GOVC_URL` (address), `GOVC_USERNAME`,
    /// `GOVC_PASSWORD`, `GOVC_INSECURE` (`1`/`true` accepts invalid certificates) and
    /// `GOVC_TLS_CA_CERTS` (a PEM file of extra roots). Unset variables leave the
    /// defaults; an unreadable CA file is an error.
    pub fn from_env() -> Result<VsphereBuilder> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut builder = VsphereBuilder::new();
        if let Some(url) = var("GOVC_URL") {
            builder = builder.with_address(url);
        }
        if let (Some(user), Some(password)) = (var("GOVC_USERNAME"), var("GOVC_PASSWORD")) {
            builder = builder.with_credentials(Credentials::new(user, password));
        }
        builder.with_tls_from_env()
    }

    /// Applies govc's TLS variables, when set: `GOVC_INSECURE` (`1`/`true` accepts
    /// invalid certificates, logged as a warning) and `GOVC_TLS_CA_CERTS` (a PEM file of
    /// extra roots). An unreadable CA file is an error.
    pub fn with_tls_from_env(mut self) -> Result<VsphereBuilder> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(insecure) = var("GOVC_INSECURE") {
            self = self.with_accept_invalid_certs(matches!(
                insecure.trim(),
                "1" | "true" | "TRUE" | "True"
            ));
        }
        if let Some(path) = var("GOVC_TLS_CA_CERTS") {
            let pem = std::fs::read(&path).map_err(|e| {
                Error::invalid_field("ca_bundle_pem", format!("cannot read {path}: {e}"))
            })?;
            self = self.with_ca_bundle_pem(pem);
        }
        Ok(self)
    }

    /// The vCenter or ESXi address: `https://vc.example.com` (the SDK path `/sdk` is
    /// added) or the full SDK URL `https://vc.example.com/sdk`; `http` for simulators.
    pub fn with_address(mut self, address: impl Into<String>) -> VsphereBuilder {
        self.address = Some(address.into());
        self
    }

    /// The user (`api_key`) and password (`api_secret`).
    pub fn with_credentials(mut self, credentials: Credentials) -> VsphereBuilder {
        self.credentials = Some(credentials);
        self
    }

    /// Virtual machines per page (`maxObjects`), 1 to [`MAX_PAGE_SIZE`].
    pub fn with_page_size(mut self, page_size: u32) -> VsphereBuilder {
        self.page_size = page_size;
        self
    }

    /// Timeouts, retries, concurrency and TLS settings.
    pub fn with_http_config(mut self, config: HttpConfig) -> VsphereBuilder {
        self.http = config;
        self
    }

    /// Accepts any server certificate (self-signed lab vCenters). Off by default; a
    /// warning is logged whenever a provider is built with it on.
    pub fn with_accept_invalid_certs(mut self, accept: bool) -> VsphereBuilder {
        self.http.accept_invalid_certs = accept;
        self
    }

    /// Trusts these PEM root certificates too (the vCenter's VMCA or a private CA).
    pub fn with_ca_bundle_pem(mut self, pem: impl Into<Vec<u8>>) -> VsphereBuilder {
        self.http.ca_bundle_pem = Some(pem.into());
        self
    }

    /// The rate limiter of the secret, shared with its other runs.
    pub fn with_limiter(mut self, limiter: Arc<RateLimiter>) -> VsphereBuilder {
        self.limiter = Some(limiter);
        self
    }

    /// Runs network I/O on `runtime` (see [`HttpClient::with_io_runtime`]); tests with a
    /// paused clock need it.
    pub fn with_io_runtime(mut self, runtime: Handle) -> VsphereBuilder {
        self.io_runtime = Some(runtime);
        self
    }

    /// Checks the settings and builds the provider. No request is made.
    ///
    /// Errors are [`InvalidInput`](cmdb_core::ErrorKind::InvalidInput): no or an invalid
    /// address, no credentials or an empty user or password, a page size out of range,
    /// an invalid HTTP configuration.
    pub fn build(self) -> Result<VsphereHostProvider> {
        let address = self
            .address
            .as_deref()
            .ok_or_else(|| Error::invalid_field("address", "is required for vSphere"))?;
        let endpoint = Endpoint::parse(address)?;
        let credentials = self
            .credentials
            .ok_or_else(|| Error::invalid_field("api_key", "the vSphere user is required"))?;
        if credentials.api_key().trim().is_empty() {
            return Err(Error::invalid_field("api_key", "the vSphere user is empty"));
        }
        if credentials.api_secret().is_empty() {
            return Err(Error::invalid_field(
                "api_secret",
                "the vSphere password is empty",
            ));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(Error::invalid_field(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        let limiter = self
            .limiter
            .unwrap_or_else(|| Arc::new(RateLimiter::unlimited()));
        let once_config = self.http.clone().with_retry(RetryConfig::no_retry());
        let mut http = HttpClient::new(self.http, Some(Vendor::Vsphere), VsphereClassifier)?
            .with_limiter(Arc::clone(&limiter));
        let mut http_once = HttpClient::new(once_config, Some(Vendor::Vsphere), VsphereClassifier)?
            .with_limiter(limiter);
        if let Some(runtime) = self.io_runtime {
            http = http.with_io_runtime(runtime.clone());
            http_once = http_once.with_io_runtime(runtime);
        }
        let client = VsphereClient::new(http, http_once, sdk_url(&endpoint), credentials);
        Ok(VsphereHostProvider::new(
            Arc::new(client),
            endpoint.host_header(),
            self.page_size,
        ))
    }
}

/// The SDK URL of an address: its path if it already ends in `/sdk`, else `sdk` below it.
fn sdk_url(endpoint: &Endpoint) -> Url {
    let base = endpoint.base_url();
    if base.path().trim_end_matches('/').ends_with("/sdk") {
        let mut url = base.clone();
        let path = base.path().trim_end_matches('/').to_owned();
        url.set_path(&path);
        url
    } else {
        endpoint.join("sdk")
    }
}

#[cfg(test)]
mod tests {
    use cmdb_core::{ErrorKind, HostProvider};

    use super::*;

    fn creds() -> Credentials {
        Credentials::new("administrator@vsphere.local", "pa55-secret")
    }

    #[test]
    fn the_sdk_path_is_added_once_and_the_region_is_the_host() {
        for (address, sdk, region) in [
            (
                "https://vc.example.com",
                "https://vc.example.com/sdk",
                "vc.example.com",
            ),
            (
                "https://vc.example.com/sdk",
                "https://vc.example.com/sdk",
                "vc.example.com",
            ),
            (
                "https://vc.example.com/sdk/",
                "https://vc.example.com/sdk",
                "vc.example.com",
            ),
            (
                "http://127.0.0.1:8989/sdk",
                "http://127.0.0.1:8989/sdk",
                "127.0.0.1:8989",
            ),
            (
                "https://proxy.example.com/vc1/",
                "https://proxy.example.com/vc1/sdk",
                "proxy.example.com",
            ),
        ] {
            let endpoint = Endpoint::parse(address).unwrap();
            assert_eq!(sdk_url(&endpoint).as_str(), sdk, "{address}");
            let p = VsphereBuilder::new()
                .with_address(address)
                .with_credentials(creds())
                .build()
                .unwrap();
            assert_eq!(p.region(), region);
        }
    }

    #[test]
    fn missing_or_invalid_settings_are_rejected() {
        let cases = [
            (VsphereBuilder::new().with_credentials(creds()), "address"),
            (VsphereBuilder::new().with_address("https://vc"), "api_key"),
            (
                VsphereBuilder::new()
                    .with_address("https://vc")
                    .with_credentials(Credentials::new("u", "")),
                "api_secret",
            ),
            (
                VsphereBuilder::new()
                    .with_address("https://vc")
                    .with_credentials(creds())
                    .with_page_size(0),
                "page_size",
            ),
            (
                VsphereBuilder::new()
                    .with_address("ftp://vc")
                    .with_credentials(creds()),
                "address",
            ),
        ];
        for (builder, field) in cases {
            let e = builder.build().unwrap_err();
            assert_eq!(
                (e.kind(), e.field()),
                (ErrorKind::InvalidInput, Some(field))
            );
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let b = VsphereBuilder::new()
            .with_address("https://vc.example.com")
            .with_credentials(creds());
        let shown = format!("{b:?}");
        assert!(!shown.contains("pa55-secret"), "{shown}");
        let p = b.build().unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("pa55-secret"), "{shown}");
        assert!(shown.contains("vc.example.com"));
    }
}
