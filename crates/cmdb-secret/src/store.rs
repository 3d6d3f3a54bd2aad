//! Where secrets are kept: the [`SecretStore`] trait and [`MemorySecretStore`].

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cmdb_core::{Error, ErrorKind, Result, MAX_PAGE_SIZE};
use serde::{Deserialize, Serialize};

use crate::schedule::DueSync;
use crate::secret::{mask_api_key, Ciphertexts, MaskedSecret, Secret};

/// A paged query of stored secrets, as `GET /secrets` takes it. Start from
/// [`SecretQuery::default()`] and change it with the `with_*` methods.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[non_exhaustive]
pub struct SecretQuery {
    /// Secrets per page, 1 to 1000; default 20.
    pub page_size: u32,
    /// Page number, from 1; default 1.
    pub page_number: u32,
    /// Only secrets whose description, masked API key (as [`mask_api_key`] shows it),
    /// vendor name or id contains this text, ignoring ASCII case. The text is matched literally (`%` and `_` are not
    /// wildcards). Empty matches everything.
    pub keywords: Option<String>,
}

impl Default for SecretQuery {
    fn default() -> Self {
        SecretQuery {
            page_size: 20,
            page_number: 1,
            keywords: None,
        }
    }
}

impl SecretQuery {
    /// Sets the secrets per page, 1 to 1000.
    pub fn with_page_size(mut self, page_size: u32) -> SecretQuery {
        self.page_size = page_size;
        self
    }

    /// Sets the page number, from 1.
    pub fn with_page_number(mut self, page_number: u32) -> SecretQuery {
        self.page_number = page_number;
        self
    }

    /// Only secrets whose description, masked API key, vendor or id contains `keywords`.
    pub fn with_keywords(mut self, keywords: impl Into<String>) -> SecretQuery {
        self.keywords = Some(keywords.into());
        self
    }

    /// Checks the paging values; the error names the invalid field.
    pub fn validate(&self) -> Result<()> {
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return Err(Error::invalid_field(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        if self.page_number == 0 {
            return Err(Error::invalid_field("page_number", "must be at least 1"));
        }
        Ok(())
    }

    /// Rows to skip for the requested page.
    pub fn offset(&self) -> u64 {
        u64::from(self.page_number.saturating_sub(1)) * u64::from(self.page_size)
    }

    /// Whether a secret passes the keyword filter.
    pub(crate) fn matches(&self, secret: &Secret) -> bool {
        let Some(keywords) = self.keywords.as_deref().filter(|k| !k.is_empty()) else {
            return true;
        };
        let needle = keywords.to_ascii_lowercase();
        // The masked key only: matching the whole key would let anyone who can list
        // recover it a character at a time by counting matches.
        [
            secret.description.as_str(),
            mask_api_key(&secret.api_key).as_str(),
            secret.vendor.as_str(),
            secret.id.as_str(),
        ]
        .iter()
        .any(|field| field.to_ascii_lowercase().contains(&needle))
    }
}

/// One page of secrets, masked, and the number of secrets matching in all.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct SecretList {
    /// Secrets matching the query, over all pages.
    pub total: u64,
    /// The requested page, masked.
    pub items: Vec<MaskedSecret>,
}

impl SecretList {
    /// A page of `items` (masked with [`Secret::masked`]) out of `total` matching secrets.
    pub fn new(total: u64, items: Vec<MaskedSecret>) -> SecretList {
        SecretList { total, items }
    }
}

/// Where secrets are kept. API secrets and session tokens are stored as the ciphertext
/// they come in ([`Secret::api_secret`], [`Secret::session_token`]); listings are masked.
///
/// Run `cmdb_secret::testing::secret_store_conformance` (feature `testing`) against
/// every implementation.
#[async_trait]
pub trait SecretStore: Debug + Send + Sync + 'static {
    /// Stores a new secret. A secret with the same id, or with the same API key for the
    /// same vendor, is an [`ErrorKind::Conflict`] (the same key may be stored for another
    /// vendor).
    async fn create(&self, secret: &Secret) -> Result<()>;

    /// The secret with this id, still encrypted; [`ErrorKind::NotFound`] naming the id if
    /// there is none.
    async fn get(&self, id: &str) -> Result<Secret>;

