//! A complete in-memory [`HostStore`] and [`RunStore`].

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{Error, ErrorKind, ErrorReport, Result};
use crate::local_locks::ScopeLocks;
use crate::model::{Host, StoredHost, SyncScope, UpsertOutcome, Vendor};
use crate::run::{capped_failures, RunCounters, RunList, RunQuery, RunState, RunStore, SyncRun};
use crate::store::{HostList, HostQuery, HostSort, HostStore, MissingHost, ScopeLease, ScopeStats};

/// A [`HostStore`] and [`RunStore`] in process memory: for tests, demos and embedding
/// where persistence is not needed. Everything the traits promise holds, including
/// per-host outcomes and scoped releases.
#[derive(Debug, Default)]
pub struct MemoryHostStore {
    inner: Mutex<Inner>,
    /// The scopes being synced: the store lives in this process, so its locks do too.
    locks: ScopeLocks,
}

#[derive(Debug, Default)]
struct Inner {
    hosts: BTreeMap<(Vendor, String), StoredHost>,
    /// When a complete run first missed a host (see [`HostStore::mark_missed`]).
    missed: BTreeMap<(Vendor, String), DateTime<Utc>>,
    /// Sync runs by id.
    runs: BTreeMap<String, SyncRun>,
}

impl MemoryHostStore {
    /// An empty store.
    pub fn new() -> MemoryHostStore {
        MemoryHostStore::default()
    }

    /// Number of hosts stored, released ones included.
    pub fn len(&self) -> usize {
        self.lock().hosts.len()
    }

    /// Whether the store holds no host.
    pub fn is_empty(&self) -> bool {
        self.lock().hosts.is_empty()
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
        let mut inner = self.lock();
        let Inner {
            hosts: map, missed, ..
        } = &mut *inner;
        let outcomes = hosts
            .iter()
            .map(|host| {
                if let Err(reason) = scope.check_host(host) {
                    return UpsertOutcome::Failed(reason);
                }
                let mut host = host.clone();
                host.secret_id.clone_from(&scope.secret_id);
                let hash = host.content_hash();
                let key = (host.vendor, host.instance_id.clone());
                missed.remove(&key);
                match map.get_mut(&key) {
                    None => {
                        map.insert(
                            key,
                            StoredHost {
                                host,
                                content_hash: hash,
                                first_seen_at: seen_at,
                                last_seen_at: seen_at,
                                released_at: None,
                            },
                        );
                        UpsertOutcome::Created
                    }
                    Some(stored) => {
                        let unchanged = stored.content_hash == hash && stored.released_at.is_none();
                        stored.host = host;
                        stored.content_hash = hash;
                        stored.last_seen_at = seen_at;
                        stored.released_at = None;
                        if unchanged {
                            UpsertOutcome::Unchanged
                        } else {
                            UpsertOutcome::Updated
                        }
                    }
                }
            })
            .collect();
        Ok(outcomes)
    }

    async fn scope_stats(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
    ) -> Result<ScopeStats> {
        let inner = self.lock();
        let mut stats = ScopeStats::default();
        for h in inner
            .hosts
            .values()
            .filter(|h| h.released_at.is_none() && scope.contains(&h.host))
        {
            stats.active += 1;
            if h.last_seen_at < seen_before {
                stats.missing += 1;
            }
        }
        Ok(stats)
    }

    async fn missing(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MissingHost>> {
        let inner = self.lock();
        let start = (scope.vendor, after.unwrap_or_default().to_owned());
        let range = inner
            .hosts
            .range((Bound::Excluded(start), Bound::Unbounded))
            .take_while(|((vendor, _), _)| *vendor == scope.vendor);
        Ok(range
            .filter(|(_, h)| {
                h.released_at.is_none() && h.last_seen_at < seen_before && scope.contains(&h.host)
            })
            .take(limit as usize)
            .map(|(key, h)| MissingHost {
                instance_id: h.host.instance_id.clone(),
                missed_at: inner.missed.get(key).copied(),
            })
            .collect())
    }

    async fn release(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        seen_before: DateTime<Utc>,
        released_at: DateTime<Utc>,
    ) -> Result<u64> {
        let mut inner = self.lock();
        let mut released = 0;
        for id in instance_ids {
            let key = (scope.vendor, id.clone());
            if let Some(h) = inner.hosts.get_mut(&key).filter(|h| {
                h.released_at.is_none() && h.last_seen_at < seen_before && scope.contains(&h.host)
            }) {
                h.released_at = Some(released_at);
                released += 1;
                inner.missed.remove(&key);
            }
        }
        Ok(released)
    }

    async fn mark_missed(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        missed_at: DateTime<Utc>,
    ) -> Result<u64> {
        let mut inner = self.lock();
        let Inner { hosts, missed, .. } = &mut *inner;
        let mut marked = 0;
        for id in instance_ids {
            let key = (scope.vendor, id.clone());
            let eligible = hosts.get(&key).is_some_and(|h| {
                h.released_at.is_none() && h.last_seen_at < missed_at && scope.contains(&h.host)
            });
            if eligible && !missed.contains_key(&key) {
                missed.insert(key, missed_at);
                marked += 1;
            }
        }
        Ok(marked)
    }

    /// A lock within this process, where this store lives.
    async fn try_lock_scope(&self, scope: &SyncScope) -> Result<Option<ScopeLease>> {
        Ok(self.locks.try_lock(scope))
    }

    async fn is_scope_locked(&self, scope: &SyncScope) -> Result<Option<bool>> {
        Ok(Some(self.locks.is_held(scope)))
    }

    async fn get(&self, vendor: Vendor, instance_id: &str) -> Result<Option<StoredHost>> {
        Ok(self
            .lock()
            .hosts
            .get(&(vendor, instance_id.to_owned()))
            .cloned())
    }

    async fn query(&self, query: &HostQuery) -> Result<HostList> {
        query.validate()?;
        let inner = self.lock();
        let mut matched: Vec<&StoredHost> =
            inner.hosts.values().filter(|h| query.matches(h)).collect();
        match query.sort {
            // The map's key order is already (vendor, instance_id).
            HostSort::InstanceId => {}
            HostSort::Name => matched.sort_by(|a, b| a.host.name.cmp(&b.host.name)),
            HostSort::LastSeenDesc => matched.sort_by_key(|h| std::cmp::Reverse(h.last_seen_at)),
        }
        let total = matched.len() as u64;
        let offset = usize::try_from(query.offset()).unwrap_or(usize::MAX);
        let items = matched
            .into_iter()
            .skip(offset)
            .take(query.page_size as usize)
            .cloned()
            .collect();
        Ok(HostList { total, items })
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
