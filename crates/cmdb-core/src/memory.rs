//! A complete in-memory [`HostStore`], [`DatabaseStore`] and [`RunStore`].

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::database::{Database, StoredDatabase};
use crate::database_store::{DatabaseList, DatabaseQuery, DatabaseSort, DatabaseStore};
use crate::error::{Error, ErrorKind, ErrorReport, Result};
use crate::local_locks::ScopeLocks;
use crate::model::{Host, StoredHost, SyncScope, UpsertOutcome, Vendor};
use crate::run::{capped_failures, RunCounters, RunList, RunQuery, RunState, RunStore, SyncRun};
use crate::store::{HostList, HostQuery, HostSort, HostStore, MissingHost, ScopeLease, ScopeStats};

/// A [`HostStore`], [`DatabaseStore`] and [`RunStore`] in process memory: for tests, demos
/// and embedding where persistence is not needed. Everything the traits promise holds,
/// including per-record outcomes and scoped releases.
///
/// One store keeps every resource type, each in a table of its own (hosts, database
/// instances), so one `Arc<MemoryHostStore>` serves as every store a sync needs. Its
/// scope locks ([`HostStore::try_lock_scope`]) cover scopes of every resource type.
#[derive(Debug, Default)]
pub struct MemoryHostStore {
    inner: Mutex<Inner>,
    /// The scopes being synced: the store lives in this process, so its locks do too.
    locks: ScopeLocks,
}

#[derive(Debug, Default)]
struct Inner {
    hosts: Table<StoredHost>,
    databases: Table<StoredDatabase>,
    /// Sync runs by id.
    runs: BTreeMap<String, SyncRun>,
}

/// A stored record of one resource type, as [`Table`] keeps it: the record as seen
/// (`Item`) and its bookkeeping.
trait Record: Clone {
    /// The record as a provider lists it.
    type Item: Clone;

    /// Why a sync of `scope` may not store `item` (see [`SyncScope::check_host`]).
    fn check(scope: &SyncScope, item: &Self::Item) -> std::result::Result<(), String>;
    /// The key of `item`.
    fn key(item: &Self::Item) -> (Vendor, String);
    /// `item` as stored by a sync of `scope`: with the scope's secret.
    fn seen_by(scope: &SyncScope, item: &Self::Item) -> Self::Item;
    /// The content hash of `item`.
    fn hash(item: &Self::Item) -> String;
    /// An active record first and last seen at `seen_at`.
    fn first(item: Self::Item, hash: String, seen_at: DateTime<Utc>) -> Self;

    /// Seen again at `seen_at` as `item` (of content hash `hash`): active again.
    fn seen_again(&mut self, item: Self::Item, hash: String, seen_at: DateTime<Utc>);
    /// Marks it released at `at`.
    fn set_released(&mut self, at: DateTime<Utc>);
    /// The stored content hash.
    fn content_hash(&self) -> &str;
    /// When a sync last saw it.
    fn last_seen_at(&self) -> DateTime<Utc>;
    /// When it was released.
    fn released_at(&self) -> Option<DateTime<Utc>>;
    /// Whether it belongs to `scope`.
    fn in_scope(&self, scope: &SyncScope) -> bool;

    /// Whether it is an active record of `scope` last seen before `seen_before`.
    fn missing_from(&self, scope: &SyncScope, seen_before: DateTime<Utc>) -> bool {
        self.released_at().is_none() && self.last_seen_at() < seen_before && self.in_scope(scope)
    }
}

impl Record for StoredHost {
    type Item = Host;

    fn check(scope: &SyncScope, item: &Host) -> std::result::Result<(), String> {
        scope.check_host(item)
    }
    fn key(item: &Host) -> (Vendor, String) {
        (item.vendor, item.instance_id.clone())
    }
    fn seen_by(scope: &SyncScope, item: &Host) -> Host {
        let mut host = item.clone();
        host.secret_id.clone_from(&scope.secret_id);
        host
    }
    fn hash(item: &Host) -> String {
        item.content_hash()
    }
    fn first(item: Host, hash: String, seen_at: DateTime<Utc>) -> Self {
        StoredHost::new(item, hash, seen_at, seen_at)
    }
    fn seen_again(&mut self, item: Host, hash: String, seen_at: DateTime<Utc>) {
        self.host = item;
        self.content_hash = hash;
        self.last_seen_at = seen_at;
        self.released_at = None;
    }
    fn set_released(&mut self, at: DateTime<Utc>) {
        self.released_at = Some(at);
    }
    fn content_hash(&self) -> &str {
        &self.content_hash
    }
    fn last_seen_at(&self) -> DateTime<Utc> {
        self.last_seen_at
    }
    fn released_at(&self) -> Option<DateTime<Utc>> {
        self.released_at
    }
    fn in_scope(&self, scope: &SyncScope) -> bool {
        scope.contains(&self.host)
    }
}