    /// A page of secrets matching the query, masked, ordered by `created_at` then `id`.
    /// An invalid query is [`ErrorKind::InvalidInput`].
    async fn list(&self, query: &SecretQuery) -> Result<SecretList>;

    /// Deletes the secret with this id; [`ErrorKind::NotFound`] if there is none.
    async fn delete(&self, id: &str) -> Result<()>;

    /// Replaces the encrypted API secret and session token together if both still are
    /// `expected` (a compare-and-swap, so two rotations cannot overwrite each other; an
    /// absent token is compared as absent): [`ErrorKind::Conflict`] if either current
    /// ciphertext is another, [`ErrorKind::NotFound`] if there is no such secret.
    async fn replace_ciphertexts(
        &self,
        id: &str,
        expected: &Ciphertexts,
        new: &Ciphertexts,
    ) -> Result<()>;

    /// Replaces the stored secret `secret.id` by `secret` (every field but the id, the
    /// vendor and the creation time, which are kept) if its ciphertexts still are
    /// `expected`: a compare-and-swap, as [`replace_ciphertexts`](Self::replace_ciphertexts).
    /// A secret made by [`Secret::patched`] is sealed again with fresh nonces, so any
    /// change since it was read is a conflict. [`ErrorKind::Conflict`] if the ciphertexts
    /// changed meanwhile or another secret of the vendor has the new API key,
    /// [`ErrorKind::NotFound`] if there is no such secret.
    async fn update(&self, secret: &Secret, expected: &Ciphertexts) -> Result<()>;

