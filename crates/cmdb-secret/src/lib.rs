//! Cloud credentials for cmdb, stored encrypted.
//!
//! A [`NewSecret`] (the body of `POST /secrets`) is validated and sealed into a
//! [`Secret`], whose API secret is AES-256-GCM ciphertext bound to the secret's id,
//! vendor, API key, address and TLS settings ([`Secret::binding`], [`Cipher`]): a row
//! whose destination was changed in the database fails to decrypt with
//! [`ErrorKind::Crypto`](cmdb_core::ErrorKind::Crypto) rather than send the password
//! elsewhere. A [`SecretStore`] keeps secrets and lists them masked ([`MaskedSecret`]);
//! keyword searches see the masked API key only. Temporary (STS) credentials also keep
//! their session token ([`NewSecret::with_session_token`]), encrypted under the same
//! binding but not interchangeable with the API secret, and only said to be set in
//! listings. A sync decrypts a secret into [`Credentials`], which are zeroized on drop. Keys carry ids, so old keys can stay
//! loaded for decryption while [`rotate_secrets`] re-encrypts everything under a new one.
//! No type here prints a secret, or an address's user, password or query, in its `Debug`
//! output.
//!
//! Upgrading from a version whose ciphertexts start `v1:` (bound to the id only): those
//! still decrypt, with a warning, and [`rotate_secrets`] re-encrypts them as `v2:` bound
//! to everything above. Run it once after upgrading, with the current key as the active
//! one; the SQL stores' schema migrations cannot, since they hold no key. A secret is
//! changed with a [`SecretPatch`]: [`Secret::patched`] decrypts it under its current
//! binding and seals it again under the new one, and [`SecretStore::update`] swaps the row
//! only if nobody changed it meanwhile.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use cmdb_secret::{Cipher, MemorySecretStore, NewSecret, SecretQuery, SecretStore};
//!
//! // In a service: `Cipher::from_env()?` reads CMDB_ENCRYPT_KEY.
//! let cipher = Cipher::new(Cipher::generate_key());
//! let store = MemorySecretStore::new();
//!
//! let new: NewSecret = serde_json::from_value(serde_json::json!({
//!     "vendor": "aliyun",
//!     "description": "production account",
//!     "api_key": "LTAI5tAbCdEfGh12",
//!     "api_secret": "not-really-a-secret",
//!     "allowed_regions": ["cn-hangzhou"],
//! }))?;
//! let secret = new.seal(&cipher)?;
//! store.create(&secret).await?;
//!
//! let listed = store.list(&SecretQuery::default()).await?;
//! assert_eq!(listed.items[0].api_key, "LTAI****Gh12");
//! assert_eq!(listed.items[0].api_secret, "******");
//!
//! let stored = store.get(&secret.id).await?;
//! assert!(stored.is_allow_region("cn-hangzhou"));
//! let credentials = cipher.decrypt_credentials(&stored)?;
//! assert_eq!(credentials.api_secret(), "not-really-a-secret");
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod cipher;
mod credentials;
mod rotate;
mod schedule;
mod secret;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use cipher::Cipher;
pub use credentials::Credentials;
pub use rotate::{rotate_secrets, RotationReport};
pub use schedule::{DueSync, SyncInterval};
pub use secret::{
    mask_api_key, redact_address, Ciphertexts, MaskedSecret, NewSecret, Secret, SecretPatch,
    DEFAULT_REQUEST_RATE, MAX_REQUEST_RATE,
};
pub use store::{MemorySecretStore, SecretList, SecretQuery, SecretStore};