impl Record for StoredDatabase {
    type Item = Database;

    fn check(scope: &SyncScope, item: &Database) -> std::result::Result<(), String> {
        scope.check_database(item)
    }
    fn key(item: &Database) -> (Vendor, String) {
        (item.vendor, item.instance_id.clone())
    }
    fn seen_by(scope: &SyncScope, item: &Database) -> Database {
        let mut database = item.clone();
        database.secret_id.clone_from(&scope.secret_id);
        database
    }
    fn hash(item: &Database) -> String {
        item.content_hash()
    }
    fn first(item: Database, hash: String, seen_at: DateTime<Utc>) -> Self {
        StoredDatabase::new(item, hash, seen_at, seen_at)
    }
    fn seen_again(&mut self, item: Database, hash: String, seen_at: DateTime<Utc>) {
        self.database = item;
        self.content_hash = hash;
        self.last_seen_at = seen_at;
        self.released_at = None;
    }
    fn set_released(&mut self, at: DateTime<Utc>) {
        self.released_at = Some(at);
    }
    fn content_hash(&self) -> &str {
        &self.content_hash
    }
    fn last_seen_at(&self) -> DateTime<Utc> {
        self.last_seen_at
    }
    fn released_at(&self) -> Option<DateTime<Utc>> {
        self.released_at
    }
    fn in_scope(&self, scope: &SyncScope) -> bool {
        scope.contains_database(&self.database)
    }
}

/// The records of one resource type and their miss marks: what the store traits'
/// upsert, scope, release and query methods do, once for every type.
#[derive(Debug)]
struct Table<R> {
    rows: BTreeMap<(Vendor, String), R>,
    /// When a complete run first missed a record (see [`HostStore::mark_missed`]).
    missed: BTreeMap<(Vendor, String), DateTime<Utc>>,
}

impl<R> Default for Table<R> {
    fn default() -> Self {
        Table {
            rows: BTreeMap::new(),
            missed: BTreeMap::new(),
        }
    }
}

impl<R: Record> Table<R> {
    fn upsert(
        &mut self,
        scope: &SyncScope,
        items: &[R::Item],
        seen_at: DateTime<Utc>,
    ) -> Vec<UpsertOutcome> {
        items
            .iter()
            .map(|item| {
                if let Err(reason) = R::check(scope, item) {
                    return UpsertOutcome::Failed(reason);
                }
                let item = R::seen_by(scope, item);
                let hash = R::hash(&item);
                let key = R::key(&item);
                self.missed.remove(&key);
                match self.rows.get_mut(&key) {
                    None => {
                        self.rows.insert(key, R::first(item, hash, seen_at));
                        UpsertOutcome::Created
                    }
                    Some(stored) => {
                        let unchanged =
                            stored.content_hash() == hash && stored.released_at().is_none();
                        stored.seen_again(item, hash, seen_at);
                        if unchanged {
                            UpsertOutcome::Unchanged
                        } else {
                            UpsertOutcome::Updated
                        }
                    }
                }
            })
            .collect()
    }

    fn scope_stats(&self, scope: &SyncScope, seen_before: DateTime<Utc>) -> ScopeStats {
        let mut stats = ScopeStats::default();
        for r in self
            .rows
            .values()
            .filter(|r| r.released_at().is_none() && r.in_scope(scope))
        {
            stats.active += 1;
            if r.last_seen_at() < seen_before {
                stats.missing += 1;
            }
        }
        stats
    }

    fn missing(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
    ) -> Vec<MissingHost> {
        let start = (scope.vendor, after.unwrap_or_default().to_owned());
        self.rows
            .range((Bound::Excluded(start), Bound::Unbounded))
            .take_while(|((vendor, _), _)| *vendor == scope.vendor)
            .filter(|(_, r)| r.missing_from(scope, seen_before))
            .take(limit as usize)
            .map(|(key, _)| MissingHost::new(key.1.clone(), self.missed.get(key).copied()))
            .collect()
    }

    fn release(
        &mut self,
        scope: &SyncScope,
        instance_ids: &[String],
        seen_before: DateTime<Utc>,
        released_at: DateTime<Utc>,
    ) -> u64 {
        let mut released = 0;
        for id in instance_ids {
            let key = (scope.vendor, id.clone());
            if let Some(r) = self
                .rows
                .get_mut(&key)
                .filter(|r| r.missing_from(scope, seen_before))
            {
                r.set_released(released_at);
                released += 1;
                self.missed.remove(&key);
            }
        }
        released
    }

