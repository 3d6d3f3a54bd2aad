//! Scope locks that hold within one process.

use std::collections::HashSet;
use std::fmt::{self, Debug};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::model::{Host, StoredHost, SyncScope, UpsertOutcome, Vendor};
use crate::store::{HostList, HostQuery, HostStore, MissingHost, ScopeLease, ScopeStats};

/// A [`HostStore`] whose [`try_lock_scope`](HostStore::try_lock_scope) locks within this
/// process only; every other method is the wrapped store's.
///
/// For a store that one process uses: a file only this process opens, a cache, a store
/// of your own that has no lock of its own yet. Two processes sharing the wrapped store
/// (two replicas on one database) do **not** exclude each other: both can sync the same
/// scope at once, and one run can then release hosts the other has just stored. Give a
/// shared store a lock of its own instead (a database lock or a lease row, as
/// `cmdb-store-sql` does).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use cmdb_core::{HostStore, LocalLocks, MemoryHostStore, ResourceType, SyncScope, Vendor};
///
/// let store = LocalLocks::new(MemoryHostStore::new());
/// let scope = SyncScope::new("s-1", Vendor::Aliyun, "cn-hangzhou", ResourceType::Host);
/// let lease = store.try_lock_scope(&scope).await.unwrap().expect("free");
/// assert!(store.try_lock_scope(&scope).await.unwrap().is_none(), "held");
/// drop(lease);
/// assert!(store.try_lock_scope(&scope).await.unwrap().is_some(), "free again");
/// # });
/// ```
pub struct LocalLocks<S> {
    inner: S,
    held: ScopeLocks,
}

impl<S> LocalLocks<S> {
    /// `store`, with scope locks that hold within this process only.
    pub fn new(store: S) -> LocalLocks<S> {
        LocalLocks {
            inner: store,
            held: ScopeLocks::default(),
        }
    }

    /// The wrapped store.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped store, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Debug> Debug for LocalLocks<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalLocks")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The scopes locked in this process; shared with the leases that remove them on drop.
#[derive(Debug, Default, Clone)]
pub(crate) struct ScopeLocks(Arc<Mutex<HashSet<SyncScope>>>);

impl ScopeLocks {
    fn lock(&self) -> MutexGuard<'_, HashSet<SyncScope>> {
        // Every critical section is one insert or remove: a poisoned set is consistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A lease on `scope`, or `None` while another lease on it lives.
    /// Whether `scope` is held in this process.
    pub(crate) fn is_held(&self, scope: &SyncScope) -> bool {
        self.lock().contains(scope)
    }

    pub(crate) fn try_lock(&self, scope: &SyncScope) -> Option<ScopeLease> {
        if !self.lock().insert(scope.clone()) {
            return None;
        }
        Some(ScopeLease::new(Held {
            locks: self.clone(),
            scope: scope.clone(),
        }))
    }
}

/// Removes its scope from the held set when dropped.
struct Held {
    locks: ScopeLocks,
    scope: SyncScope,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.locks.lock().remove(&self.scope);
    }
}

#[async_trait]
impl<S: HostStore> HostStore for LocalLocks<S> {
    async fn upsert(
        &self,
        scope: &SyncScope,
        hosts: &[Host],
        seen_at: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>> {
        self.inner.upsert(scope, hosts, seen_at).await
    }

    async fn scope_stats(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
    ) -> Result<ScopeStats> {
        self.inner.scope_stats(scope, seen_before).await
    }

    async fn missing(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MissingHost>> {
        self.inner.missing(scope, seen_before, after, limit).await
    }

    async fn release(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        seen_before: DateTime<Utc>,
        released_at: DateTime<Utc>,
    ) -> Result<u64> {
        self.inner
            .release(scope, instance_ids, seen_before, released_at)
            .await
    }

    async fn mark_missed(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        missed_at: DateTime<Utc>,
    ) -> Result<u64> {
        self.inner.mark_missed(scope, instance_ids, missed_at).await
    }

    /// A lock held within this process only; see [`LocalLocks`].
    async fn try_lock_scope(&self, scope: &SyncScope) -> Result<Option<ScopeLease>> {
        Ok(self.held.try_lock(scope))
    }

    async fn is_scope_locked(&self, scope: &SyncScope) -> Result<Option<bool>> {
        Ok(Some(self.held.is_held(scope)))
    }

    async fn get(&self, vendor: Vendor, instance_id: &str) -> Result<Option<StoredHost>> {
        self.inner.get(vendor, instance_id).await
    }

    async fn query(&self, query: &HostQuery) -> Result<HostList> {
        self.inner.query(query).await
    }
}
