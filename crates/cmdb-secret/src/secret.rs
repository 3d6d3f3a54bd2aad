//! Secrets: what a user submits ([`NewSecret`]), what is stored ([`Secret`], encrypted) and
//! what is shown ([`MaskedSecret`]).

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use cmdb_core::{Error, Result, Vendor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cipher::Cipher;
use crate::schedule::{some_or_null, SyncInterval};

/// Requests per second a secret may make when the request does not say.
pub const DEFAULT_REQUEST_RATE: u32 = 5;

/// The highest request rate a secret may ask for.
pub const MAX_REQUEST_RATE: u32 = 1000;

/// What listings and `Debug` output show in place of an API secret.
pub(crate) const MASKED_API_SECRET: &str = "******";

const MAX_DESCRIPTION_CHARS: usize = 100;
const MAX_API_KEY_CHARS: usize = 100;
const MAX_API_SECRET_CHARS: usize = 100;
const MAX_REGION_CHARS: usize = 64;
/// Largest `tls_ca_pem` accepted.
const MAX_CA_PEM_BYTES: usize = 64 * 1024;
/// Largest `session_token` accepted. STS tokens run to a few KiB (Alibaba Cloud's
/// `SecurityToken` grows with the role's policy); the bound keeps a row small.
const MAX_SESSION_TOKEN_BYTES: usize = 16 * 1024;

/// The input that creates a secret: the body of `POST /secrets`.
///
/// Unknown fields are rejected when deserializing, so a misspelt `request_rate` is an
/// error rather than a silent default. `Debug` masks the API key and hides the secret.
///
/// ```
/// use cmdb_secret::{Cipher, NewSecret};
///
/// let new: NewSecret = serde_json::from_str(r#"{
///     "vendor": "aliyun",
///     "description": "production account",
///     "api_key": "LTAI5tAbCdEfGh12",
///     "api_secret": "not-really-a-secret",
///     "allowed_regions": ["cn-hangzhou", "cn-beijing"]
/// }"#).unwrap();
/// let secret = new.seal(&Cipher::new(Cipher::generate_key())).unwrap();
/// assert_eq!(secret.request_rate, cmdb_secret::DEFAULT_REQUEST_RATE);
/// assert!(secret.api_secret.starts_with("v2:"));
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct NewSecret {
    /// The vendor the credentials belong to.
    pub vendor: Vendor,
    /// What the secret is for; required, at most 100 characters.
    pub description: String,
    /// The API key (access key id, secret id, AK; the user name for vSphere); required,
    /// at most 100 characters.
    pub api_key: String,
    /// The API secret (access key secret, secret key, SK; the password for vSphere);
    /// required, at most 100 characters. Zeroized on drop.
    #[cfg_attr(feature = "openapi", schema(value_type = String, write_only))]
    pub api_secret: Zeroizing<String>,
    /// The session token of temporary (STS) credentials, when `api_key` and `api_secret`
    /// are temporary ones: Alibaba Cloud `SecurityToken`, Tencent Cloud `Token`, Huawei
    /// Cloud `securitytoken`. Optional, at most 16 KiB, no control characters; a blank
    /// value counts as absent; refused for vSphere, which has no temporary credentials.
    /// Encrypted like `api_secret`, never answered. Zeroized on drop.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, write_only))]
    pub session_token: Option<Zeroizing<String>>,
    /// Regions a sync with this secret may list: at least one; `"*"` allows any. Each entry
    /// is 1 to 64 characters of `A-Z a-z 0-9 - _ .`, or exactly `"*"`.
    pub allowed_regions: Vec<String>,
    /// Requests per second to the vendor, 1 to [`MAX_REQUEST_RATE`]; default
    /// [`DEFAULT_REQUEST_RATE`].
    #[serde(default)]
    pub request_rate: Option<u32>,
    /// Endpoint URL (http or https, with a host, without user, password, query or
    /// fragment) overriding the vendor's default; required for [`Vendor::Vsphere`] (the
    /// vCenter or ESXi address).
    /// A blank value counts as absent.
    #[serde(default)]
    pub address: Option<String>,
    /// Allows a vSphere `address` over plain `http` (default false: the password would
    /// cross the network in clear, so an `http` vSphere address is refused without it).
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// Extra trusted root certificates for this secret's endpoint, PEM (e.g. a vCenter's
    /// VMCA root); at most 64 KiB. The system's roots stay trusted.
    #[serde(default)]
    pub tls_ca_pem: Option<String>,
    /// Accepts any certificate from this secret's endpoint (default false; lab vCenters
    /// only, logged as a warning at every sync). Prefer `tls_ca_pem`.
    #[serde(default)]
    pub tls_skip_verify: bool,
    /// Syncs every region of the account by itself this often (`"30m"`, `"1h"`; 1m to
    /// 7d), the first time at once; absent, the account is synced only when asked. A
    /// scheduled sync that fails is retried later and later (see the README, "Schedules").
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "30m"))]
    pub sync_interval: Option<SyncInterval>,
}

impl NewSecret {
    /// A secret of `vendor` with these credentials and nothing else set: give it a
    /// description and allowed regions before sealing (both are required).
    ///
    /// ```
    /// use cmdb_core::Vendor;
    /// use cmdb_secret::{Cipher, NewSecret};
    ///
    /// let new = NewSecret::new(Vendor::Vsphere, "cmdb@vsphere.local", "not-really-a-secret")
    ///     .with_description("lab vCenter")
    ///     .with_allowed_regions(["*"])
    ///     .with_address("https://vcenter.example.com/sdk");
    /// let secret = new.seal(&Cipher::new(Cipher::generate_key())).unwrap();
    /// assert_eq!(secret.address.as_deref(), Some("https://vcenter.example.com/sdk"));
    /// ```
    pub fn new(
        vendor: Vendor,
        api_key: impl Into<String>,
        api_secret: impl Into<String>,
    ) -> NewSecret {
        NewSecret {
            vendor,
            description: String::new(),
            api_key: api_key.into(),
            api_secret: Zeroizing::new(api_secret.into()),
            session_token: None,
            allowed_regions: Vec::new(),
            request_rate: None,
            address: None,
            allow_insecure_http: false,
            tls_ca_pem: None,
            tls_skip_verify: false,
            sync_interval: None,
        }
    }

    /// Sets what the secret is for.
    pub fn with_description(mut self, description: impl Into<String>) -> NewSecret {
        self.description = description.into();
        self
    }

    /// Sets the session token of temporary (STS) credentials; a blank token is no token.
    ///
    /// ```
    /// use cmdb_core::Vendor;
    /// use cmdb_secret::{Cipher, NewSecret};
    ///
    /// let cipher = Cipher::new(Cipher::generate_key());
    /// let secret = NewSecret::new(Vendor::Aliyun, "STS.NUgYrLnoC", "not-really-a-secret")
    ///     .with_session_token("CAIS-not-really-a-token")
    ///     .with_description("assumed role")
    ///     .with_allowed_regions(["cn-hangzhou"])
    ///     .seal(&cipher)
    ///     .unwrap();
    /// assert!(secret.masked().session_token_set);
    /// let credentials = cipher.decrypt_credentials(&secret).unwrap();
    /// assert_eq!(credentials.session_token(), Some("CAIS-not-really-a-token"));
    /// ```
    pub fn with_session_token(mut self, token: impl Into<String>) -> NewSecret {
        self.session_token = Some(Zeroizing::new(token.into()));
        self
    }

    /// Sets the regions a sync with this secret may list (`"*"` allows any).
    pub fn with_allowed_regions<I, S>(mut self, regions: I) -> NewSecret
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_regions = regions.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the requests per second to the vendor.
    pub fn with_request_rate(mut self, rate: u32) -> NewSecret {
        self.request_rate = Some(rate);
        self
    }

    /// Sets the endpoint URL overriding the vendor's default (the vCenter for vSphere).
    pub fn with_address(mut self, address: impl Into<String>) -> NewSecret {
        self.address = Some(address.into());
        self
    }

    /// Allows (or not) a vSphere address over plain `http`.
    pub fn with_allow_insecure_http(mut self, allow: bool) -> NewSecret {
        self.allow_insecure_http = allow;
        self
    }

