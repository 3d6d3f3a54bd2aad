//! The trait every host store implements.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Host, HostStatus, StoredHost, SyncScope, UpsertOutcome, Vendor};

/// The largest page a host query may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The order of a host query's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum HostSort {
    /// By vendor, then instance id (stable, the default).
    #[default]
    InstanceId,
    /// By name, then vendor and instance id.
    Name,
    /// Most recently seen first, then vendor and instance id.
    LastSeenDesc,
}

/// A filtered, paged query of stored hosts. Empty filters match everything.
///
/// Start from [`HostQuery::default()`] and narrow it with the `with_*` methods:
///
/// ```
/// use cmdb_core::{HostQuery, HostSort, Vendor};
///
/// let query = HostQuery::default()
///     .with_vendor(Vendor::Tencent)
///     .with_released(false)
///     .with_sort(HostSort::Name)
///     .with_page_size(100);
/// assert_eq!((query.page_size, query.page_number), (100, 1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct HostQuery {
    /// Only this vendor.
    pub vendor: Option<Vendor>,
    /// Only this region.
    pub region: Option<String>,
    /// Only hosts last seen by this secret.
    pub secret_id: Option<String>,
    /// Only this status.
    pub status: Option<HostStatus>,
    /// Substring of the name (case-insensitive), instance id or any IP.
    pub keywords: Option<String>,
    /// `Some(true)`: only released hosts; `Some(false)`: only active ones; `None`: both.
    pub released: Option<bool>,
    /// Order of the results.
    pub sort: HostSort,
    /// Hosts per page, 1 to [`MAX_PAGE_SIZE`].
    pub page_size: u32,
    /// Page number, from 1.
    pub page_number: u32,
}

impl Default for HostQuery {
    fn default() -> Self {
        HostQuery {
            vendor: None,
            region: None,
            secret_id: None,
            status: None,
            keywords: None,
            released: None,
            sort: HostSort::InstanceId,
            page_size: 20,
            page_number: 1,
        }
    }
}

impl HostQuery {
    /// Only hosts of this vendor.
    pub fn with_vendor(mut self, vendor: Vendor) -> HostQuery {
        self.vendor = Some(vendor);
        self
    }

    /// Only hosts of this region.
    pub fn with_region(mut self, region: impl Into<String>) -> HostQuery {
        self.region = Some(region.into());
        self
    }

    /// Only hosts last seen by this secret.
    pub fn with_secret_id(mut self, secret_id: impl Into<String>) -> HostQuery {
        self.secret_id = Some(secret_id.into());
        self
    }

    /// Only hosts with this status.
    pub fn with_status(mut self, status: HostStatus) -> HostQuery {
        self.status = Some(status);
        self
    }

    /// Only hosts whose name, instance id or an IP contains `keywords`.
    pub fn with_keywords(mut self, keywords: impl Into<String>) -> HostQuery {
        self.keywords = Some(keywords.into());
        self
    }

    /// Only released hosts (`true`) or only active ones (`false`).
    pub fn with_released(mut self, released: bool) -> HostQuery {
        self.released = Some(released);
        self
    }

    /// Sets the order of the results.
    pub fn with_sort(mut self, sort: HostSort) -> HostQuery {
        self.sort = sort;
        self
    }

    /// Sets the hosts per page, 1 to [`MAX_PAGE_SIZE`].
    pub fn with_page_size(mut self, page_size: u32) -> HostQuery {
        self.page_size = page_size;
        self
    }

    /// Sets the page number, from 1.
    pub fn with_page_number(mut self, page_number: u32) -> HostQuery {
        self.page_number = page_number;
        self
    }

    /// Checks the paging values.
    pub fn validate(&self) -> Result<()> {
        check_paging(self.page_size, self.page_number)
    }

    /// Rows to skip for the requested page.
    pub fn offset(&self) -> u64 {
        page_offset(self.page_size, self.page_number)
    }

