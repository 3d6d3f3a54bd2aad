//! Re-encryption of stored secrets under a new key.

use std::collections::HashSet;

use cmdb_core::{Error, ErrorKind, Result, MAX_PAGE_SIZE};
use serde::Serialize;

use crate::cipher::Cipher;
use crate::secret::Ciphertexts;
use crate::store::{SecretQuery, SecretStore};

/// What [`rotate_secrets`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct RotationReport {
    /// Secrets re-encrypted under the active key.
    pub rotated: u64,
    /// Secrets that were under the active key already.
    pub already_current: u64,
}

/// Re-encrypts every secret of `store` that is not under `cipher`'s active key, or that is
/// still in the legacy `v1` format (bound to its id only): it comes out as `v2`, bound to
/// its id, vendor, key, address and TLS settings ([`Secret::binding`](crate::Secret::binding)).
/// A secret's session token, when it has one, is re-encrypted with its API secret.
/// Run it once after upgrading, with the current key as the active one: the SQL stores'
/// migrations cannot do it, since they hold no key.
///
/// Load the new key as the active one and the old keys as decryption keys
/// ([`Cipher::with_decryption_key`]); once this returns, the old keys can be dropped.
/// Each secret's ciphertexts are swapped together with
/// [`SecretStore::replace_ciphertexts`], so a secret changed meanwhile is looked at again
/// rather than overwritten; secrets deleted meanwhile are skipped. A secret that no
/// loaded key decrypts stops the rotation with an [`ErrorKind::Crypto`] error naming it;
/// the secrets rotated before it stay rotated, and running the rotation again is safe.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use cmdb_secret::{rotate_secrets, Cipher, MemorySecretStore};
///
/// let store = MemorySecretStore::new();
/// let (old, new) = (Cipher::generate_key(), Cipher::generate_key());
/// let cipher = Cipher::new(new).with_decryption_key(old);
/// let report = rotate_secrets(&store, &cipher).await.unwrap();
/// assert_eq!(report.rotated, 0);
/// # });
/// ```
pub async fn rotate_secrets(store: &dyn SecretStore, cipher: &Cipher) -> Result<RotationReport> {
    rotate_paged(store, cipher, MAX_PAGE_SIZE).await
}

/// [`rotate_secrets`] with a given page size, so tests can cross pages cheaply.
pub(crate) async fn rotate_paged(
    store: &dyn SecretStore,
    cipher: &Cipher,
    page_size: u32,
) -> Result<RotationReport> {
    // Collect the ids first: secrets created or deleted while we rotate would shift the
    // pages under a walk that rotates as it goes.
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    let mut page_number = 1;
    loop {
        let query = SecretQuery {
            page_size,
            page_number,
            keywords: None,
        };
        let page = store.list(&query).await?;
        let count = page.items.len();
        for item in page.items {
            if seen.insert(item.id.clone()) {
                ids.push(item.id);
            }
        }
        let listed = u64::from(page_number) * u64::from(page_size);
        if count < page_size as usize || listed >= page.total {
            break;
        }
        page_number += 1;
    }

    let mut report = RotationReport::default();
    for id in ids {
        match rotate_secret(store, cipher, &id).await? {
            Rotation::Rotated => report.rotated += 1,
            Rotation::AlreadyCurrent => report.already_current += 1,
            Rotation::Gone => {}
        }
    }
    Ok(report)
}

/// What happened to one secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rotation {
    Rotated,
    AlreadyCurrent,
    /// Deleted before it could be rotated.
    Gone,
}