    /// Trusts the root certificate(s) of a PEM bundle for the endpoint, besides the
    /// system's.
    pub fn with_tls_ca_pem(mut self, pem: impl Into<String>) -> NewSecret {
        self.tls_ca_pem = Some(pem.into());
        self
    }

    /// Accepts any certificate from the endpoint (or not); lab vCenters only.
    pub fn with_tls_skip_verify(mut self, skip: bool) -> NewSecret {
        self.tls_skip_verify = skip;
        self
    }

    /// Syncs the whole account by itself every `every`.
    pub fn with_sync_interval(mut self, every: SyncInterval) -> NewSecret {
        self.sync_interval = Some(every);
        self
    }

    /// Checks every field; the error names the first invalid field
    /// ([`Error::field`]).
    pub fn validate(&self) -> Result<()> {
        validate_description(&self.description)?;
        if self.api_key.trim().is_empty() {
            return Err(Error::invalid_field("api_key", "is required"));
        }
        if self.api_key.chars().count() > MAX_API_KEY_CHARS {
            return Err(Error::invalid_field(
                "api_key",
                format!("must be at most {MAX_API_KEY_CHARS} characters"),
            ));
        }
        if self.api_secret.is_empty() {
            return Err(Error::invalid_field("api_secret", "is required"));
        }
        if self.api_secret.chars().count() > MAX_API_SECRET_CHARS {
            return Err(Error::invalid_field(
                "api_secret",
                format!("must be at most {MAX_API_SECRET_CHARS} characters"),
            ));
        }
        if let Some(token) = self.session_token() {
            validate_session_token(self.vendor, token)?;
        }
        validate_regions(&self.allowed_regions)?;
        if let Some(rate) = self.request_rate {
            if rate == 0 || rate > MAX_REQUEST_RATE {
                return Err(Error::invalid_field(
                    "request_rate",
                    format!("must be between 1 and {MAX_REQUEST_RATE}"),
                ));
            }
        }
        match self.address() {
            Some(address) => validate_address(address)?,
            None if self.vendor == Vendor::Vsphere => {
                return Err(Error::invalid_field(
                    "address",
                    "is required for vsphere (the vCenter or ESXi URL)",
                ))
            }
            None => {}
        }
        if self.vendor == Vendor::Vsphere
            && !self.allow_insecure_http
            && self
                .address()
                .is_some_and(|a| a.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("http:")))
        {
            return Err(Error::invalid_field(
                "address",
                "is plain http: the vSphere password would cross the network in clear; use \
                 https, or set \"allow_insecure_http\": true",
            ));
        }
        if let Some(pem) = &self.tls_ca_pem {
            if pem.len() > MAX_CA_PEM_BYTES || !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(Error::invalid_field(
                    "tls_ca_pem",
                    format!(
                        "must be PEM certificates (-----BEGIN CERTIFICATE-----), at most \
                         {MAX_CA_PEM_BYTES} bytes"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Validates, gives the secret a new id (a UUID v4) and encrypts the API secret with
    /// `cipher`, binding the ciphertext to what decides where the secret is sent (see
    /// [`Secret::binding`]): a ciphertext copied onto another secret, or a row whose
    /// address, key or TLS settings were changed, does not decrypt.
    pub fn seal(self, cipher: &Cipher) -> Result<Secret> {
        self.seal_with_id(uuid::Uuid::new_v4().to_string(), cipher)
    }

    /// [`seal`](Self::seal) with an id chosen by the caller, for secrets that must keep
    /// one id across processes (e.g. a CLI that derives it from the vendor and key). The
    /// id is at most 100 characters of letters, digits, `-`, `_` and `.`.
    pub fn seal_with_id(self, id: impl Into<String>, cipher: &Cipher) -> Result<Secret> {
        self.validate()?;
        let id = id.into();
        if id.is_empty()
            || id.len() > 100
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(Error::invalid_field(
                "id",
                "must be 1 to 100 letters, digits, '-', '_' or '.'",
            ));
        }
        // SQL stores keep microseconds: truncate so a stored secret reads back equal.
        self.seal_as(id, Utc::now().trunc_subsecs(6), cipher)
    }

    /// Seals a validated secret as `id`, created at `created_at`.
    fn seal_as(self, id: String, created_at: DateTime<Utc>, cipher: &Cipher) -> Result<Secret> {
        let address = self.address().map(str::to_owned);
        let session_token = self.session_token().map(|t| Zeroizing::new(t.to_owned()));
        let mut secret = Secret {
            id,
            vendor: self.vendor,
            description: self.description,
            api_key: self.api_key,
            api_secret: String::new(),
            session_token: None,
            allowed_regions: self.allowed_regions,
            request_rate: self.request_rate.unwrap_or(DEFAULT_REQUEST_RATE),
            address,
            allow_insecure_http: self.allow_insecure_http,
            tls_ca_pem: self.tls_ca_pem.filter(|p| !p.trim().is_empty()),
            tls_skip_verify: self.tls_skip_verify,
            sync_interval: self.sync_interval,
            // A new schedule is due at once.
            next_sync_at: self.sync_interval.map(|_| created_at),
            sync_failures: 0,
            created_at,
        };
        secret.api_secret = cipher.encrypt_api_secret(&secret, self.api_secret.as_bytes())?;
        secret.session_token = session_token
            .map(|token| cipher.encrypt_session_token(&secret, token.as_bytes()))
            .transpose()?;
        Ok(secret)
    }

    fn address(&self) -> Option<&str> {
        self.address
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
    }

    /// The session token, unless absent or blank.
    fn session_token(&self) -> Option<&str> {
        self.session_token
            .as_deref()
            .map(String::as_str)
            .filter(|t| !t.trim().is_empty())
    }
}

impl fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSecret")
            .field("vendor", &self.vendor)
            .field("description", &self.description)
            .field("api_key", &mask_api_key(&self.api_key))
            .field("api_secret", &MASKED_API_SECRET)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| MASKED_API_SECRET),
            )
            .field("allowed_regions", &self.allowed_regions)
            .field("request_rate", &self.request_rate)
            .field("address", &self.address.as_deref().map(redact_address))
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("tls_ca_pem", &self.tls_ca_pem.as_ref().map(|p| p.len()))
            .field("tls_skip_verify", &self.tls_skip_verify)
            .field("sync_interval", &self.sync_interval)
            .finish()
    }
}

/// The changes of `PATCH /secrets/:id`: every field is optional, and an absent (or
/// `null`) field is left as it is. Applied with [`Secret::patched`], which validates the
/// result as [`NewSecret::validate`] does.
///
/// - `address`, `tls_ca_pem`: a blank value removes them (the vendor's public endpoint,
///   the system's roots only).
/// - `api_key` changes only with its `api_secret`. A new `api_secret` replaces the
///   session token too: by the `session_token` given, or by none.
/// - `session_token` alone replaces the token of the current credentials; blank removes
///   it.
///
/// Unknown fields are rejected when deserializing. `Debug` masks the API key and hides
/// the secret and the token.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct SecretPatch {
    /// What the secret is for; at most 100 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// Regions a sync with this secret may list: at least one; `"*"` allows any.
    #[serde(default)]
    pub allowed_regions: Option<Vec<String>>,
    /// Requests per second to the vendor, 1 to [`MAX_REQUEST_RATE`].
    #[serde(default)]
    pub request_rate: Option<u32>,
    /// Endpoint URL overriding the vendor's default (the vCenter for vSphere, where it is
    /// required); blank removes the override.
    #[serde(default)]
    pub address: Option<String>,
    /// Allows a vSphere `address` over plain `http`.
    #[serde(default)]
    pub allow_insecure_http: Option<bool>,
    /// Extra trusted root certificates for the endpoint, PEM; blank removes them.
    #[serde(default)]
    pub tls_ca_pem: Option<String>,
    /// Accepts any certificate from the endpoint (lab vCenters only).
    #[serde(default)]
    pub tls_skip_verify: Option<bool>,
    /// A new API key; requires `api_secret`.
    #[serde(default)]
    pub api_key: Option<String>,
    /// A new API secret; encrypted, never answered. Zeroized on drop.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, write_only))]
    pub api_secret: Option<Zeroizing<String>>,
    /// A new session token of temporary credentials; blank removes it. Encrypted, never
    /// answered. Zeroized on drop.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, write_only))]
    pub session_token: Option<Zeroizing<String>>,
    /// A new schedule (`"30m"`), or `null` to remove it. A new or changed schedule is due
    /// at once if it was off, else at the earlier of its old due time and one new
    /// interval from now; its failure count starts again.
    #[serde(default, deserialize_with = "some_or_null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "1h"))]
    pub sync_interval: Option<Option<SyncInterval>>,
}