    /// The scheduled syncs due at `now`: secrets with a
    /// [`sync_interval`](Secret::sync_interval) whose
    /// [`next_sync_at`](Secret::next_sync_at) is at or before `now`, earliest first, at
    /// most `limit`.
    async fn due_syncs(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueSync>>;

    /// Claims the scheduled sync of `id` found due at `due_at`: moves its
    /// `next_sync_at` to `next_at` if it still is `due_at` and the secret still has a
    /// schedule (a compare-and-swap). `true` for the one caller that moved it, `false`
    /// for every other (another process claimed it first, the schedule changed, the
    /// secret is gone). Processes sharing a store run each due sync once by running it
    /// only when this answers `true`.
    async fn claim_sync(
        &self,
        id: &str,
        due_at: DateTime<Utc>,
        next_at: DateTime<Utc>,
    ) -> Result<bool>;

    /// Records how a scheduled sync of `id` ended: `failures` in a row now (`0` after
    /// one that succeeded) and, after a failure, `not_before`: the next scheduled sync
    /// is moved back to it if it was due earlier (never forward). Nothing happens if
    /// the secret is gone or has no schedule any more.
    async fn record_sync_outcome(
        &self,
        id: &str,
        failures: u32,
        not_before: Option<DateTime<Utc>>,
    ) -> Result<()>;
}

/// The not-found error of a secret id, the same for every store.
pub(crate) fn secret_not_found(id: &str) -> Error {
    Error::not_found(format!("secret {id:?} not found"))
}

/// A [`SecretStore`] in process memory, for tests, demos and embedding.
#[derive(Debug, Default)]
pub struct MemorySecretStore {
    secrets: Mutex<BTreeMap<String, Secret>>,
}

impl MemorySecretStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Secret>> {
        // Every write is a single map operation, so a poisoned map is still consistent.
        self.secrets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl SecretStore for MemorySecretStore {
    async fn create(&self, secret: &Secret) -> Result<()> {
        let mut map = self.lock();
        if map.contains_key(&secret.id) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("a secret with id {:?} already exists", secret.id),
            ));
        }
        if map
            .values()
            .any(|s| s.vendor == secret.vendor && s.api_key == secret.api_key)
        {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "a {} secret with this api_key already exists",
                    secret.vendor
                ),
            ));
        }
        map.insert(secret.id.clone(), secret.clone());
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Secret> {
        self.lock()
            .get(id)
            .cloned()
            .ok_or_else(|| secret_not_found(id))
    }

    async fn list(&self, query: &SecretQuery) -> Result<SecretList> {
        query.validate()?;
        let map = self.lock();
        let mut matching: Vec<&Secret> = map.values().filter(|s| query.matches(s)).collect();
        matching.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let offset = usize::try_from(query.offset()).unwrap_or(usize::MAX);
        Ok(SecretList {
            total: matching.len() as u64,
            items: matching
                .into_iter()
                .skip(offset)
                .take(query.page_size as usize)
                .map(Secret::masked)
                .collect(),
        })
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.lock()
            .remove(id)
            .map(drop)
            .ok_or_else(|| secret_not_found(id))
    }

    async fn replace_ciphertexts(
        &self,
        id: &str,
        expected: &Ciphertexts,
        new: &Ciphertexts,
    ) -> Result<()> {
        let mut map = self.lock();
        let secret = map.get_mut(id).ok_or_else(|| secret_not_found(id))?;
        if secret.ciphertexts() != *expected {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("the ciphertexts of secret {id:?} changed meanwhile"),
            ));
        }
        new.api_secret.clone_into(&mut secret.api_secret);
        secret.session_token.clone_from(&new.session_token);
        Ok(())
    }

    async fn update(&self, secret: &Secret, expected: &Ciphertexts) -> Result<()> {
        let mut map = self.lock();
        let id = secret.id.as_str();
        let stored = map.get(id).ok_or_else(|| secret_not_found(id))?;
        if stored.ciphertexts() != *expected {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("secret {id:?} changed meanwhile"),
            ));
        }
        let (vendor, created_at) = (stored.vendor, stored.created_at);
        let schedule = (
            stored.sync_interval,
            stored.next_sync_at,
            stored.sync_failures,
        );
        if map
            .values()
            .any(|s| s.id != id && s.vendor == vendor && s.api_key == secret.api_key)
        {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("a {vendor} secret with this api_key already exists"),
            ));
        }
        let mut new = secret.clone();
        new.vendor = vendor;
        new.created_at = created_at;
        // Claims move the schedule: it is written only when it changed.
        if schedule.0 == new.sync_interval {
            (new.next_sync_at, new.sync_failures) = (schedule.1, schedule.2);
        } else {
            new.sync_failures = 0;
        }
        map.insert(id.to_owned(), new);
        Ok(())
    }

    async fn due_syncs(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueSync>> {
        let map = self.lock();
        let mut due: Vec<DueSync> = map
            .values()
            .filter_map(|s| match (s.sync_interval, s.next_sync_at) {
                (Some(every), Some(at)) if at <= now => {
                    Some(DueSync::new(s.id.clone(), at, every, s.sync_failures))
                }
                _ => None,
            })
            .collect();
        due.sort_by(|a, b| (a.due_at, &a.secret_id).cmp(&(b.due_at, &b.secret_id)));
        due.truncate(limit as usize);
        Ok(due)
    }

    async fn claim_sync(
        &self,
        id: &str,
        due_at: DateTime<Utc>,
        next_at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut map = self.lock();
        match map.get_mut(id) {
            Some(s) if s.sync_interval.is_some() && s.next_sync_at == Some(due_at) => {
                s.next_sync_at = Some(next_at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn record_sync_outcome(
        &self,
        id: &str,
        failures: u32,
        not_before: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let mut map = self.lock();
        if let Some(s) = map.get_mut(id).filter(|s| s.sync_interval.is_some()) {
            s.sync_failures = failures;
            if let Some(at) = not_before {
                s.next_sync_at = s.next_sync_at.max(Some(at));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_defaults_and_validation() {
        let q: SecretQuery = serde_json::from_str("{}").unwrap();
        assert_eq!(q, SecretQuery::default());
        assert_eq!((q.page_size, q.page_number, q.keywords), (20, 1, None));
        SecretQuery::default().validate().unwrap();
        let bad = |f: fn(&mut SecretQuery)| {
            let mut q = SecretQuery::default();
            f(&mut q);
            q.validate().unwrap_err().field()
        };
        assert_eq!(bad(|q| q.page_size = 0), Some("page_size"));
        assert_eq!(bad(|q| q.page_size = 1001), Some("page_size"));
        assert_eq!(bad(|q| q.page_number = 0), Some("page_number"));
        let q = SecretQuery {
            page_size: 1000,
            page_number: 3,
            keywords: None,
        };
        q.validate().unwrap();
        assert_eq!(q.offset(), 2000);
    }
}