    fn mark_missed(
        &mut self,
        scope: &SyncScope,
        instance_ids: &[String],
        missed_at: DateTime<Utc>,
    ) -> u64 {
        let mut marked = 0;
        for id in instance_ids {
            let key = (scope.vendor, id.clone());
            let eligible = self
                .rows
                .get(&key)
                .is_some_and(|r| r.missing_from(scope, missed_at));
            if eligible && !self.missed.contains_key(&key) {
                self.missed.insert(key, missed_at);
                marked += 1;
            }
        }
        marked
    }

    fn get(&self, vendor: Vendor, instance_id: &str) -> Option<R> {
        self.rows.get(&(vendor, instance_id.to_owned())).cloned()
    }

    /// The total of the records that `matches`, and page `offset / page_size` of them,
    /// in key order sorted further by `sort` (a stable sort: ties stay in key order).
    fn page(
        &self,
        matches: impl Fn(&R) -> bool,
        sort: impl FnOnce(&mut Vec<&R>),
        offset: u64,
        page_size: u32,
    ) -> (u64, Vec<R>) {
        let mut matched: Vec<&R> = self.rows.values().filter(|r| matches(r)).collect();
        sort(&mut matched);
        let total = matched.len() as u64;
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        let items = matched
            .into_iter()
            .skip(offset)
            .take(page_size as usize)
            .cloned()
            .collect();
        (total, items)
    }
}

impl MemoryHostStore {
    /// An empty store.
    pub fn new() -> MemoryHostStore {
        MemoryHostStore::default()
    }

    /// Number of hosts stored, released ones included.
    pub fn len(&self) -> usize {
        self.lock().hosts.rows.len()
    }

    /// Whether the store holds no host.
    pub fn is_empty(&self) -> bool {
        self.lock().hosts.rows.is_empty()
    }