impl SecretPatch {
    /// Changes the description.
    pub fn with_description(mut self, description: impl Into<String>) -> SecretPatch {
        self.description = Some(description.into());
        self
    }

    /// Changes the allowed regions.
    pub fn with_allowed_regions<I, S>(mut self, regions: I) -> SecretPatch
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_regions = Some(regions.into_iter().map(Into::into).collect());
        self
    }

    /// Changes the request rate.
    pub fn with_request_rate(mut self, rate: u32) -> SecretPatch {
        self.request_rate = Some(rate);
        self
    }

    /// Changes the address; blank removes it.
    pub fn with_address(mut self, address: impl Into<String>) -> SecretPatch {
        self.address = Some(address.into());
        self
    }

    /// Allows (or not) a vSphere address over plain `http`.
    pub fn with_allow_insecure_http(mut self, allow: bool) -> SecretPatch {
        self.allow_insecure_http = Some(allow);
        self
    }

    /// Changes the trusted roots (PEM); blank removes them.
    pub fn with_tls_ca_pem(mut self, pem: impl Into<String>) -> SecretPatch {
        self.tls_ca_pem = Some(pem.into());
        self
    }

    /// Accepts any certificate from the endpoint (or not).
    pub fn with_tls_skip_verify(mut self, skip: bool) -> SecretPatch {
        self.tls_skip_verify = Some(skip);
        self
    }

    /// Replaces the credentials: the API key and its secret (the session token goes
    /// unless one is given with [`with_session_token`](Self::with_session_token)).
    pub fn with_credentials(
        mut self,
        api_key: impl Into<String>,
        api_secret: impl Into<String>,
    ) -> SecretPatch {
        self.api_key = Some(api_key.into());
        self.api_secret = Some(Zeroizing::new(api_secret.into()));
        self
    }

    /// Replaces the API secret, keeping the key.
    pub fn with_api_secret(mut self, api_secret: impl Into<String>) -> SecretPatch {
        self.api_secret = Some(Zeroizing::new(api_secret.into()));
        self
    }

    /// Replaces the session token; blank removes it.
    pub fn with_session_token(mut self, token: impl Into<String>) -> SecretPatch {
        self.session_token = Some(Zeroizing::new(token.into()));
        self
    }

    /// Sets the schedule (`Some`) or removes it (`None`).
    pub fn with_sync_interval(mut self, every: Option<SyncInterval>) -> SecretPatch {
        self.sync_interval = Some(every);
        self
    }
}

impl fmt::Debug for SecretPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretPatch")
            .field("description", &self.description)
            .field("allowed_regions", &self.allowed_regions)
            .field("request_rate", &self.request_rate)
            .field("address", &self.address.as_deref().map(redact_address))
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("tls_ca_pem", &self.tls_ca_pem.as_ref().map(|p| p.len()))
            .field("tls_skip_verify", &self.tls_skip_verify)
            .field("api_key", &self.api_key.as_deref().map(mask_api_key))
            .field(
                "api_secret",
                &self.api_secret.as_ref().map(|_| MASKED_API_SECRET),
            )
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| MASKED_API_SECRET),
            )
            .field("sync_interval", &self.sync_interval)
            .finish()
    }
}

/// An address as `Debug` shows it: unchanged when it is a URL with a host and nothing
/// else that can carry a credential; otherwise its scheme, host, port and path only (no
/// user name, password, query or fragment), or nothing of it when it is not a URL with a
/// host (`admin:hunter2@vc` parses as scheme `admin` with the password in its path).
/// A [`NewSecret`] is shown before it is validated, so its address may hold anything.
pub fn redact_address(address: &str) -> String {
    match url::Url::parse(address.trim()) {
        Ok(u) if u.has_host() => {
            let clean = u.username().is_empty()
                && u.password().is_none()
                && u.query().is_none()
                && u.fragment().is_none();
            if clean {
                return address.to_owned();
            }
            let mut out = format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default());
            if let Some(port) = u.port() {
                out.push_str(&format!(":{port}"));
            }
            out.push_str(u.path());
            out
        }
        _ => "<hidden: not a URL with a host>".to_owned(),
    }
}

fn validate_description(description: &str) -> Result<()> {
    if description.trim().is_empty() {
        return Err(Error::invalid_field("description", "is required"));
    }
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::invalid_field(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(())
}

fn validate_regions(regions: &[String]) -> Result<()> {
    if regions.is_empty() {
        return Err(Error::invalid_field(
            "allowed_regions",
            "needs at least one region (\"*\" allows any)",
        ));
    }
    for (i, region) in regions.iter().enumerate() {
        if region.is_empty() {
            return Err(Error::invalid_field(
                "allowed_regions",
                format!("entry {i} is empty"),
            ));
        }
        if region.chars().count() > MAX_REGION_CHARS {
            return Err(Error::invalid_field(
                "allowed_regions",
                format!("entry {i} is longer than {MAX_REGION_CHARS} characters"),
            ));
        }
        let valid_chars = region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*'));
        if !valid_chars {
            return Err(Error::invalid_field(
                "allowed_regions",
                format!("entry {i} {region:?} may only contain A-Z a-z 0-9 - _ . or be \"*\""),
            ));
        }
        // Only a lone "*" is a wildcard; "cn-*" would look like a pattern but match
        // nothing, so it is refused rather than silently useless.
        if region.contains('*') && region != "*" {
            return Err(Error::invalid_field(
                "allowed_regions",
                format!("entry {i} {region:?}: \"*\" must stand alone (it allows any region)"),
            ));
        }
    }
    Ok(())
}

/// Checks a session token. Nothing of the token is echoed in messages.
fn validate_session_token(vendor: Vendor, token: &str) -> Result<()> {
    if vendor == Vendor::Vsphere {
        return Err(Error::invalid_field(
            "session_token",
            "is not accepted for vsphere (vSphere has no temporary credentials)",
        ));
    }
    if token.len() > MAX_SESSION_TOKEN_BYTES {
        return Err(Error::invalid_field(
            "session_token",
            format!("must be at most {MAX_SESSION_TOKEN_BYTES} bytes"),
        ));
    }
    // It goes into a request header: a line break would split the request.
    if token.chars().any(char::is_control) {
        return Err(Error::invalid_field(
            "session_token",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks an endpoint URL. The URL is not echoed in messages: it may carry a token.
fn validate_address(address: &str) -> Result<()> {
    let url = url::Url::parse(address)
        .map_err(|e| Error::invalid_field("address", format!("is not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid_field(
            "address",
            "must be an http or https URL",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid_field("address", "must name a host"));
    }
    // Credentials go in api_key/api_secret, where they are encrypted; a password in
    // the address would be stored and listed in clear.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid_field(
            "address",
            "must not contain a user name or password (use api_key and api_secret)",
        ));
    }
    // As a sync refuses one: a token in a query would be stored and listed in clear too.
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid_field(
            "address",
            "must not carry a query or fragment",
        ));
    }
    Ok(())
}

/// A stored secret. [`Secret::api_secret`] holds only ciphertext; decrypt it with
/// [`Cipher::decrypt_credentials`].
///
/// `Debug` masks the API key and shows only the key id of the ciphertext.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct Secret {
    /// Unique id (a UUID v4); part of the ciphertext's associated data.
    pub id: String,
    /// The vendor the credentials belong to.
    pub vendor: Vendor,
    /// What the secret is for.
    pub description: String,
    /// The API key, in clear (it identifies the account; the secret is what signs).
    pub api_key: String,
    /// The encrypted API secret: `v2:<key id>:<base64(nonce || ciphertext || tag)>`,
    /// bound to [`Secret::binding`] (`v1:`, bound to the id only, before 0.2; see
    /// [`rotate_secrets`](crate::rotate_secrets)).
    pub api_secret: String,
    /// The encrypted session token of temporary (STS) credentials, when there is one:
    /// `v2:<key id>:<base64>` under the same key as `api_secret`, bound to
    /// [`Secret::binding`] with a suffix of its own, so neither ciphertext decrypts in
    /// the other's place.
    #[serde(default)]
    pub session_token: Option<String>,
    /// Regions a sync with this secret may list; `"*"` allows any.
    pub allowed_regions: Vec<String>,
    /// Requests per second to the vendor.
    pub request_rate: u32,
    /// Endpoint URL overriding the vendor's default (always set for vSphere).
    pub address: Option<String>,
    /// Whether a vSphere address may be plain http.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// Extra trusted root certificates for the endpoint, PEM.
    #[serde(default)]
    pub tls_ca_pem: Option<String>,
    /// Whether any certificate of the endpoint is accepted.
    #[serde(default)]
    pub tls_skip_verify: bool,
    /// How often the whole account is synced by itself; `None`: only when asked.
    #[serde(default)]
    pub sync_interval: Option<SyncInterval>,
    /// When the next scheduled sync is due, as last read: the store moves it as syncs
    /// are claimed ([`SecretStore::claim_sync`](crate::SecretStore::claim_sync)) and
    /// writes it on [`SecretStore::update`](crate::SecretStore::update) only when the
    /// schedule changed.
    #[serde(default)]
    pub next_sync_at: Option<DateTime<Utc>>,
    /// Scheduled syncs in a row that failed, as last read (kept by the store).
    #[serde(default)]
    pub sync_failures: u32,
    /// When the secret was created.
    pub created_at: DateTime<Utc>,
}