    /// Whether a stored host passes every filter.
    pub fn matches(&self, h: &StoredHost) -> bool {
        self.vendor.is_none_or(|v| h.host.vendor == v)
            && self.region.as_deref().is_none_or(|r| h.host.region == r)
            && self
                .secret_id
                .as_deref()
                .is_none_or(|s| h.host.secret_id == s)
            && self.status.is_none_or(|s| h.host.status == s)
            && self.released.is_none_or(|r| h.released_at.is_some() == r)
            && self
                .keywords
                .as_deref()
                .is_none_or(|k| h.host.matches_keyword(k))
    }
}

/// One page of query results and the number of hosts matching in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct HostList {
    /// Hosts matching the query, over all pages.
    pub total: u64,
    /// The requested page.
    pub items: Vec<StoredHost>,
}

impl HostList {
    /// A page of `items` out of `total` matching hosts.
    pub fn new(total: u64, items: Vec<StoredHost>) -> HostList {
        HostList { total, items }
    }
}

/// Counts of a scope that the release guard weighs (hosts, or the instances of another
/// resource type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScopeStats {
    /// Active (not released) hosts of the scope, seen by this run or not.
    pub active: u64,
    /// Active hosts of the scope not seen since the given time: those a release would mark.
    pub missing: u64,
}

impl ScopeStats {
    /// `active` hosts of a scope, `missing` of them not seen since the given time.
    pub fn new(active: u64, missing: u64) -> ScopeStats {
        ScopeStats { active, missing }
    }
}

/// An active host (or database instance) that a complete run did not list. See
/// [`HostStore::missing`] and [`DatabaseStore::missing`](crate::DatabaseStore::missing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MissingHost {
    /// The vendor's id of the host.
    pub instance_id: String,
    /// When a complete run of the scope first missed it, since it was last seen; `None`
    /// when no run has marked it (see [`HostStore::mark_missed`]).
    pub missed_at: Option<DateTime<Utc>>,
}

impl MissingHost {
    /// The host `instance_id`, first missed at `missed_at` (`None` when not marked).
    pub fn new(instance_id: impl Into<String>, missed_at: Option<DateTime<Utc>>) -> MissingHost {
        MissingHost {
            instance_id: instance_id.into(),
            missed_at,
        }
    }
}

/// What holds a scope's lock in a store, and can tell whether it still does.
///
/// A lock kept by a database session dies with the session; a lease row may be taken
/// over once it expires. A sync asks [`is_held`](Self::is_held) right before it releases
/// hosts and releases nothing when the answer is not a clear yes.
#[async_trait]
pub trait LeaseGuard: Send + Sync + 'static {
    /// Whether the lock is still held by this guard (the session holding it is alive,
    /// the lease row is still ours and unexpired).
    async fn is_held(&self) -> Result<bool>;
}

/// A guard that holds a value until dropped and is always held.
struct Holds<G>(#[allow(dead_code)] G);

#[async_trait]
impl<G: Send + Sync + 'static> LeaseGuard for Holds<G> {
    async fn is_held(&self) -> Result<bool> {
        Ok(true)
    }
}

/// A held lock on a scope, shared by every process using the same store; dropping it
/// releases the lock. See [`HostStore::try_lock_scope`].
pub struct ScopeLease(Box<dyn LeaseGuard>);

impl ScopeLease {
    /// A lease that holds `guard` until it is dropped and is held as long as it lives
    /// (a lock that cannot be lost while its holder lives).
    pub fn new(guard: impl Send + Sync + 'static) -> ScopeLease {
        ScopeLease(Box::new(Holds(guard)))
    }

    /// A lease whose guard can tell whether the lock is still held (a connection holding
    /// an advisory lock, a renewed lease row, ...).
    pub fn checked(guard: impl LeaseGuard) -> ScopeLease {
        ScopeLease(Box::new(guard))
    }

    /// Whether the lock is still held; see [`LeaseGuard::is_held`].
    pub async fn is_held(&self) -> Result<bool> {
        self.0.is_held().await
    }
}

impl Debug for ScopeLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScopeLease")
    }
}

