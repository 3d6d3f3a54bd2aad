//! A store wrapper for tests: counts pages alive, slows down, fails on demand.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cmdb_core::{
    Error, Host, HostList, HostQuery, HostStore, LeaseGuard, MissingHost, Result, ScopeLease,
    ScopeStats, StoredHost, SyncScope, UpsertOutcome, Vendor,
};

/// Counts hosts a provider has produced and a store has not finished with yet, and the
/// most that were ever alive at once. Counted in hosts rather than pages because a sync
/// may hand the store several pages in one upsert.
#[derive(Debug, Default)]
pub struct PageGauge {
    current: AtomicI64,
    max: AtomicI64,
}

impl PageGauge {
    /// A gauge at zero.
    pub fn new() -> Arc<PageGauge> {
        Arc::new(PageGauge::default())
    }

    /// A page of `hosts` hosts was produced.
    pub fn produced(&self, hosts: usize) {
        let hosts = i64::try_from(hosts).unwrap_or(i64::MAX);
        let now = self.current.fetch_add(hosts, Ordering::SeqCst) + hosts;
        self.max.fetch_max(now, Ordering::SeqCst);
    }

    /// `hosts` hosts were consumed (stored, or given up).
    pub fn consumed(&self, hosts: usize) {
        let hosts = i64::try_from(hosts).unwrap_or(i64::MAX);
        self.current.fetch_sub(hosts, Ordering::SeqCst);
    }

    /// Hosts alive now.
    pub fn current(&self) -> i64 {
        self.current.load(Ordering::SeqCst)
    }

    /// The most hosts that were alive at once.
    pub fn max(&self) -> i64 {
        self.max.load(Ordering::SeqCst)
    }
}

/// A [`HostStore`] wrapper for tests. It can mark the hosts of an upsert consumed on a
/// [`PageGauge`] when it returns (so `gauge.max()` is the most hosts a sync ever held at
/// once), take
/// time over each upsert (tokio time), and fail the n-th upsert.
#[derive(Debug)]
pub struct InstrumentedStore<S> {
    inner: S,
    gauge: Option<Arc<PageGauge>>,
    delay: Option<Duration>,
    fail_on_upsert: Option<u64>,
    lock_held_elsewhere: bool,
    lease_lost: bool,
    upserts: AtomicU64,
}

/// A scope lease that reports itself lost, as a lock whose database session died does.
struct LostLease;

#[async_trait]
impl LeaseGuard for LostLease {
    async fn is_held(&self) -> Result<bool> {
        Ok(false)
    }
}

impl<S> InstrumentedStore<S> {
    /// Wraps `inner`, changing nothing yet.
    pub fn new(inner: S) -> Self {
        InstrumentedStore {
            inner,
            gauge: None,
            delay: None,
            fail_on_upsert: None,
            lock_held_elsewhere: false,
            lease_lost: false,
            upserts: AtomicU64::new(0),
        }
    }

    /// Reports each finished upsert to `gauge`.
    pub fn with_gauge(mut self, gauge: Arc<PageGauge>) -> Self {
        self.gauge = Some(gauge);
        self
    }

    /// Takes `delay` over each upsert.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Fails the `n`-th upsert (1-based) with a store error, storing nothing of it.
    pub fn with_failure_on_upsert(mut self, n: u64) -> Self {
        self.fail_on_upsert = Some(n);
        self
    }

    /// Answers every scope lock as held by another process.
    pub fn with_scope_locks_held_elsewhere(mut self) -> Self {
        self.lock_held_elsewhere = true;
        self
    }

    /// Hands out scope leases that answer [`ScopeLease::is_held`] with `false`, as if the
    /// lock's database session had died during the run.
    pub fn with_lost_leases(mut self) -> Self {
        self.lease_lost = true;
        self
    }

    /// Upserts called so far.
    pub fn upserts(&self) -> u64 {
        self.upserts.load(Ordering::SeqCst)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

#[async_trait]
impl<S: HostStore> HostStore for InstrumentedStore<S> {
    async fn upsert(
        &self,
        scope: &SyncScope,
        hosts: &[Host],
        seen_at: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>> {
        let n = self.upserts.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        let out = if self.fail_on_upsert == Some(n) {
            Err(Error::store(format!("injected failure of upsert {n}")))
        } else {
            self.inner.upsert(scope, hosts, seen_at).await
        };
        if let Some(g) = &self.gauge {
            g.consumed(hosts.len());
        }
        out
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

    async fn try_lock_scope(&self, scope: &SyncScope) -> Result<Option<ScopeLease>> {
        if self.lock_held_elsewhere {
            return Ok(None);
        }
        if self.lease_lost {
            return Ok(Some(ScopeLease::checked(LostLease)));
        }
        self.inner.try_lock_scope(scope).await
    }

    async fn is_scope_locked(&self, scope: &SyncScope) -> Result<Option<bool>> {
        if self.lock_held_elsewhere {
            return Ok(Some(true));
        }
        self.inner.is_scope_locked(scope).await
    }

    async fn get(&self, vendor: Vendor, instance_id: &str) -> Result<Option<StoredHost>> {
        self.inner.get(vendor, instance_id).await
    }

    async fn query(&self, query: &HostQuery) -> Result<HostList> {
        self.inner.query(query).await
    }
}