impl Secret {
    /// A secret as a [`SecretStore`](crate::SecretStore) reads it back: `api_secret` is
    /// the ciphertext as stored, never a clear secret (create secrets with
    /// [`NewSecret::seal`]). Everything else starts empty, off or at its default (no
    /// allowed region, [`DEFAULT_REQUEST_RATE`]): assign the stored values to the fields.
    /// The ciphertext is bound to the address and TLS settings, so a secret read back
    /// without them does not decrypt.
    pub fn from_stored(
        id: impl Into<String>,
        vendor: Vendor,
        api_key: impl Into<String>,
        api_secret: impl Into<String>,
        created_at: DateTime<Utc>,
    ) -> Secret {
        Secret {
            id: id.into(),
            vendor,
            description: String::new(),
            api_key: api_key.into(),
            api_secret: api_secret.into(),
            session_token: None,
            allowed_regions: Vec::new(),
            request_rate: DEFAULT_REQUEST_RATE,
            address: None,
            allow_insecure_http: false,
            tls_ca_pem: None,
            tls_skip_verify: false,
            sync_interval: None,
            next_sync_at: None,
            sync_failures: 0,
            created_at,
        }
    }

    /// The associated data the API secret's ciphertext is bound to (format `v2`): the
    /// id, vendor, API key, address and TLS settings, each length-prefixed, so that a
    /// stored row whose destination or trust was changed behind the store's back fails
    /// to decrypt instead of sending the secret elsewhere.
    pub fn binding(&self) -> String {
        let ca = self
            .tls_ca_pem
            .as_deref()
            .map(|p| hex::encode(Sha256::digest(p.as_bytes())))
            .unwrap_or_default();
        let fields = [
            self.id.as_str(),
            self.vendor.as_str(),
            self.api_key.as_str(),
            self.address.as_deref().unwrap_or(""),
            if self.allow_insecure_http { "1" } else { "0" },
            if self.tls_skip_verify { "1" } else { "0" },
            ca.as_str(),
        ];
        let mut out = String::from("cmdb-secret-binding-v2");
        for f in fields {
            out.push_str(&format!("|{}:{f}", f.len()));
        }
        out
    }

    /// The encrypted API secret and session token, as stored.
    pub fn ciphertexts(&self) -> Ciphertexts {
        Ciphertexts::new(self.api_secret.clone(), self.session_token.clone())
    }

    /// Whether a sync of `region` is allowed: the region is listed, or `"*"` is.
    pub fn is_allow_region(&self, region: &str) -> bool {
        self.allowed_regions
            .iter()
            .any(|allowed| allowed == "*" || allowed == region)
    }

    /// This secret with the changes of `patch`, validated as a new secret is and sealed
    /// again under the same id and creation time: its credentials are decrypted with
    /// `cipher` under the current binding and encrypted under the new one (a changed
    /// key, address or TLS setting), with fresh nonces and the active key. Every patch
    /// re-encrypts, so the ciphertexts change with every update and serve as the row's
    /// version for [`SecretStore::update`](crate::SecretStore::update).
    ///
    /// Errors: [`InvalidInput`](cmdb_core::ErrorKind::InvalidInput) naming the first
    /// invalid field (a new `api_key` needs its `api_secret`), or
    /// [`Crypto`](cmdb_core::ErrorKind::Crypto) when the stored ciphertexts do not
    /// decrypt.
    ///
    /// ```
    /// use cmdb_core::Vendor;
    /// use cmdb_secret::{Cipher, NewSecret, SecretPatch};
    ///
    /// let cipher = Cipher::new(Cipher::generate_key());
    /// let secret = NewSecret::new(Vendor::Tencent, "AKIDexample0001", "not-really-a-secret")
    ///     .with_description("before")
    ///     .with_allowed_regions(["ap-guangzhou"])
    ///     .seal(&cipher)
    ///     .unwrap();
    /// let patch = SecretPatch::default()
    ///     .with_description("after")
    ///     .with_address("https://cvm.internal.example");
    /// let changed = secret.patched(patch, &cipher).unwrap();
    /// assert_eq!((changed.id.as_str(), changed.description.as_str()), (secret.id.as_str(), "after"));
    /// assert_ne!(changed.api_secret, secret.api_secret, "sealed again");
    /// let credentials = cipher.decrypt_credentials(&changed).unwrap();
    /// assert_eq!(credentials.api_secret(), "not-really-a-secret");
    /// ```
    pub fn patched(&self, patch: SecretPatch, cipher: &Cipher) -> Result<Secret> {
        let SecretPatch {
            description,
            allowed_regions,
            request_rate,
            address,
            allow_insecure_http,
            tls_ca_pem,
            tls_skip_verify,
            api_key,
            api_secret,
            session_token,
            sync_interval,
        } = patch;
        if api_key.as_ref().is_some_and(|k| *k != self.api_key) && api_secret.is_none() {
            return Err(Error::invalid_field(
                "api_secret",
                "is required with a new api_key",
            ));
        }
        let current = cipher.decrypt_credentials(self)?;
        let session_token = match (session_token, &api_secret) {
            (Some(token), _) => Some(token),
            // New credentials without a token: the old token belonged to the old ones.
            (None, Some(_)) => None,
            (None, None) => current
                .session_token()
                .map(|t| Zeroizing::new(t.to_owned())),
        };
        let new = NewSecret {
            vendor: self.vendor,
            description: description.unwrap_or_else(|| self.description.clone()),
            api_key: api_key.unwrap_or_else(|| self.api_key.clone()),
            api_secret: api_secret
                .unwrap_or_else(|| Zeroizing::new(current.api_secret().to_owned())),
            session_token,
            allowed_regions: allowed_regions.unwrap_or_else(|| self.allowed_regions.clone()),
            request_rate: Some(request_rate.unwrap_or(self.request_rate)),
            address: address.or_else(|| self.address.clone()),
            allow_insecure_http: allow_insecure_http.unwrap_or(self.allow_insecure_http),
            tls_ca_pem: match tls_ca_pem {
                Some(pem) if pem.trim().is_empty() => None,
                Some(pem) => Some(pem),
                None => self.tls_ca_pem.clone(),
            },
            tls_skip_verify: tls_skip_verify.unwrap_or(self.tls_skip_verify),
            sync_interval: sync_interval.unwrap_or(self.sync_interval),
        };
        new.validate()?;
        let mut patched = new.seal_as(self.id.clone(), self.created_at, cipher)?;
        if patched.sync_interval == self.sync_interval {
            patched.next_sync_at = self.next_sync_at;
            patched.sync_failures = self.sync_failures;
        } else if let Some(every) = patched.sync_interval {
            let now = Utc::now().trunc_subsecs(6);
            let next = now + chrono::Duration::seconds(every.as_secs() as i64);
            patched.next_sync_at = Some(match self.next_sync_at {
                Some(due) if self.sync_interval.is_some() => due.min(next),
                _ => now,
            });
        }
        Ok(patched)
    }