/// Checks a `page_size` (1 to [`MAX_PAGE_SIZE`]) and a `page_number` (from 1).
pub(crate) fn check_paging(page_size: u32, page_number: u32) -> Result<()> {
    if page_size == 0 || page_size > MAX_PAGE_SIZE {
        return Err(Error::invalid_field(
            "page_size",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    if page_number == 0 {
        return Err(Error::invalid_field("page_number", "must be at least 1"));
    }
    Ok(())
}

/// Rows to skip for page `page_number` (from 1) of `page_size` rows.
pub(crate) fn page_offset(page_size: u32, page_number: u32) -> u64 {
    u64::from(page_number.saturating_sub(1)) * u64::from(page_size)
}

/// Where hosts are kept.
///
/// Hosts are keyed by `(vendor, instance_id)`. Implementations must be safe to call from
/// concurrent syncs of different scopes.
#[async_trait]
pub trait HostStore: Debug + Send + Sync + 'static {
    /// Inserts or updates a batch of hosts seen by a sync of `scope` at `seen_at`, and
    /// reports, per host and in input order, whether it was created, updated, unchanged
    /// (same [`Host::content_hash`]; only `last_seen_at` moves) or failed. A released host
    /// that is seen again becomes active and counts as updated. A failure of one host does
    /// not lose the others; an `Err` means nothing of the batch was stored.
    async fn upsert(
        &self,
        scope: &SyncScope,
        hosts: &[Host],
        seen_at: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>>;

    /// Counts the active hosts of `scope` and those among them last seen before
    /// `seen_before`.
    async fn scope_stats(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
    ) -> Result<ScopeStats>;

    /// The active hosts of `scope` last seen before `seen_before` (those a complete run
    /// of the scope did not list), in `instance_id` order, starting after `after` when
    /// given, at most `limit` of them. A sync pages through them with the last id of each
    /// answer to confirm, by id, that the vendor no longer has them.
    async fn missing(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MissingHost>>;

    /// Marks as released, at `released_at`, those of `instance_ids` that are active hosts
    /// of `scope` still last seen before `seen_before`, and returns how many were marked.
    /// A host seen again meanwhile is left alone. Hosts are never deleted.
    async fn release(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        seen_before: DateTime<Utc>,
        released_at: DateTime<Utc>,
    ) -> Result<u64>;

    /// Records that a complete run of `scope` at `missed_at` did not list `instance_ids`
    /// (active hosts of the scope last seen before `missed_at`), keeping an earlier mark
    /// where one is set; returns how many were marked for the first time. An upsert that
    /// sees the host clears the mark. Used for providers that cannot look hosts up by id:
    /// they release only hosts that two consecutive complete runs missed.
    async fn mark_missed(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        missed_at: DateTime<Utc>,
    ) -> Result<u64>;

    /// Takes the lock that lets one sync of `scope` run at a time across every process
    /// sharing this store: `Ok(None)` when another holder has it. The lock must not
    /// outlive its holder's process (a crashed holder's lock is released, e.g. with its
    /// connection).
    ///
    /// There is no default: a store says how it locks. One that several processes share
    /// locks in the shared system (a database lock, a lease row); one that lives in a
    /// single process may wrap itself in [`LocalLocks`](crate::LocalLocks), whose locks
    /// hold within this process only.
    async fn try_lock_scope(&self, scope: &SyncScope) -> Result<Option<ScopeLease>>;

    /// Whether `scope`'s lock is held now, by any process, found without taking it:
    /// `Some(held)` when the store can tell, `None` (the default) when only
    /// [`try_lock_scope`](Self::try_lock_scope) can. The task store's check for runs
    /// whose process is gone asks this first, so that checking never holds a lock that a
    /// new sync of the scope wants at the same moment.
    async fn is_scope_locked(&self, scope: &SyncScope) -> Result<Option<bool>> {
        let _ = scope;
        Ok(None)
    }

    /// One host by its key.
    async fn get(&self, vendor: Vendor, instance_id: &str) -> Result<Option<StoredHost>>;

    /// A filtered, sorted page of hosts with the total.
    async fn query(&self, query: &HostQuery) -> Result<HostList>;
}
