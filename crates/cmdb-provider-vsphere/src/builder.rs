//! [`VsphereBuilder`]: configuration of a [`VsphereHostProvider`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use cmdb_core::{Error, Result, Vendor};
use cmdb_http::{client_settings_methods, ClientSettings, Endpoint, RetryConfig};
use cmdb_secret::Credentials;
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
///     .with_endpoint("https://vcenter.example.com")
///     .with_credentials(Credentials::new("administrator@vsphere.local", "secret"))
///     .with_page_size(200)
///     .build()?;
/// assert_eq!(cmdb_core::HostProvider::region(&provider), "vcenter.example.com");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct VsphereBuilder {
    settings: ClientSettings,
    page_size: u32,
    /// `GOVC_TLS_CA_CERTS`, read when the provider is built.
    ca_file: Option<PathBuf>,
}

impl fmt::Debug for VsphereBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VsphereBuilder")
            .field("settings", &self.settings)
            .field("page_size", &self.page_size)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl Default for VsphereBuilder {
    fn default() -> Self {
        VsphereBuilder::new()
    }
}

impl VsphereBuilder {
    /// A builder with no address or credentials, pages of [`DEFAULT_PAGE_SIZE`] and the
    /// default [`HttpConfig`](cmdb_http::HttpConfig).
    pub fn new() -> VsphereBuilder {
        VsphereBuilder {
            settings: ClientSettings::default(),
            page_size: DEFAULT_PAGE_SIZE,
            ca_file: None,
        }
    }

    /// A builder from govc's variables: `GOVC_URL` (the endpoint), `GOVC_USERNAME`,
    /// `GOVC_PASSWORD`, `GOVC_INSECURE` (`1`/`true` accepts invalid certificates) and
    /// `GOVC_TLS_CA_CERTS` (a PEM file of extra roots, read by [`build`](Self::build),
    /// which fails if it cannot be read). Unset variables leave the defaults.
    pub fn from_env() -> VsphereBuilder {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut builder = VsphereBuilder::new();
        builder.settings.endpoint = var("GOVC_URL");
        if let (Some(user), Some(password)) = (var("GOVC_USERNAME"), var("GOVC_PASSWORD")) {
            builder.settings.credentials = Some(Credentials::new(user, password));
        }
        if let Some(insecure) = var("GOVC_INSECURE") {
            builder.settings.http.accept_invalid_certs =
                matches!(insecure.trim(), "1" | "true" | "TRUE" | "True");
        }
        builder.ca_file = var("GOVC_TLS_CA_CERTS").map(PathBuf::from);
        builder
    }

    client_settings_methods!(settings);

    /// Virtual machines per page (`maxObjects`), 1 to [`MAX_PAGE_SIZE`].
    pub fn with_page_size(mut self, page_size: u32) -> VsphereBuilder {
        self.page_size = page_size;
        self
    }

    /// Accepts any server certificate (self-signed lab vCenters). Off by default; a
    /// warning is logged whenever a provider is built with it on.
    pub fn with_accept_invalid_certs(mut self, accept: bool) -> VsphereBuilder {
        self.settings.http.accept_invalid_certs = accept;
        self
    }

    /// Trusts these PEM root certificates too (the vCenter's VMCA or a private CA).
    pub fn with_ca_bundle_pem(mut self, pem: impl Into<Vec<u8>>) -> VsphereBuilder {
        self.settings.http.ca_bundle_pem = Some(pem.into());
        self
    }

    /// Checks the settings and builds the provider. No request is made.
    ///
    /// Errors are [`InvalidInput`](cmdb_core::ErrorKind::InvalidInput) naming the field:
    /// no or an invalid endpoint (`address`: `https://vc.example.com`, the SDK path `/sdk`
    /// is added, or the full SDK URL; `http` for simulators), no credentials or an empty
    /// user or password (`api_key`, `api_secret`), a page size out of range, an unreadable
    /// CA file (`ca_bundle_pem`), an invalid HTTP configuration.
    pub fn build(&self) -> Result<VsphereHostProvider> {
        let endpoint = self
            .settings
            .endpoint()?
            .ok_or_else(|| Error::invalid_field("address", "is required for vSphere"))?;
        let credentials = self.settings.credentials()?;
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(Error::invalid_field(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        let mut config = self.settings.http.clone();
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                Error::invalid_field(
                    "ca_bundle_pem",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            config = config.with_ca_bundle_pem(pem);
        }
        // Logins are sent once: a retried wrong password could lock the account.
        let once_config = config.clone().with_retry(RetryConfig::no_retry());
        // A vCenter's region is its host.
        let region = endpoint.host_header();
        let http = self
            .settings
            .http_client(config, Vendor::Vsphere, VsphereClassifier)?
            .with_region(&region);
        let http_once = self
            .settings
            .http_client(once_config, Vendor::Vsphere, VsphereClassifier)?
            .with_limiter(Arc::clone(http.limiter()))
            .with_region(&region);
        let client = VsphereClient::new(http, http_once, sdk_url(&endpoint), credentials);
        Ok(VsphereHostProvider::new(
            Arc::new(client),
            region,
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
                .with_endpoint(address)
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
            (VsphereBuilder::new().with_endpoint("https://vc"), "api_key"),
            (
                VsphereBuilder::new()
                    .with_endpoint("https://vc")
                    .with_credentials(Credentials::new("u", "")),
                "api_secret",
            ),
            (
                VsphereBuilder::new()
                    .with_endpoint("https://vc")
                    .with_credentials(creds())
                    .with_page_size(0),
                "page_size",
            ),
            (
                VsphereBuilder::new()
                    .with_endpoint("ftp://vc")
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
            .with_endpoint("https://vc.example.com")
            .with_credentials(creds());
        let shown = format!("{b:?}");
        assert!(!shown.contains("pa55-secret"), "{shown}");
        let p = b.build().unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("pa55-secret"), "{shown}");
        assert!(shown.contains("vc.example.com"));
    }
}