    /// The secret as listings and API responses show it: the API key masked, the API
    /// secret replaced by `"******"`, the session token only said to be set.
    pub fn masked(&self) -> MaskedSecret {
        MaskedSecret {
            id: self.id.clone(),
            vendor: self.vendor,
            description: self.description.clone(),
            api_key: mask_api_key(&self.api_key),
            api_secret: MASKED_API_SECRET.to_owned(),
            allowed_regions: self.allowed_regions.clone(),
            request_rate: self.request_rate,
            address: self.address.clone(),
            allow_insecure_http: self.allow_insecure_http,
            tls_ca_pem_set: self.tls_ca_pem.is_some(),
            tls_skip_verify: self.tls_skip_verify,
            session_token_set: self.session_token.is_some(),
            sync_interval: self.sync_interval,
            next_sync_at: self.next_sync_at,
            sync_failures: self.sync_failures,
            created_at: self.created_at,
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Secret");
        d.field("id", &self.id)
            .field("vendor", &self.vendor)
            .field("description", &self.description)
            .field("api_key", &mask_api_key(&self.api_key));
        d.field("api_secret", &Sealed(&self.api_secret));
        if let Some(token) = &self.session_token {
            d.field("session_token", &Sealed(token));
        }
        d.field("allowed_regions", &self.allowed_regions)
            .field("request_rate", &self.request_rate)
            .field("address", &self.address.as_deref().map(redact_address))
            .field("sync_interval", &self.sync_interval)
            .field("next_sync_at", &self.next_sync_at)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A ciphertext as `Debug` shows it: its key id only.
struct Sealed<'a>(&'a str);

impl fmt::Debug for Sealed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Cipher::key_id_of(self.0) {
            Some(key_id) => write!(f, "<encrypted, key {key_id}>"),
            // Not our format (corrupt, or clear text from elsewhere): show nothing of it.
            None => f.write_str("<unrecognized>"),
        }
    }
}

/// The encrypted parts of a stored secret ([`Secret::ciphertexts`]): what
/// [`SecretStore::replace_ciphertexts`](crate::SecretStore::replace_ciphertexts) compares
/// and swaps together when [`rotate_secrets`](crate::rotate_secrets) re-encrypts a
/// secret. `Debug` shows only key ids.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ciphertexts {
    /// The encrypted API secret, as [`Secret::api_secret`].
    pub api_secret: String,
    /// The encrypted session token, as [`Secret::session_token`].
    pub session_token: Option<String>,
}

impl Ciphertexts {
    /// The ciphertexts of an API secret and, when there is one, a session token.
    pub fn new(api_secret: impl Into<String>, session_token: Option<String>) -> Ciphertexts {
        Ciphertexts {
            api_secret: api_secret.into(),
            session_token,
        }
    }
}

impl fmt::Debug for Ciphertexts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ciphertexts")
            .field("api_secret", &Sealed(&self.api_secret))
            .field("session_token", &self.session_token.as_deref().map(Sealed))
            .finish()
    }
}

/// A secret as listings and API responses show it: see [`Secret::masked`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct MaskedSecret {
    /// Unique id.
    pub id: String,
    /// The vendor the credentials belong to.
    pub vendor: Vendor,
    /// What the secret is for.
    pub description: String,
    /// The API key, masked by [`mask_api_key`].
    pub api_key: String,
    /// Always `"******"`.
    #[cfg_attr(feature = "openapi", schema(example = "******"))]
    pub api_secret: String,
    /// Regions a sync with this secret may list; `"*"` allows any.
    pub allowed_regions: Vec<String>,
    /// Requests per second to the vendor.
    pub request_rate: u32,
    /// Endpoint URL overriding the vendor's default.
    pub address: Option<String>,
    /// Whether a vSphere address may be plain http.
    pub allow_insecure_http: bool,
    /// Whether extra trusted roots are set (the PEM itself is not shown).
    pub tls_ca_pem_set: bool,
    /// Whether any certificate of the endpoint is accepted.
    pub tls_skip_verify: bool,
    /// Whether a session token of temporary credentials is set (the token itself is
    /// never shown).
    #[serde(default)]
    pub session_token_set: bool,
    /// How often the whole account is synced by itself (`"30m"`); `null`: only when
    /// asked.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "30m"))]
    pub sync_interval: Option<SyncInterval>,
    /// When the next scheduled sync is due.
    #[serde(default)]
    pub next_sync_at: Option<DateTime<Utc>>,
    /// Scheduled syncs in a row that failed; each pushes the next one further back.
    #[serde(default)]
    pub sync_failures: u32,
    /// When the secret was created.
    pub created_at: DateTime<Utc>,
}

/// Masks an API key for display: its first and last four characters around `****`, or
/// only `****` when the key has 8 characters or fewer (showing 8 of 8 would hide nothing).
///
/// ```
/// assert_eq!(cmdb_secret::mask_api_key("LTAI5tAbCdEfGh12"), "LTAI****Gh12");
/// assert_eq!(cmdb_secret::mask_api_key("short"), "****");
/// ```
pub fn mask_api_key(key: &str) -> String {
    let count = key.chars().count();
    if count <= 8 {
        return "****".to_owned();
    }
    let head: String = key.chars().take(4).collect();
    let tail: String = key.chars().skip(count - 4).collect();
    format!("{head}****{tail}")
}

#[cfg(test)]
mod tests {
    use cmdb_core::ErrorKind;

    use super::*;

    fn new_secret(vendor: Vendor) -> NewSecret {
        NewSecret {
            vendor,
            description: "prod account".into(),
            api_key: "LTAI5tAbCdEfGh12".into(),
            api_secret: Zeroizing::new("s3cr3t-value-xyz".into()),
            session_token: None,
            allowed_regions: vec!["cn-hangzhou".into()],
            request_rate: None,
            address: None,
            allow_insecure_http: false,
            tls_ca_pem: None,
            tls_skip_verify: false,
            sync_interval: None,
        }
    }

