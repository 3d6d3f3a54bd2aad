//! What the sync pipeline needs of a resource kind, so that one pipeline drains, stores
//! and releases hosts and database instances alike: a [`Record`] (its id and name, the
//! secret it is stored under), pages of records from a [`Lister`] (a provider), and a
//! [`Store`] that upserts them and keeps what each scope is missing.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::StreamExt;

use cmdb_core::{
    Database, DatabasePage, DatabaseProvider, DatabaseStore, FailedRecord, Host, HostPage,
    HostProvider, HostStore, MissingHost, Result, ScopeStats, SyncScope, UpsertOutcome,
};

/// A record the pipeline stores.
pub(crate) trait Record: Send + Sync + 'static {
    /// The vendor's id of the record.
    fn instance_id(&self) -> &str;
    /// Its display name.
    fn name(&self) -> &str;
    /// Stores it under the secret `id`.
    fn set_secret_id(&mut self, id: &str);
}

impl Record for Host {
    fn instance_id(&self) -> &str {
        &self.instance_id
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_secret_id(&mut self, id: &str) {
        id.clone_into(&mut self.secret_id);
    }
}

impl Record for Database {
    fn instance_id(&self) -> &str {
        &self.instance_id
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_secret_id(&mut self, id: &str) {
        id.clone_into(&mut self.secret_id);
    }
}

/// One page of records as a provider lists them (see [`HostPage`]).
pub(crate) struct Page<R> {
    pub(crate) records: Vec<R>,
    pub(crate) total: Option<u64>,
    pub(crate) moved: Option<String>,
    pub(crate) failed: Vec<FailedRecord>,
}

impl From<HostPage> for Page<Host> {
    fn from(page: HostPage) -> Self {
        Page {
            records: page.hosts,
            total: page.total,
            moved: page.moved,
            failed: page.failed,
        }
    }
}

impl From<DatabasePage> for Page<Database> {
    fn from(page: DatabasePage) -> Self {
        Page {
            records: page.databases,
            total: page.total,
            moved: page.moved,
            failed: page.failed,
        }
    }
}

/// Lists records: a provider (see [`HostProvider`]).
pub(crate) trait Lister<R>: Send + Sync {
    /// Every record, page by page.
    fn pages(&self) -> BoxStream<'static, Result<Page<R>>>;
    /// The records of `ids` the vendor still has; `None`: no by-id call.
    fn lookup(&self, ids: Vec<String>) -> Option<BoxStream<'static, Result<Page<R>>>>;
}

impl Lister<Host> for Arc<dyn HostProvider> {
    fn pages(&self) -> BoxStream<'static, Result<Page<Host>>> {
        HostProvider::pages(&**self)
            .map(|page| page.map(Page::from))
            .boxed()
    }

    fn lookup(&self, ids: Vec<String>) -> Option<BoxStream<'static, Result<Page<Host>>>> {
        HostProvider::lookup(&**self, ids).map(|s| s.map(|page| page.map(Page::from)).boxed())
    }
}

impl Lister<Database> for Arc<dyn DatabaseProvider> {
    fn pages(&self) -> BoxStream<'static, Result<Page<Database>>> {
        DatabaseProvider::pages(&**self)
            .map(|page| page.map(Page::from))
            .boxed()
    }

    fn lookup(&self, ids: Vec<String>) -> Option<BoxStream<'static, Result<Page<Database>>>> {
        DatabaseProvider::lookup(&**self, ids).map(|s| s.map(|page| page.map(Page::from)).boxed())
    }
}

/// Stores records and answers what a scope is missing (see [`HostStore`]).
#[async_trait]
pub(crate) trait Store<R>: Send + Sync {
    async fn upsert(
        &self,
        scope: &SyncScope,
        records: &[R],
        seen_at: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>>;
    async fn scope_stats(&self, scope: &SyncScope, run_start: DateTime<Utc>) -> Result<ScopeStats>;
    async fn missing(
        &self,
        scope: &SyncScope,
        run_start: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MissingHost>>;
    async fn release(
        &self,
        scope: &SyncScope,
        ids: &[String],
        run_start: DateTime<Utc>,
        released_at: DateTime<Utc>,
    ) -> Result<u64>;
    async fn mark_missed(
        &self,
        scope: &SyncScope,
        ids: &[String],
        missed_at: DateTime<Utc>,
    ) -> Result<u64>;
}

/// `Store<$record>` for `Arc<dyn $store>`: each call forwarded to the store's own.
macro_rules! forward_store {
    ($record:ty, $store:ident) => {
        #[async_trait]
        impl Store<$record> for Arc<dyn $store> {
            async fn upsert(
                &self,
                scope: &SyncScope,
                records: &[$record],
                seen_at: DateTime<Utc>,
            ) -> Result<Vec<UpsertOutcome>> {
                $store::upsert(&**self, scope, records, seen_at).await
            }

            async fn scope_stats(
                &self,
                scope: &SyncScope,
                run_start: DateTime<Utc>,
            ) -> Result<ScopeStats> {
                $store::scope_stats(&**self, scope, run_start).await
            }

            async fn missing(
                &self,
                scope: &SyncScope,
                run_start: DateTime<Utc>,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<MissingHost>> {
                $store::missing(&**self, scope, run_start, after, limit).await
            }

            async fn release(
                &self,
                scope: &SyncScope,
                ids: &[String],
                run_start: DateTime<Utc>,
                released_at: DateTime<Utc>,
            ) -> Result<u64> {
                $store::release(&**self, scope, ids, run_start, released_at).await
            }

            async fn mark_missed(
                &self,
                scope: &SyncScope,
                ids: &[String],
                missed_at: DateTime<Utc>,
            ) -> Result<u64> {
                $store::mark_missed(&**self, scope, ids, missed_at).await
            }
        }
    };
}

forward_store!(Host, HostStore);
forward_store!(Database, DatabaseStore);
