//! [`HostStore`] for [`SqlStore`]: the table `cmdb_hosts`, on the statements every table
//! of records shares ([`crate::records`]).
//!
//! - [`columns`]: the columns of `cmdb_hosts` and how a row reads back.
//! - [`row`]: a host checked against its columns, bound for writing.
//! - [`query`]: look-up by key and filtered, paged listings.

mod columns;
mod query;
mod row;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cmdb_core::{
    Host, HostList, HostQuery, HostStore, MissingHost, Result, ScopeLease, ScopeStats, StoredHost,
    SyncScope, UpsertOutcome, Vendor,
};

use crate::records::release::Mark;
use crate::records::upsert::Prepared;
use crate::store::SqlStore;
use columns::HOSTS;
use row::Row;

#[async_trait]
impl HostStore for SqlStore {
    async fn upsert(
        &self,
        scope: &SyncScope,
        hosts: &[Host],
        seen_at: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>> {
        let batch = Prepared::new(hosts, |h| h.instance_id.as_str(), |h| Row::new(scope, h));
        self.upsert_records(&HOSTS, scope, batch, seen_at).await
    }

    async fn scope_stats(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
    ) -> Result<ScopeStats> {
        self.count_scope(&HOSTS, scope, seen_before).await
    }

    async fn missing(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MissingHost>> {
        self.list_missing(&HOSTS, scope, seen_before, after, limit)
            .await
    }

    async fn release(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        seen_before: DateTime<Utc>,
        released_at: DateTime<Utc>,
    ) -> Result<u64> {
        self.mark(
            &HOSTS,
            scope,
            instance_ids,
            seen_before,
            Mark::Released(released_at),
        )
        .await
    }

    async fn mark_missed(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        missed_at: DateTime<Utc>,
    ) -> Result<u64> {
        self.mark(
            &HOSTS,
            scope,
            instance_ids,
            missed_at,
            Mark::Missed(missed_at),
        )
        .await
    }

    async fn try_lock_scope(&self, scope: &SyncScope) -> Result<Option<ScopeLease>> {
        crate::lock::try_lock_scope(self, scope).await
    }

    async fn is_scope_locked(&self, scope: &SyncScope) -> Result<Option<bool>> {
        crate::lock::is_scope_locked(self, scope).await
    }

    async fn get(&self, vendor: Vendor, instance_id: &str) -> Result<Option<StoredHost>> {
        self.get_host(vendor, instance_id).await
    }

    async fn query(&self, query: &HostQuery) -> Result<HostList> {
        self.query_hosts(query).await
    }
}