    fn field_of(new: &NewSecret) -> &'static str {
        let err = new.validate().expect_err("validation should fail");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        err.field()
            .unwrap_or_else(|| panic!("error names no field: {err}"))
    }

    fn with(f: impl FnOnce(&mut NewSecret)) -> NewSecret {
        let mut new = new_secret(Vendor::Aliyun);
        f(&mut new);
        new
    }

    #[test]
    fn a_patch_reseals_under_the_new_binding_and_keeps_id_and_creation_time() {
        let cipher = Cipher::new([4; 32]);
        let secret = new_secret(Vendor::Aliyun)
            .with_session_token("CAIS-old-token")
            .seal(&cipher)
            .unwrap();
        let moved = secret
            .patched(
                SecretPatch::default().with_address("https://ecs.internal.example"),
                &cipher,
            )
            .unwrap();
        assert_eq!(
            (&moved.id, moved.created_at),
            (&secret.id, secret.created_at)
        );
        assert_eq!(
            moved.address.as_deref(),
            Some("https://ecs.internal.example")
        );
        assert_ne!(moved.binding(), secret.binding());
        let creds = cipher.decrypt_credentials(&moved).unwrap();
        assert_eq!(
            (creds.api_secret(), creds.session_token()),
            ("s3cr3t-value-xyz", Some("CAIS-old-token")),
            "the credentials and token are kept"
        );
        // The old ciphertext on the new row does not decrypt: it was sealed again.
        let mut spliced = moved.clone();
        spliced.api_secret.clone_from(&secret.api_secret);
        assert_eq!(
            cipher.decrypt_credentials(&spliced).unwrap_err().kind(),
            ErrorKind::Crypto
        );
        // A blank address removes the override.
        let back = moved
            .patched(SecretPatch::default().with_address("  "), &cipher)
            .unwrap();
        assert_eq!(back.address, None);
        cipher.decrypt_credentials(&back).unwrap();
    }

    #[test]
    fn a_patch_replaces_credentials_as_a_set() {
        let cipher = Cipher::new([5; 32]);
        let secret = new_secret(Vendor::Tencent)
            .with_session_token("tc-old-token")
            .seal(&cipher)
            .unwrap();
        let err = secret
            .patched(
                SecretPatch {
                    api_key: Some("AKIDnewKey0001".into()),
                    ..SecretPatch::default()
                },
                &cipher,
            )
            .unwrap_err();
        assert_eq!(err.field(), Some("api_secret"), "{err}");
        // The same key again needs no secret.
        secret
            .patched(
                SecretPatch {
                    api_key: Some(secret.api_key.clone()),
                    ..SecretPatch::default()
                },
                &cipher,
            )
            .unwrap();

        let rekeyed = secret
            .patched(
                SecretPatch::default().with_credentials("AKIDnewKey0001", "new-s3cr3t"),
                &cipher,
            )
            .unwrap();
        let creds = cipher.decrypt_credentials(&rekeyed).unwrap();
        assert_eq!(
            (creds.api_key(), creds.api_secret(), creds.session_token()),
            ("AKIDnewKey0001", "new-s3cr3t", None),
            "new credentials without a token drop the old token"
        );
        let with_token = rekeyed
            .patched(
                SecretPatch::default().with_session_token("tc-new-token"),
                &cipher,
            )
            .unwrap();
        let creds = cipher.decrypt_credentials(&with_token).unwrap();
        assert_eq!(
            (creds.api_secret(), creds.session_token()),
            ("new-s3cr3t", Some("tc-new-token")),
            "a token alone is added to the current credentials"
        );
        let cleared = with_token
            .patched(SecretPatch::default().with_session_token(" "), &cipher)
            .unwrap();
        assert_eq!(cleared.session_token, None, "a blank token removes it");
    }

    #[test]
    fn a_patch_is_validated_as_a_new_secret() {
        let cipher = Cipher::new([6; 32]);
        let secret = new_secret(Vendor::Aliyun).seal(&cipher).unwrap();
        let cases = [
            ("description", SecretPatch::default().with_description(" ")),
            (
                "allowed_regions",
                SecretPatch::default().with_allowed_regions(Vec::<String>::new()),
            ),
            ("request_rate", SecretPatch::default().with_request_rate(0)),
            (
                "address",
                SecretPatch::default().with_address("file:///etc/passwd"),
            ),
            (
                "tls_ca_pem",
                SecretPatch::default().with_tls_ca_pem("not a pem"),
            ),
            ("api_secret", SecretPatch::default().with_api_secret("")),
        ];
        for (field, patch) in cases {
            let err = secret.patched(patch, &cipher).unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
        }
        let vc = with(|n| {
            n.vendor = Vendor::Vsphere;
            n.address = Some("https://vc.example.com/sdk".into());
        })
        .seal(&cipher)
        .unwrap();
        let err = vc
            .patched(SecretPatch::default().with_address(""), &cipher)
            .unwrap_err();
        assert_eq!(
            err.field(),
            Some("address"),
            "vSphere needs its address: {err}"
        );
        let err = vc
            .patched(
                SecretPatch::default().with_address("http://vc.example.com/sdk"),
                &cipher,
            )
            .unwrap_err();
        assert_eq!(
            err.field(),
            Some("address"),
            "plain http needs the allowance: {err}"
        );
        vc.patched(
            SecretPatch::default()
                .with_address("http://vc.example.com/sdk")
                .with_allow_insecure_http(true),
            &cipher,
        )
        .unwrap();
        // A wrong key cannot patch (nor read) the secret.
        let err = secret
            .patched(SecretPatch::default(), &Cipher::new([7; 32]))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Crypto);
    }

    #[test]
    fn secret_patch_debug_is_pinned() {
        let patch = SecretPatch::default()
            .with_address("https://admin:hunter2@vc.example.com/sdk")
            .with_credentials("LTAI5tAbCdEfGh12", "s3cr3t-value-xyz")
            .with_session_token("CAIS-t0ken");
        let shown = format!("{patch:?}");
        assert_eq!(
            shown,
            "SecretPatch { description: None, allowed_regions: None, request_rate: None, \
             address: Some(\"https://vc.example.com/sdk\"), allow_insecure_http: None, \
             tls_ca_pem: None, tls_skip_verify: None, api_key: Some(\"LTAI****Gh12\"), \
             api_secret: Some(\"******\"), session_token: Some(\"******\"), sync_interval: None }"
        );
        let pretty = format!("{patch:#?}");
        for leak in ["hunter2", "s3cr3t", "t0ken", "LTAI5tAbCdEfGh12"] {
            assert!(!pretty.contains(leak), "{pretty}");
        }
        let json = r#"{"description": "d", "colour": "blue"}"#;
        let err = serde_json::from_str::<SecretPatch>(json).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn a_vsphere_address_over_plain_http_needs_an_explicit_allowance() {
        let mut v = new_secret(Vendor::Vsphere);
        v.address = Some("HTTP://vcenter.example.com".into());
        assert_eq!(field_of(&v), "address");
        v.allow_insecure_http = true;
        v.validate().unwrap();
        // Other vendors' endpoint overrides are not passwords sent in a body.
        let mut a = new_secret(Vendor::Aliyun);
        a.address = Some("http://127.0.0.1:8080".into());
        a.validate().unwrap();
        let mut bad_ca = new_secret(Vendor::Aliyun);
        bad_ca.tls_ca_pem = Some("not a certificate".into());
        assert_eq!(field_of(&bad_ca), "tls_ca_pem");
    }

    #[test]
    fn a_valid_secret_passes() {
        new_secret(Vendor::Aliyun).validate().unwrap();
        let mut v = new_secret(Vendor::Vsphere);
        v.address = Some("https://vcenter.example.com/sdk".into());
        v.validate().unwrap();
        let long_ok = with(|n| {
            n.description = "d".repeat(100);
            n.api_key = "k".repeat(100);
            n.api_secret = Zeroizing::new("s".repeat(100));
            n.allowed_regions = vec!["r".repeat(64), "*".into(), "a_b.c-1".into()];
            n.request_rate = Some(MAX_REQUEST_RATE);
        });
        long_ok.validate().unwrap();
    }

    #[test]
    fn each_validation_error_names_its_field() {
        let cases: Vec<(&str, NewSecret)> = vec![
            ("description", with(|n| n.description = "   ".into())),
            ("description", with(|n| n.description = String::new())),
            ("description", with(|n| n.description = "d".repeat(101))),
            ("api_key", with(|n| n.api_key = String::new())),
            ("api_key", with(|n| n.api_key = " ".into())),
            ("api_key", with(|n| n.api_key = "k".repeat(101))),
            (
                "api_secret",
                with(|n| n.api_secret = Zeroizing::new(String::new())),
            ),
            (
                "api_secret",
                with(|n| n.api_secret = Zeroizing::new("s".repeat(101))),
            ),
            ("allowed_regions", with(|n| n.allowed_regions = vec![])),
            (
                "allowed_regions",
                with(|n| n.allowed_regions = vec![String::new()]),
            ),
            (
                "allowed_regions",
                with(|n| n.allowed_regions = vec!["cn hangzhou".into()]),
            ),
            (
                "allowed_regions",
                with(|n| n.allowed_regions = vec!["cn/x".into()]),
            ),
            (
                "allowed_regions",
                with(|n| n.allowed_regions = vec!["r".repeat(65)]),
            ),
            (
                "allowed_regions",
                with(|n| n.allowed_regions = vec!["ok".into(), "cn-*".into()]),
            ),
            ("request_rate", with(|n| n.request_rate = Some(0))),
            ("request_rate", with(|n| n.request_rate = Some(1001))),
            ("address", with(|n| n.vendor = Vendor::Vsphere)),
            (
                "address",
                with(|n| {
                    n.vendor = Vendor::Vsphere;
                    n.address = Some("  ".into());
                }),
            ),
            (
                "address",
                with(|n| n.address = Some("file:///etc/passwd".into())),
            ),
            ("address", with(|n| n.address = Some("gopher://x".into()))),
            ("address", with(|n| n.address = Some("not-a-url".into()))),
            (
                "session_token",
                with(|n| n.session_token = Some(Zeroizing::new("t".repeat(16 * 1024 + 1)))),
            ),
            (
                "session_token",
                with(|n| n.session_token = Some(Zeroizing::new("CAIS\r\nX-Evil: 1".into()))),
            ),
            (
                "session_token",
                with(|n| n.session_token = Some(Zeroizing::new("CAIS\0".into()))),
            ),
            (
                "address",
                with(|n| n.address = Some("https://user:pw@h.example".into())),
            ),
        ];
        for (expected, new) in &cases {
            assert_eq!(field_of(new), *expected, "for {new:?}");
        }
    }

    #[test]
    fn a_session_token_is_optional_bounded_and_refused_for_vsphere() {
        let ok = with(|n| n.session_token = Some(Zeroizing::new("t".repeat(16 * 1024))));
        ok.validate().unwrap();
        with(|n| n.session_token = Some(Zeroizing::new("CAIS/+=_-.t0ken".into())))
            .validate()
            .unwrap();

        let mut v = new_secret(Vendor::Vsphere);
        v.address = Some("https://vcenter.example.com/sdk".into());
        v.session_token = Some(Zeroizing::new("vc-t0ken-value".into()));
        let err = v.validate().unwrap_err();
        assert_eq!(err.field(), Some("session_token"), "{err}");
        assert!(err.message().contains("vsphere"), "{err}");
        assert!(!err.to_string().contains("t0ken"), "{err}");
        // A blank token is absent, for vSphere too.
        v.session_token = Some(Zeroizing::new("  ".into()));
        v.validate().unwrap();
        let sealed = v.seal(&Cipher::new([2; 32])).unwrap();
        assert_eq!(sealed.session_token, None);

        // Errors never echo the token.
        for bad in ["t0ken\nline", &"t0ken".repeat(4000)] {
            let new = with(|n| n.session_token = Some(Zeroizing::new(bad.into())));
            let err = new.validate().unwrap_err();
            assert_eq!(err.field(), Some("session_token"));
            assert!(!format!("{err} {err:?}").contains("t0ken"), "{err}");
        }

        let json = r#"{"vendor":"tencent","description":"d","api_key":"AKID","api_secret":"SK",
            "allowed_regions":["*"],"session_token":"tc-t0ken"}"#;
        let new: NewSecret = serde_json::from_str(json).unwrap();
        assert_eq!(
            new.session_token.as_deref().map(String::as_str),
            Some("tc-t0ken")
        );
        let json = r#"{"vendor":"tencent","description":"d","api_key":"AKID","api_secret":"SK",
            "allowed_regions":["*"],"session_token":null}"#;
        let new: NewSecret = serde_json::from_str(json).unwrap();
        assert!(new.session_token.is_none());
    }

    #[test]
    fn a_session_token_is_never_shown() {
        let cipher = Cipher::new([0; 32]);
        let new = new_secret(Vendor::Aliyun).with_session_token("CAIS-t0ken-value");
        let shown = format!("{new:?} {new:#?}");
        assert!(shown.contains("session_token: Some(\"******\")"), "{shown}");
        assert!(!shown.contains("t0ken"), "{shown}");

        let mut s = new.seal(&cipher).unwrap();
        let sealed = s.session_token.clone().unwrap();
        let shown = format!("{s:?} {s:#?}");
        assert!(
            shown.contains("session_token: <encrypted, key 66687aad>"),
            "{shown}"
        );
        assert!(!shown.contains("t0ken"), "{shown}");
        assert!(
            !shown.contains(sealed.rsplit(':').next().unwrap()),
            "{shown}"
        );

        let m = s.masked();
        assert!(m.session_token_set);
        let json = serde_json::to_string(&m).unwrap();
        let shown = format!("{json} {m:?}");
        assert!(json.contains(r#""session_token_set":true"#), "{json}");
        assert!(
            !shown.contains("t0ken") && !shown.contains(&sealed),
            "{shown}"
        );
        assert!(!shown.contains(sealed.rsplit(':').next().unwrap()));
        assert!(
            !new_secret(Vendor::Aliyun)
                .seal(&cipher)
                .unwrap()
                .masked()
                .session_token_set
        );

        let c = s.ciphertexts();
        let shown = format!("{c:?}");
        assert_eq!(
            shown,
            "Ciphertexts { api_secret: <encrypted, key 66687aad>, \
             session_token: Some(<encrypted, key 66687aad>) }"
        );
        s.session_token = Some("plain-t0ken".into());
        let shown = format!("{s:?}");
        assert!(shown.contains("session_token: <unrecognized>"), "{shown}");
        assert!(!shown.contains("t0ken"), "{shown}");
    }

    #[test]
    fn seal_with_id_keeps_the_id_and_checks_it() {
        let cipher = Cipher::new([3; 32]);
        let s = new_secret(Vendor::Tencent)
            .seal_with_id("cli-tencent-abc123", &cipher)
            .unwrap();
        assert_eq!(s.id, "cli-tencent-abc123");
        assert_eq!(cipher.decrypt_credentials(&s).unwrap().api_key(), s.api_key);
        for bad in ["", "a/b", "x' OR 1=1", &"x".repeat(101)] {
            let e = new_secret(Vendor::Tencent)
                .seal_with_id(bad, &cipher)
                .unwrap_err();
            assert_eq!(e.field(), Some("id"), "{bad:?}");
        }
    }

    #[test]
    fn validation_errors_never_echo_the_secret_or_the_address() {
        let new = with(|n| n.address = Some("gopher://token-abc@x".into()));
        let err = new.validate().unwrap_err();
        assert!(!err.to_string().contains("token-abc"), "{err}");
        let new = with(|n| n.api_secret = Zeroizing::new("Z".repeat(101)));
        assert!(!new.validate().unwrap_err().to_string().contains("ZZZ"));
        // A query or fragment is refused when stored, as a sync would refuse it.
        for address in [
            "https://vc.example.com/sdk?token=t0k3n",
            "https://vc.example.com/#t0k3n",
        ] {
            let err = with(|n| n.address = Some(address.into()))
                .validate()
                .unwrap_err();
            assert_eq!(err.field(), Some("address"), "{err}");
            assert!(!err.to_string().contains("t0k3n"), "{err}");
        }
    }

    #[test]
    fn seal_applies_defaults_and_encrypts() {
        let cipher = Cipher::new([7; 32]);
        let mut new = new_secret(Vendor::Tencent);
        new.address = Some(" http://cvm.internal:8080 ".into());
        let secret = new.seal(&cipher).unwrap();
        assert_eq!(secret.request_rate, DEFAULT_REQUEST_RATE);
        assert_eq!(secret.request_rate, 5);
        assert_eq!(secret.address.as_deref(), Some("http://cvm.internal:8080"));
        assert_eq!(
            uuid::Uuid::parse_str(&secret.id).unwrap().get_version_num(),
            4
        );
        assert!(!secret.api_secret.contains("s3cr3t"));
        assert_eq!(
            Cipher::key_id_of(&secret.api_secret),
            Some(cipher.active_key_id())
        );
        let creds = cipher.decrypt_credentials(&secret).unwrap();
        assert_eq!(creds.api_secret(), "s3cr3t-value-xyz");
        assert_eq!(creds.api_key(), "LTAI5tAbCdEfGh12");
        assert_eq!(
            secret.created_at.timestamp_subsec_nanos() % 1000,
            0,
            "microseconds"
        );

        let blank = with(|n| n.address = Some(String::new()))
            .seal(&cipher)
            .unwrap();
        assert_eq!(blank.address, None, "a blank address is absent");
        let explicit = with(|n| n.request_rate = Some(42)).seal(&cipher).unwrap();
        assert_eq!(explicit.request_rate, 42);
    }

    #[test]
    fn seal_refuses_invalid_input() {
        let err = with(|n| n.request_rate = Some(0))
            .seal(&Cipher::new([7; 32]))
            .unwrap_err();
        assert_eq!(err.field(), Some("request_rate"));
    }

    #[test]
    fn deserialize_applies_defaults_and_denies_unknown_fields() {
        let json = r#"{"vendor":"huawei","description":"d","api_key":"AK","api_secret":"SK",
            "allowed_regions":["cn-north-4"]}"#;
        let new: NewSecret = serde_json::from_str(json).unwrap();
        assert_eq!(new.request_rate, None);
        assert_eq!(new.address, None);
        assert_eq!(new.vendor, Vendor::Huawei);
        assert_eq!(new.api_secret.as_str(), "SK");

        let typo = r#"{"vendor":"huawei","description":"d","api_key":"AK","api_secret":"SK",
            "allowed_regions":["cn-north-4"],"requestRate":3}"#;
        let err = serde_json::from_str::<NewSecret>(typo).unwrap_err();
        assert!(err.to_string().contains("requestRate"), "{err}");

        let missing = r#"{"vendor":"huawei","description":"d","api_key":"AK",
            "allowed_regions":["cn-north-4"]}"#;
        let err = serde_json::from_str::<NewSecret>(missing).unwrap_err();
        assert!(err.to_string().contains("api_secret"), "{err}");
    }

    #[test]
    fn mask_api_key_cases() {
        assert_eq!(mask_api_key("LTAI5tAbCdEfGh12"), "LTAI****Gh12");
        assert_eq!(mask_api_key("123456789"), "1234****6789");
        assert_eq!(mask_api_key("12345678"), "****");
        assert_eq!(mask_api_key("abc"), "****");
        assert_eq!(mask_api_key(""), "****");
        // Characters, not bytes: never split a UTF-8 sequence.
        assert_eq!(mask_api_key("ééééééééé"), "éééé****éééé");
    }

    #[test]
    fn regions_allow_exact_names_or_star() {
        let cipher = Cipher::new([1; 32]);
        let s = with(|n| n.allowed_regions = vec!["cn-hangzhou".into(), "cn-beijing".into()])
            .seal(&cipher)
            .unwrap();
        assert!(s.is_allow_region("cn-beijing"));
        assert!(!s.is_allow_region("cn-shanghai"));
        assert!(!s.is_allow_region("cn-hangzhou-x"));
        assert!(
            !s.is_allow_region("*"),
            "a star in the request is not a wildcard"
        );
        let any = with(|n| n.allowed_regions = vec!["*".into()])
            .seal(&cipher)
            .unwrap();
        assert!(any.is_allow_region("ap-guangzhou"));
    }

    #[test]
    fn masked_hides_key_and_secret() {
        let s = new_secret(Vendor::Aliyun)
            .seal(&Cipher::new([1; 32]))
            .unwrap();
        let m = s.masked();
        assert_eq!(m.api_key, "LTAI****Gh12");
        assert_eq!(m.api_secret, "******");
        assert_eq!((m.id.as_str(), m.created_at), (s.id.as_str(), s.created_at));
        let json = serde_json::to_string(&m).unwrap();
        assert!(!json.contains(&s.api_secret) && !json.contains("LTAI5tAbCdEfGh12"));
    }

    #[test]
    fn a_patched_schedule_is_due_at_once_or_no_later_than_one_new_interval() {
        let cipher = Cipher::new(Cipher::generate_key());
        let every = |s: &str| s.parse::<SyncInterval>().unwrap();
        let off = new_secret(Vendor::Aliyun).seal(&cipher).unwrap();
        assert_eq!((off.sync_interval, off.next_sync_at), (None, None));

        let before = Utc::now().trunc_subsecs(6);
        let on = off
            .patched(
                SecretPatch::default().with_sync_interval(Some(every("1h"))),
                &cipher,
            )
            .unwrap();
        let due = on.next_sync_at.expect("due");
        assert!(due >= before && due <= Utc::now(), "due at once: {due}");

        // Due in an hour; made daily: still due in an hour. Made every minute: due
        // within a minute.
        let mut hourly = on.clone();
        hourly.next_sync_at = Some(before + chrono::Duration::hours(1));
        hourly.sync_failures = 3;
        let daily = hourly
            .patched(
                SecretPatch::default().with_sync_interval(Some(every("1d"))),
                &cipher,
            )
            .unwrap();
        assert_eq!(daily.next_sync_at, hourly.next_sync_at);
        let minutely = hourly
            .patched(
                SecretPatch::default().with_sync_interval(Some(every("1m"))),
                &cipher,
            )
            .unwrap();
        let due = minutely.next_sync_at.unwrap();
        assert!(
            due <= Utc::now() + chrono::Duration::minutes(1) && due > before,
            "{due}"
        );
        assert_eq!(minutely.sync_failures, 0, "a changed schedule starts again");

        // Another change keeps the schedule as it is.
        let renamed = hourly
            .patched(SecretPatch::default().with_description("renamed"), &cipher)
            .unwrap();
        assert_eq!(
            (renamed.next_sync_at, renamed.sync_failures),
            (hourly.next_sync_at, 3)
        );
        let removed = hourly
            .patched(SecretPatch::default().with_sync_interval(None), &cipher)
            .unwrap();
        assert_eq!((removed.sync_interval, removed.next_sync_at), (None, None));

        // JSON: absent keeps, null removes, a short one is refused by name.
        let keep: SecretPatch = serde_json::from_str("{}").unwrap();
        assert_eq!(keep.sync_interval, None);
        let null: SecretPatch = serde_json::from_str(r#"{"sync_interval": null}"#).unwrap();
        assert_eq!(null.sync_interval, Some(None));
        let set: SecretPatch = serde_json::from_str(r#"{"sync_interval": "15m"}"#).unwrap();
        assert_eq!(set.sync_interval, Some(Some(every("15m"))));
        let short = serde_json::from_str::<SecretPatch>(r#"{"sync_interval": "5s"}"#);
        assert!(short.unwrap_err().to_string().contains("sync_interval"));
    }

    #[test]
    fn new_secret_debug_is_pinned() {
        let mut new = new_secret(Vendor::Aliyun);
        new.address = Some("https://ecs.example.com".into());
        assert_eq!(
            format!("{new:?}"),
            "NewSecret { vendor: Aliyun, description: \"prod account\", \
             api_key: \"LTAI****Gh12\", api_secret: \"******\", session_token: None, \
             allowed_regions: [\"cn-hangzhou\"], request_rate: None, \
             address: Some(\"https://ecs.example.com\"), allow_insecure_http: false, \
             tls_ca_pem: None, tls_skip_verify: false, sync_interval: None }"
        );
        let pretty = format!("{new:#?}");
        assert!(!pretty.contains("s3cr3t") && !pretty.contains("LTAI5tAbCdEfGh12"));
    }

    #[test]
    fn debug_hides_credentials_in_the_address() {
        let cipher = Cipher::new([0; 32]);
        for (address, shown_as) in [
            (
                "https://admin:hunter2@vc.example.com:8443/sdk?token=hunter2#hunter2",
                "Some(\"https://vc.example.com:8443/sdk\")",
            ),
            (
                "admin:hunter2@vc.example.com",
                "Some(\"<hidden: not a URL with a host>\")",
            ),
            (
                "not a url hunter2",
                "Some(\"<hidden: not a URL with a host>\")",
            ),
        ] {
            let mut new = new_secret(Vendor::Vsphere);
            new.address = Some(address.into());
            let shown = format!("{new:?} {new:#?}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains(&format!("address: {shown_as}")), "{shown}");
        }
        // A row written behind the store's back may carry a query: Debug hides it too.
        let mut s = new_secret(Vendor::Aliyun).seal(&cipher).unwrap();
        s.address = Some("https://vc.example.com/sdk?token=hunter2".into());
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("\"https://vc.example.com/sdk\""), "{shown}");
    }

    #[test]
    fn secret_debug_is_pinned() {
        let cipher = Cipher::new([0; 32]);
        let mut s = new_secret(Vendor::Aliyun).seal(&cipher).unwrap();
        s.id = "0b5a7f9e-0000-4000-8000-000000000001".into();
        s.created_at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2030, 1, 2, 3, 4, 5).unwrap();
        let shown = format!("{s:?}");
        assert_eq!(
            shown,
            "Secret { id: \"0b5a7f9e-0000-4000-8000-000000000001\", vendor: Aliyun, \
             description: \"prod account\", api_key: \"LTAI****Gh12\", \
             api_secret: <encrypted, key 66687aad>, allowed_regions: [\"cn-hangzhou\"], \
             request_rate: 5, address: None, sync_interval: None, next_sync_at: None, created_at: 2030-01-02T03:04:05Z }"
        );
        let b64 = s.api_secret.rsplit(':').next().unwrap();
        assert!(!shown.contains(b64), "ciphertext elided");

        s.api_secret = "plain-text-leak".into();
        let shown = format!("{s:?}");
        assert!(shown.contains("api_secret: <unrecognized>"), "{shown}");
        assert!(!shown.contains("plain-text-leak"));
    }
}