/// Rotates one secret, looking again when another writer changed it meanwhile.
pub(crate) async fn rotate_secret(
    store: &dyn SecretStore,
    cipher: &Cipher,
    id: &str,
) -> Result<Rotation> {
    const ATTEMPTS: usize = 3;
    for _ in 0..ATTEMPTS {
        let secret = match store.get(id).await {
            Ok(secret) => secret,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Rotation::Gone),
            Err(e) => return Err(e),
        };
        let current = |text: &str| Cipher::key_id_of(text) == Some(cipher.active_key_id());
        if current(&secret.api_secret)
            && !Cipher::is_legacy_binding(&secret)
            && secret.session_token.as_deref().is_none_or(current)
        {
            return Ok(Rotation::AlreadyCurrent);
        }
        let credentials = cipher
            .decrypt_credentials(&secret)
            .map_err(|e| e.context(format!("rotating secret {id}")))?;
        let api_secret = cipher.encrypt_api_secret(&secret, credentials.api_secret().as_bytes())?;
        let session_token = credentials
            .session_token()
            .map(|token| cipher.encrypt_session_token(&secret, token.as_bytes()))
            .transpose()?;
        let fresh = Ciphertexts::new(api_secret, session_token);
        match store
            .replace_ciphertexts(id, &secret.ciphertexts(), &fresh)
            .await
        {
            Ok(()) => return Ok(Rotation::Rotated),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Rotation::Gone),
            // Changed meanwhile (another rotation, most likely): look at it again.
            Err(e) if e.kind() == ErrorKind::Conflict => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::new(
        ErrorKind::Conflict,
        format!("secret {id} kept changing while it was being rotated"),
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use cmdb_core::Vendor;
    use zeroize::Zeroizing;

    use super::*;
    use crate::secret::{NewSecret, Secret};
    use crate::store::{MemorySecretStore, SecretList};

    const OLD: [u8; 32] = [0x11; 32];
    const NEW: [u8; 32] = [0x22; 32];

    fn new_secret(i: usize) -> NewSecret {
        let vendor = Vendor::ALL[i % Vendor::ALL.len()];
        NewSecret {
            vendor,
            description: format!("rotation {i}"),
            api_key: format!("AKROTATION{i:06}"),
            api_secret: Zeroizing::new(format!("secret-{i}")),
            // vSphere has no temporary credentials.
            session_token: (vendor != Vendor::Vsphere)
                .then(|| Zeroizing::new(format!("token-{i}"))),
            allowed_regions: vec!["*".into()],
            request_rate: None,
            address: Some("https://endpoint.example".into()),
            allow_insecure_http: false,
            tls_ca_pem: None,
            tls_skip_verify: false,
            sync_interval: None,
        }
    }

    async fn store_with(n: usize, cipher: &Cipher) -> MemorySecretStore {
        let store = MemorySecretStore::new();
        for i in 0..n {
            store
                .create(&new_secret(i).seal(cipher).unwrap())
                .await
                .unwrap();
        }
        store
    }

    async fn all(store: &dyn SecretStore) -> Vec<Secret> {
        let list = store
            .list(&SecretQuery {
                page_size: 1000,
                ..SecretQuery::default()
            })
            .await
            .unwrap();
        let mut out = Vec::new();
        for item in list.items {
            out.push(store.get(&item.id).await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn rotation_re_encrypts_across_pages_then_is_a_no_op() {
        let store = store_with(5, &Cipher::new(OLD)).await;
        let before = all(&store).await;
        let cipher = Cipher::new(NEW).with_decryption_key(OLD);

        let report = rotate_paged(&store, &cipher, 2).await.unwrap();
        assert_eq!(
            report,
            RotationReport {
                rotated: 5,
                already_current: 0
            }
        );

        let new_only = Cipher::new(NEW);
        for (i, secret) in all(&store).await.iter().enumerate() {
            assert_eq!(
                Cipher::key_id_of(&secret.api_secret),
                Some(new_only.active_key_id())
            );
            let creds = new_only.decrypt_credentials(secret).unwrap();
            let original = before.iter().find(|s| s.id == secret.id).unwrap();
            assert_ne!(original.api_secret, secret.api_secret);
            assert_eq!(creds.api_key(), original.api_key);
            assert!(creds.api_secret().starts_with("secret-"), "secret {i}");
            let before = Cipher::new(OLD).decrypt_credentials(original).unwrap();
            assert_eq!(creds.api_secret(), before.api_secret());
            // The session token too, where there is one.
            assert_eq!(creds.session_token(), before.session_token());
            assert_eq!(
                secret.session_token.as_deref().map(Cipher::key_id_of),
                original
                    .session_token
                    .as_ref()
                    .map(|_| Some(new_only.active_key_id())),
                "secret {i}"
            );
        }
        assert!(
            before.iter().any(|s| s.session_token.is_some())
                && before.iter().any(|s| s.session_token.is_none()),
            "rotated with and without a session token"
        );

        let again = rotate_paged(&store, &cipher, 2).await.unwrap();
        assert_eq!(
            again,
            RotationReport {
                rotated: 0,
                already_current: 5
            }
        );
        let again = rotate_secrets(&store, &new_only).await.unwrap();
        assert_eq!(
            again,
            RotationReport {
                rotated: 0,
                already_current: 5
            }
        );
    }

    #[tokio::test]
    async fn mixed_keys_rotate_only_the_old_ones() {
        let store = store_with(3, &Cipher::new(OLD)).await;
        for i in 3..5 {
            store
                .create(&new_secret(i).seal(&Cipher::new(NEW)).unwrap())
                .await
                .unwrap();
        }
        let cipher = Cipher::new(NEW).with_decryption_key(OLD);
        let report = rotate_secrets(&store, &cipher).await.unwrap();
        assert_eq!(
            report,
            RotationReport {
                rotated: 3,
                already_current: 2
            }
        );
    }

    #[tokio::test]
    async fn a_secret_no_key_decrypts_stops_the_rotation() {
        let store = store_with(2, &Cipher::new(OLD)).await;
        let err = rotate_secrets(&store, &Cipher::new(NEW)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Crypto, "{err}");
        assert!(err.message().contains("rotating secret"), "{err}");
        // Nothing was overwritten.
        for s in all(&store).await {
            Cipher::new(OLD).decrypt_credentials(&s).unwrap();
        }
    }

    /// A store where another rotation gets in first on the first swap.
    #[derive(Debug)]
    struct Racing {
        inner: MemorySecretStore,
        raced: AtomicBool,
        rival: Cipher,
    }

    #[async_trait]
    impl SecretStore for Racing {
        async fn create(&self, secret: &Secret) -> Result<()> {
            self.inner.create(secret).await
        }
        async fn get(&self, id: &str) -> Result<Secret> {
            self.inner.get(id).await
        }
        async fn list(&self, query: &SecretQuery) -> Result<SecretList> {
            self.inner.list(query).await
        }
        async fn delete(&self, id: &str) -> Result<()> {
            self.inner.delete(id).await
        }
        async fn replace_ciphertexts(
            &self,
            id: &str,
            expected: &Ciphertexts,
            new: &Ciphertexts,
        ) -> Result<()> {
            if !self.raced.swap(true, Ordering::SeqCst) {
                let current = self.inner.get(id).await?;
                let plain = self.rival.decrypt_credentials(&current)?;
                let token = plain.session_token().map(|t| {
                    self.rival
                        .encrypt_session_token(&current, t.as_bytes())
                        .unwrap()
                });
                let rival = Ciphertexts::new(
                    self.rival
                        .encrypt_api_secret(&current, plain.api_secret().as_bytes())?,
                    token,
                );
                self.inner.replace_ciphertexts(id, expected, &rival).await?;
            }
            self.inner.replace_ciphertexts(id, expected, new).await
        }
        async fn update(&self, secret: &Secret, expected: &Ciphertexts) -> Result<()> {
            self.inner.update(secret, expected).await
        }
        async fn due_syncs(
            &self,
            now: chrono::DateTime<chrono::Utc>,
            limit: u32,
        ) -> Result<Vec<crate::DueSync>> {
            self.inner.due_syncs(now, limit).await
        }
        async fn claim_sync(
            &self,
            id: &str,
            due_at: chrono::DateTime<chrono::Utc>,
            next_at: chrono::DateTime<chrono::Utc>,
        ) -> Result<bool> {
            self.inner.claim_sync(id, due_at, next_at).await
        }
        async fn record_sync_outcome(
            &self,
            id: &str,
            failures: u32,
            not_before: Option<chrono::DateTime<chrono::Utc>>,
        ) -> Result<()> {
            self.inner
                .record_sync_outcome(id, failures, not_before)
                .await
        }
    }

    #[tokio::test]
    async fn legacy_secrets_bound_to_their_id_are_rebound_under_the_same_key() {
        let cipher = Cipher::new(NEW);
        let store = store_with(3, &cipher).await;
        // As an earlier version stored them: `v1:`, the id alone as associated data.
        for s in all(&store).await {
            let legacy = cipher.encrypt(&s.id, b"old-format").unwrap();
            let legacy = Ciphertexts::new(legacy, s.session_token.clone());
            store
                .replace_ciphertexts(&s.id, &s.ciphertexts(), &legacy)
                .await
                .unwrap();
        }
        let report = rotate_secrets(&store, &cipher).await.unwrap();
        assert_eq!(report.rotated, 3);
        for s in all(&store).await {
            assert!(s.api_secret.starts_with("v2:"), "{s:?}");
            assert_eq!(
                cipher.decrypt_credentials(&s).unwrap().api_secret(),
                "old-format"
            );
        }
        let again = rotate_secrets(&store, &cipher).await.unwrap();
        assert_eq!((again.rotated, again.already_current), (0, 3));
    }

    #[tokio::test]
    async fn a_concurrent_change_is_looked_at_again_not_overwritten() {
        let cipher = Cipher::new(NEW).with_decryption_key(OLD);
        let store = Racing {
            inner: store_with(1, &Cipher::new(OLD)).await,
            raced: AtomicBool::new(false),
            rival: cipher.clone(),
        };
        let report = rotate_secrets(&store, &cipher).await.unwrap();
        assert_eq!(
            report,
            RotationReport {
                rotated: 0,
                already_current: 1
            }
        );
        let s = &all(&store).await[0];
        assert_eq!(
            Cipher::new(NEW)
                .decrypt_credentials(s)
                .unwrap()
                .api_secret(),
            "secret-0"
        );
    }

    #[tokio::test]
    async fn deleted_secrets_are_skipped() {
        let store = store_with(2, &Cipher::new(OLD)).await;
        let id = all(&store).await[0].id.clone();
        store.delete(&id).await.unwrap();
        let cipher = Cipher::new(NEW).with_decryption_key(OLD);
        assert_eq!(
            rotate_secret(&store, &cipher, &id).await.unwrap(),
            Rotation::Gone
        );
        let report = rotate_secrets(&store, &cipher).await.unwrap();
        assert_eq!(
            report,
            RotationReport {
                rotated: 1,
                already_current: 0
            }
        );
    }
}
