//! Decrypted credentials, held only as long as a request needs them.

use std::fmt;

use zeroize::Zeroizing;

use crate::secret::{mask_api_key, MASKED_API_SECRET};

/// A decrypted API key pair, as [`Cipher::decrypt_credentials`](crate::Cipher::decrypt_credentials)
/// returns it.
///
/// Both halves are zeroized when dropped, and `Debug` shows only the masked key:
///
/// ```
/// use cmdb_secret::Credentials;
///
/// let c = Credentials::new("LTAI5tAbCdEfabcd", "very-secret");
/// assert_eq!(
///     format!("{c:?}"),
///     r#"Credentials { api_key: "LTAI****abcd", api_secret: "******" }"#
/// );
/// assert_eq!(c.api_secret(), "very-secret");
/// ```
#[derive(Clone)]
pub struct Credentials {
    api_key: Zeroizing<String>,
    api_secret: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
}

impl Credentials {
    /// Credentials from an API key (access key id, secret id, AK or user name) and its
    /// secret (access key secret, secret key, SK or password).
    pub fn new(api_key: impl Into<String>, api_secret: impl Into<String>) -> Credentials {
        Credentials {
            api_key: Zeroizing::new(api_key.into()),
            api_secret: Zeroizing::new(api_secret.into()),
            session_token: None,
        }
    }

    /// These credentials with the session token of temporary credentials (Alibaba Cloud
    /// STS `SecurityToken`, Tencent Cloud STS `Token`, Huawei Cloud `securitytoken`),
    /// which every request then carries as the vendor's SDKs send it. A blank token is
    /// no token.
    pub fn with_session_token(mut self, token: impl Into<String>) -> Credentials {
        let token = token.into();
        self.session_token = (!token.trim().is_empty()).then(|| Zeroizing::new(token));
        self
    }

    /// The session token of temporary credentials, in clear, when there is one.
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref().map(String::as_str)
    }

    /// The API key.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The API secret, in clear: pass it to a signer, never to a log.
    pub fn api_secret(&self) -> &str {
        &self.api_secret
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Credentials");
        d.field("api_key", &mask_api_key(&self.api_key))
            .field("api_secret", &MASKED_API_SECRET);
        if self.session_token.is_some() {
            d.field("session_token", &MASKED_API_SECRET);
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_pinned_and_redacted() {
        let c = Credentials::new("LTAI5tAbCdEfGh12", "s3cr3t-value-xyz");
        let shown = format!("{c:?}");
        assert_eq!(
            shown,
            r#"Credentials { api_key: "LTAI****Gh12", api_secret: "******" }"#
        );
        assert!(!shown.contains("s3cr3t"));
        assert!(!shown.contains("LTAI5tAbCdEfGh12"));
        let pretty = format!("{c:#?}");
        assert!(!pretty.contains("s3cr3t") && !pretty.contains("5tAbCdEf"));
    }

    #[test]
    fn a_session_token_is_kept_and_masked() {
        let c = Credentials::new("STS.NUgYrLnoC", "s3cr3t").with_session_token("CAIS-t0ken-value");
        assert_eq!(c.session_token(), Some("CAIS-t0ken-value"));
        let shown = format!("{c:?}");
        assert!(shown.contains(r#"session_token: "******""#), "{shown}");
        assert!(!shown.contains("t0ken"), "{shown}");
        assert_eq!(Credentials::new("k", "s").session_token(), None);
        assert_eq!(
            Credentials::new("k", "s")
                .with_session_token("  ")
                .session_token(),
            None
        );
    }

    #[test]
    fn accessors_and_clone_keep_the_values() {
        let c = Credentials::new("ak", String::from("sk"));
        let d = c.clone();
        drop(c);
        assert_eq!((d.api_key(), d.api_secret()), ("ak", "sk"));
    }
}
