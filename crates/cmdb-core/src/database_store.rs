//! The trait every store of database instances implements, and its queries.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::database::{Database, DatabaseStatus, StoredDatabase};
use crate::error::Result;
use crate::model::{SyncScope, UpsertOutcome, Vendor};
use crate::store::{check_paging, page_offset, MissingHost, ScopeStats};

/// The order of a database query's results: [`HostSort`](crate::HostSort)'s orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum DatabaseSort {
    /// By vendor, then instance id (stable, the default).
    #[default]
    InstanceId,
    /// By name, then vendor and instance id.
    Name,
    /// Most recently seen first, then vendor and instance id.
    LastSeenDesc,
}

/// A filtered, paged query of stored database instances: the filters and paging of
/// [`HostQuery`](crate::HostQuery). Empty filters match everything.
///
/// ```
/// use cmdb_core::{DatabaseQuery, DatabaseSort, DatabaseStatus, Vendor};
///
/// let query = DatabaseQuery::default()
///     .with_vendor(Vendor::Huawei)
///     .with_status(DatabaseStatus::Running)
///     .with_sort(DatabaseSort::LastSeenDesc)
///     .with_page_size(50);
/// assert_eq!((query.page_size, query.page_number), (50, 1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct DatabaseQuery {
    /// Only this vendor.
    pub vendor: Option<Vendor>,
    /// Only this region.
    pub region: Option<String>,
    /// Only instances last seen by this secret.
    pub secret_id: Option<String>,
    /// Only this status.
    pub status: Option<DatabaseStatus>,
    /// Substring of the name (case-insensitive), instance id or any endpoint's host.
    pub keywords: Option<String>,
    /// `Some(true)`: only released instances; `Some(false)`: only active ones; `None`:
    /// both.
    pub released: Option<bool>,
    /// Order of the results.
    pub sort: DatabaseSort,
    /// Instances per page, 1 to [`MAX_PAGE_SIZE`](crate::MAX_PAGE_SIZE).
    pub page_size: u32,
    /// Page number, from 1.
    pub page_number: u32,
}

impl Default for DatabaseQuery {
    fn default() -> Self {
        DatabaseQuery {
            vendor: None,
            region: None,
            secret_id: None,
            status: None,
            keywords: None,
            released: None,
            sort: DatabaseSort::InstanceId,
            page_size: 20,
            page_number: 1,
        }
    }
}

impl DatabaseQuery {
    /// Only instances of this vendor.
    pub fn with_vendor(mut self, vendor: Vendor) -> DatabaseQuery {
        self.vendor = Some(vendor);
        self
    }

    /// Only instances of this region.
    pub fn with_region(mut self, region: impl Into<String>) -> DatabaseQuery {
        self.region = Some(region.into());
        self
    }

    /// Only instances last seen by this secret.
    pub fn with_secret_id(mut self, secret_id: impl Into<String>) -> DatabaseQuery {
        self.secret_id = Some(secret_id.into());
        self
    }

    /// Only instances with this status.
    pub fn with_status(mut self, status: DatabaseStatus) -> DatabaseQuery {
        self.status = Some(status);
        self
    }

    /// Only instances whose name, instance id or an endpoint's host contains `keywords`.
    pub fn with_keywords(mut self, keywords: impl Into<String>) -> DatabaseQuery {
        self.keywords = Some(keywords.into());
        self
    }

    /// Only released instances (`true`) or only active ones (`false`).
    pub fn with_released(mut self, released: bool) -> DatabaseQuery {
        self.released = Some(released);
        self
    }

    /// Sets the order of the results.
    pub fn with_sort(mut self, sort: DatabaseSort) -> DatabaseQuery {
        self.sort = sort;
        self
    }

    /// Sets the instances per page, 1 to [`MAX_PAGE_SIZE`](crate::MAX_PAGE_SIZE).
    pub fn with_page_size(mut self, page_size: u32) -> DatabaseQuery {
        self.page_size = page_size;
        self
    }

    /// Sets the page number, from 1.
    pub fn with_page_number(mut self, page_number: u32) -> DatabaseQuery {
        self.page_number = page_number;
        self
    }

