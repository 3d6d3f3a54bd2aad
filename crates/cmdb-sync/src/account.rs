//! A cloud account's credentials and settings, in the caller's hands.

use std::fmt;

use cmdb_core::Vendor;
use cmdb_secret::{Credentials, Secret, DEFAULT_REQUEST_RATE};

/// A cloud account to sync with credentials already in hand (read from your own vault,
/// configuration or environment), with no [`SecretStore`](cmdb_secret::SecretStore) and
/// no [`Cipher`](cmdb_secret::Cipher): give it to
/// [`Syncer::sync_account`](crate::Syncer::sync_account).
///
/// `Debug` masks the key and hides the secret and the endpoint's user, password and query.
///
/// ```
/// use cmdb_core::Vendor;
/// use cmdb_secret::Credentials;
/// use cmdb_sync::Account;
///
/// let account = Account::new(Vendor::Tencent, Credentials::new("AKIDexample", "s3cret"))
///     .with_request_rate(20);
/// assert!(!format!("{account:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Account {
    /// The vendor the credentials belong to.
    pub vendor: Vendor,
    /// The API key pair (zeroized on drop, redacted in `Debug`).
    pub credentials: Credentials,
    /// An endpoint overriding the vendor's public one: a full http or https URL
    /// (required for vSphere: the vCenter's address).
    pub endpoint: Option<String>,
    /// Requests per second sent to the vendor, shared by every run of the account in
    /// one [`Syncer`](crate::Syncer). Default [`DEFAULT_REQUEST_RATE`].
    pub request_rate: u32,
    /// Whether a vSphere endpoint may be plain http (the password then crosses the
    /// network in clear).
    pub allow_insecure_http: bool,
    /// Extra trusted root certificates for the endpoint, PEM.
    pub tls_ca_pem: Option<String>,
    /// Whether any certificate of the endpoint is accepted (a lab, never production).
    pub tls_skip_verify: bool,
}

impl Account {
    /// An account of `vendor` with `credentials`, the vendor's public endpoint and the
    /// default request rate.
    pub fn new(vendor: Vendor, credentials: Credentials) -> Account {
        Account {
            vendor,
            credentials,
            endpoint: None,
            request_rate: DEFAULT_REQUEST_RATE,
            allow_insecure_http: false,
            tls_ca_pem: None,
            tls_skip_verify: false,
        }
    }

    /// The account a stored `secret` describes, with its decrypted `credentials`.
    pub fn from_secret(secret: &Secret, credentials: Credentials) -> Account {
        Account {
            vendor: secret.vendor,
            credentials,
            endpoint: secret.address.clone(),
            request_rate: secret.request_rate,
            allow_insecure_http: secret.allow_insecure_http,
            tls_ca_pem: secret.tls_ca_pem.clone(),
            tls_skip_verify: secret.tls_skip_verify,
        }
    }

    /// Sets the endpoint override (a full http or https URL).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Account {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets the request rate, in requests per second.
    pub fn with_request_rate(mut self, rate: u32) -> Account {
        self.request_rate = rate;
        self
    }

    /// Allows a vSphere endpoint over plain http, or not.
    pub fn with_allow_insecure_http(mut self, allow: bool) -> Account {
        self.allow_insecure_http = allow;
        self
    }

    /// Trusts the root certificates of `pem` for the endpoint, beside the system's.
    pub fn with_tls_ca_pem(mut self, pem: impl Into<String>) -> Account {
        self.tls_ca_pem = Some(pem.into());
        self
    }

    /// Accepts any certificate of the endpoint, or not (a lab, never production).
    pub fn with_tls_skip_verify(mut self, skip: bool) -> Account {
        self.tls_skip_verify = skip;
        self
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("vendor", &self.vendor)
            .field("credentials", &self.credentials)
            .field(
                "endpoint",
                &self.endpoint.as_deref().map(cmdb_secret::redact_address),
            )
            .field("request_rate", &self.request_rate)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("tls_ca_pem_set", &self.tls_ca_pem.is_some())
            .field("tls_skip_verify", &self.tls_skip_verify)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_neither_the_secret_nor_the_endpoint_userinfo() {
        let account = Account::new(
            Vendor::Vsphere,
            Credentials::new("administrator@vsphere.local", "hunter2"),
        )
        .with_endpoint("https://admin:pa55@vc.example.com/sdk?token=t0ken")
        .with_tls_ca_pem("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
        let shown = format!("{account:?}");
        assert!(shown.contains("https://vc.example.com/sdk"), "{shown}");
        for hidden in ["hunter2", "pa55", "t0ken", "MIIB"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
    }
}