    /// Number of database instances stored, released ones included.
    pub fn database_count(&self) -> usize {
        self.lock().databases.rows.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written entry (every write
        // is one insert), so a poisoned map is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl HostStore for MemoryHostStore {
    async fn upsert(
        &self,
        scope: &SyncScope,
        hosts: &[Host],
        seen_at: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>> {
        Ok(self.lock().hosts.upsert(scope, hosts, seen_at))
    }

    async fn scope_stats(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
    ) -> Result<ScopeStats> {
        Ok(self.lock().hosts.scope_stats(scope, seen_before))
    }

    async fn missing(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MissingHost>> {
        Ok(self.lock().hosts.missing(scope, seen_before, after, limit))
    }

    async fn release(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        seen_before: DateTime<Utc>,
        released_at: DateTime<Utc>,
    ) -> Result<u64> {
        Ok(self
            .lock()
            .hosts
            .release(scope, instance_ids, seen_before, released_at))
    }

    async fn mark_missed(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        missed_at: DateTime<Utc>,
    ) -> Result<u64> {
        Ok(self
            .lock()
            .hosts
            .mark_missed(scope, instance_ids, missed_at))
    }

    /// A lock within this process, where this store lives.
    async fn try_lock_scope(&self, scope: &SyncScope) -> Result<Option<ScopeLease>> {
        Ok(self.locks.try_lock(scope))
    }

    async fn is_scope_locked(&self, scope: &SyncScope) -> Result<Option<bool>> {
        Ok(Some(self.locks.is_held(scope)))
    }

    async fn get(&self, vendor: Vendor, instance_id: &str) -> Result<Option<StoredHost>> {
        Ok(self.lock().hosts.get(vendor, instance_id))
    }

    async fn query(&self, query: &HostQuery) -> Result<HostList> {
        query.validate()?;
        let sort = |matched: &mut Vec<&StoredHost>| match query.sort {
            // The map's key order is already (vendor, instance_id).
            HostSort::InstanceId => {}
            HostSort::Name => matched.sort_by(|a, b| a.host.name.cmp(&b.host.name)),
            HostSort::LastSeenDesc => matched.sort_by_key(|h| std::cmp::Reverse(h.last_seen_at)),
        };
        let (total, items) =
            self.lock()
                .hosts
                .page(|h| query.matches(h), sort, query.offset(), query.page_size);
        Ok(HostList::new(total, items))
    }
}

/// The same store as [`HostStore`]'s, in a table of its own.
#[async_trait]
impl DatabaseStore for MemoryHostStore {
    async fn upsert(
        &self,
        scope: &SyncScope,
        databases: &[Database],
        seen_at: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>> {
        Ok(self.lock().databases.upsert(scope, databases, seen_at))
    }

    async fn scope_stats(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
    ) -> Result<ScopeStats> {
        Ok(self.lock().databases.scope_stats(scope, seen_before))
    }

    async fn missing(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MissingHost>> {
        Ok(self
            .lock()
            .databases
            .missing(scope, seen_before, after, limit))
    }

    async fn release(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        seen_before: DateTime<Utc>,
        released_at: DateTime<Utc>,
    ) -> Result<u64> {
        Ok(self
            .lock()
            .databases
            .release(scope, instance_ids, seen_before, released_at))
    }

    async fn mark_missed(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        missed_at: DateTime<Utc>,
    ) -> Result<u64> {
        Ok(self
            .lock()
            .databases
            .mark_missed(scope, instance_ids, missed_at))
    }

    async fn get(&self, vendor: Vendor, instance_id: &str) -> Result<Option<StoredDatabase>> {
        Ok(self.lock().databases.get(vendor, instance_id))
    }

    async fn query(&self, query: &DatabaseQuery) -> Result<DatabaseList> {
        query.validate()?;
        let sort = |matched: &mut Vec<&StoredDatabase>| match query.sort {
            // The map's key order is already (vendor, instance_id).
            DatabaseSort::InstanceId => {}
            DatabaseSort::Name => {
                matched.sort_by(|a, b| a.database.name.cmp(&b.database.name));
            }
            DatabaseSort::LastSeenDesc => {
                matched.sort_by_key(|d| std::cmp::Reverse(d.last_seen_at));
            }
        };
        let (total, items) =
            self.lock()
                .databases
                .page(|d| query.matches(d), sort, query.offset(), query.page_size);
        Ok(DatabaseList::new(total, items))
    }
}

#[async_trait]
impl RunStore for MemoryHostStore {
    async fn insert_run(&self, run: &SyncRun) -> Result<()> {
        let mut inner = self.lock();
        if inner.runs.contains_key(&run.id) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("a run with id {:?} already exists", run.id),
            ));
        }
        let mut run = run.clone();
        run.failed_details = capped_failures(std::mem::take(&mut run.failed_details));
        inner.runs.insert(run.id.clone(), run);
        Ok(())
    }

    async fn update_run_progress(&self, id: &str, counters: &RunCounters) -> Result<bool> {
        let mut inner = self.lock();
        match inner.runs.get_mut(id) {
            Some(run) if run.state == RunState::Running => {
                run.counters = *counters;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn finish_run(&self, run: &SyncRun) -> Result<()> {
        let mut inner = self.lock();
        let stored = inner
            .runs
            .get_mut(&run.id)
            .ok_or_else(|| Error::not_found(format!("run {:?} not found", run.id)))?;
        stored.state = run.state;
        stored.counters = run.counters;
        stored.failed_details = capped_failures(run.failed_details.iter().cloned());
        stored.error.clone_from(&run.error);
        stored.finished_at = run.finished_at;
        Ok(())
    }

    async fn get_run(&self, id: &str) -> Result<Option<SyncRun>> {
        Ok(self.lock().runs.get(id).cloned())
    }

    async fn list_runs(&self, query: &RunQuery) -> Result<RunList> {
        query.validate()?;
        let inner = self.lock();
        let mut matched: Vec<&SyncRun> = inner.runs.values().filter(|r| query.matches(r)).collect();
        matched.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        let total = matched.len() as u64;
        let offset = usize::try_from(query.offset()).unwrap_or(usize::MAX);
        let items = matched
            .into_iter()
            .skip(offset)
            .take(query.page_size as usize)
            .cloned()
            .collect();
        Ok(RunList::new(total, items))
    }

    async fn mark_run_interrupted(
        &self,
        id: &str,
        error: &ErrorReport,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut inner = self.lock();
        match inner.runs.get_mut(id) {
            Some(run) if run.state == RunState::Running => {
                run.state = RunState::Interrupted;
                run.error = Some(error.clone());
                run.finished_at = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn prune_runs(&self, finished_before: DateTime<Utc>) -> Result<u64> {
        let mut inner = self.lock();
        let before = inner.runs.len();
        inner.runs.retain(|_, run| {
            !(run.state.is_finished() && run.finished_at.is_some_and(|t| t < finished_before))
        });
        Ok((before - inner.runs.len()) as u64)
    }
}