    /// Checks the paging values, as [`HostQuery::validate`](crate::HostQuery::validate).
    pub fn validate(&self) -> Result<()> {
        check_paging(self.page_size, self.page_number)
    }

    /// Rows to skip for the requested page.
    pub fn offset(&self) -> u64 {
        page_offset(self.page_size, self.page_number)
    }

    /// Whether a stored instance passes every filter.
    pub fn matches(&self, d: &StoredDatabase) -> bool {
        let db = &d.database;
        self.vendor.is_none_or(|v| db.vendor == v)
            && self.region.as_deref().is_none_or(|r| db.region == r)
            && self.secret_id.as_deref().is_none_or(|s| db.secret_id == s)
            && self.status.is_none_or(|s| db.status == s)
            && self.released.is_none_or(|r| d.released_at.is_some() == r)
            && self
                .keywords
                .as_deref()
                .is_none_or(|k| db.matches_keyword(k))
    }
}

/// One page of database query results and the number of instances matching in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct DatabaseList {
    /// Instances matching the query, over all pages.
    pub total: u64,
    /// The requested page.
    pub items: Vec<StoredDatabase>,
}

impl DatabaseList {
    /// A page of `items` out of `total` matching instances.
    pub fn new(total: u64, items: Vec<StoredDatabase>) -> DatabaseList {
        DatabaseList { total, items }
    }
}

/// Where database instances are kept: [`HostStore`](crate::HostStore)'s contract for
/// [`Database`] records, with the same scopes (of [`ResourceType::Rds`]), outcomes,
/// releases and miss marks. Scope locks are the host store's
/// ([`HostStore::try_lock_scope`](crate::HostStore::try_lock_scope)), whatever a scope
/// lists.
///
/// Instances are keyed by `(vendor, instance_id)`. The scope methods answer nothing for
/// a scope of another resource type. Implementations must be safe to call from
/// concurrent syncs of different scopes.
///
/// [`ResourceType::Rds`]: crate::ResourceType::Rds
#[async_trait]
pub trait DatabaseStore: Debug + Send + Sync + 'static {
    /// Inserts or updates a batch of instances seen by a sync of `scope` at `seen_at`,
    /// and reports, per instance and in input order, whether it was created, updated,
    /// unchanged (same [`Database::content_hash`]; only `last_seen_at` moves) or failed.
    /// The stored `secret_id` is the scope's. A released instance that is seen again
    /// becomes active and counts as updated. A failure of one instance does not lose the
    /// others; an `Err` means nothing of the batch was stored.
    async fn upsert(
        &self,
        scope: &SyncScope,
        databases: &[Database],
        seen_at: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>>;

    /// Counts the active instances of `scope` and those among them last seen before
    /// `seen_before`.
    async fn scope_stats(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
    ) -> Result<ScopeStats>;

    /// The active instances of `scope` last seen before `seen_before`, in `instance_id`
    /// order, starting after `after` when given, at most `limit` of them: as
    /// [`HostStore::missing`](crate::HostStore::missing).
    async fn missing(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MissingHost>>;

    /// Marks as released, at `released_at`, those of `instance_ids` that are active
    /// instances of `scope` still last seen before `seen_before`, and returns how many
    /// were marked. An instance seen again meanwhile is left alone; none is deleted.
    async fn release(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        seen_before: DateTime<Utc>,
        released_at: DateTime<Utc>,
    ) -> Result<u64>;

    /// Records that a complete run of `scope` at `missed_at` did not list `instance_ids`,
    /// keeping an earlier mark where one is set; returns how many were marked for the
    /// first time. An upsert that sees the instance clears the mark. As
    /// [`HostStore::mark_missed`](crate::HostStore::mark_missed).
    async fn mark_missed(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        missed_at: DateTime<Utc>,
    ) -> Result<u64>;

    /// One instance by its key.
    async fn get(&self, vendor: Vendor, instance_id: &str) -> Result<Option<StoredDatabase>>;

    /// A filtered, sorted page of instances with the total.
    async fn query(&self, query: &DatabaseQuery) -> Result<DatabaseList>;
}
