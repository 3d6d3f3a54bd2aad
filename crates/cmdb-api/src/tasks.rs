//! Sync runs as tasks: started in the background, recorded in a [`RunStore`] so that every
//! replica sees them and they outlive a restart, with their live progress in the process
//! that runs them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use chrono::{Datelike, SubsecRound, Utc};
use tokio::sync::{oneshot, watch, Semaphore};

use cmdb_core::{
    ErrorKind, ErrorReport, HostStore, Result, RunCounters, RunList, RunQuery, RunState, RunStore,
    RunTrigger, SyncRun, SyncScope, MAX_PAGE_SIZE,
};
use cmdb_sync::{
    RegionObserver, SyncProgress, SyncRequest, SyncResponse, SyncState, SyncTrigger, Syncer,
    ALL_REGIONS,
};
use futures::future::BoxFuture;

use crate::error::redact_internal;

/// Syncs an API runs at once by default; more are answered 429.
pub const DEFAULT_MAX_RUNNING_SYNCS: usize = 16;

/// How long finished runs are kept by default: 30 days.
pub const DEFAULT_RUN_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// A running run's counters are written to the store after this many more pages...
const PROGRESS_EVERY_PAGES: u64 = 10;
/// ...or, when they changed, this long after the last write, whichever comes first.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How often finished runs are pruned and dead processes' runs looked for, after start.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

/// How a run that started ended, for the caller that waited: its whole answer, or the
/// error of a run that stored nothing (or was stopped).
pub type RunOutcome = std::result::Result<SyncResponse, ErrorReport>;

/// A run of this process, while it runs.
struct LiveTask {
    /// Its live counters.
    progress: watch::Receiver<SyncProgress>,
    /// Set once its end is in the store.
    done: watch::Sender<bool>,
}

/// The tasks of one API: the runs this process is running (their live progress, a way
/// to stop them), over the [`RunStore`] that keeps every run.
///
/// A run's record is written when it starts, then its counters at most every 10 pages or
/// 5 seconds, and its end. A `running` run of another process whose scope lock can be
/// taken ([`HostStore::try_lock_scope`]) has lost its process: reading it marks it
/// [`Interrupted`](RunState::Interrupted).
#[derive(Clone)]
pub struct TaskRegistry {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    runs: Arc<dyn RunStore>,
    /// Where the scope locks are: a run whose lock is free has no process.
    hosts: Arc<dyn HostStore>,
    live: Mutex<HashMap<String, Arc<LiveTask>>>,
    shutdown: watch::Sender<bool>,
    /// One permit per sync that may run at once.
    running: Arc<Semaphore>,
    max_running: usize,
    /// This process, as its runs name it.
    runner: String,
}

impl std::fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRegistry")
            .field("runs", &self.inner.runs)
            .field("live", &lock(&self.inner.live).len())
            .field("max_running", &self.inner.max_running)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections are single inserts and removes: a poisoned lock holds consistent
    // data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The error a run gets when its process is found gone.
fn interrupted_report() -> ErrorReport {
    ErrorReport::new(
        ErrorKind::Unavailable,
        "the process running this sync stopped before it ended (killed, crashed or \
         restarted): the hosts it stored are kept, nothing was released",
    )
}

/// The counters of `progress`, over those known already (`created`, `updated`,
/// `unchanged` and `released` are counted at the end of a run).
fn with_progress(mut counters: RunCounters, progress: &SyncProgress) -> RunCounters {
    counters.pages = progress.pages;
    counters.seen = progress.hosts_seen;
    counters.stored = progress.stored;
    counters.failed = progress.failed;
    counters.expected_total = progress.expected_total;
    counters
}

impl TaskRegistry {
    /// A registry keeping runs in `runs`, judging whether a run's process is alive by the
    /// scope locks of `hosts` (the host store the syncs write to), running at most
    /// `max_running` syncs at once (at least one).
    pub fn new(
        runs: Arc<dyn RunStore>,
        hosts: Arc<dyn HostStore>,
        max_running: usize,
    ) -> TaskRegistry {
        TaskRegistry::build(runs, hosts, max_running, default_runner())
    }

    /// This registry, naming its runs' process `runner` (default: the host name and
    /// process id, `host:pid`). Call it before any run starts: the registry is made
    /// anew, without the runs started before.
    pub fn with_runner(self, runner: impl Into<String>) -> TaskRegistry {
        let inner = &self.inner;
        TaskRegistry::build(
            Arc::clone(&inner.runs),
            Arc::clone(&inner.hosts),
            inner.max_running,
            runner.into(),
        )
    }

    fn build(
        runs: Arc<dyn RunStore>,
        hosts: Arc<dyn HostStore>,
        max_running: usize,
        runner: String,
    ) -> TaskRegistry {
        let max_running = max_running.max(1);
        TaskRegistry {
            inner: Arc::new(Inner {
                runs,
                hosts,
                live: Mutex::default(),
                shutdown: watch::channel(false).0,
                running: Arc::new(Semaphore::new(max_running)),
                max_running,
                runner,
            }),
        }
    }

    /// A weak handle, that does not keep the registry alive.
    pub(crate) fn downgrade(&self) -> Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    /// The registry of a weak handle, while it lives.
    pub(crate) fn upgrade(weak: &Weak<Inner>) -> Option<TaskRegistry> {
        weak.upgrade().map(|inner| TaskRegistry { inner })
    }

    /// Turns `true` when the registry shuts down.
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// The name of this process in its runs ([`SyncRun::runner`]).
    pub fn runner(&self) -> &str {
        &self.inner.runner
    }

    /// The store the runs are kept in.
    pub fn run_store(&self) -> &Arc<dyn RunStore> {
        &self.inner.runs
    }

    /// Checks and starts a sync in the background; its run as first stored. Errors found
    /// before the first vendor request (invalid request, unknown secret, region not
    /// allowed, scope already syncing, ...) are returned here and leave no run; with as
    /// many syncs running as the registry allows, the answer is
    /// [`RateLimited`](ErrorKind::RateLimited) at once (the API's 429).
    pub async fn start(&self, syncer: Arc<Syncer>, request: SyncRequest) -> Result<SyncRun> {
        self.spawn(syncer, request, RunTrigger::Api, None).await
    }

    /// Starts a sync as [`start`](Self::start) does, recorded as started by `trigger`;
    /// its outcome comes on the receiver once its end is stored (the receiver may be
    /// dropped).
    pub async fn start_with(
        &self,
        syncer: Arc<Syncer>,
        request: SyncRequest,
        trigger: RunTrigger,
    ) -> Result<(SyncRun, oneshot::Receiver<RunOutcome>)> {
        let (answer_tx, answer_rx) = oneshot::channel();
        let run = self
            .spawn(syncer, request, trigger, Some(answer_tx))
            .await?;
        Ok((run, answer_rx))
    }

    /// Runs a sync as a task, as [`start`](Self::start) does, and waits for its end
    /// (recorded in the store by then): the whole answer, with every detail the request
    /// asked for. Only this caller gets those (the stored run keeps counters and failed
    /// details); if the caller goes away, the run goes on.
    pub async fn run(&self, syncer: Arc<Syncer>, request: SyncRequest) -> Result<RunOutcome> {
        let (answer_tx, answer_rx) = oneshot::channel();
        self.spawn(syncer, request, RunTrigger::Api, Some(answer_tx))
            .await?;
        answer_rx.await.map_err(|_| {
            cmdb_core::Error::new(
                ErrorKind::Unavailable,
                "the sync task ended without an answer",
            )
        })
    }

    /// Starts a sync as a task; its end goes to `answer_tx` when one is given.
    async fn spawn(
        &self,
        syncer: Arc<Syncer>,
        request: SyncRequest,
        trigger: RunTrigger,
        answer_tx: Option<oneshot::Sender<RunOutcome>>,
    ) -> Result<SyncRun> {
        let permit = Arc::clone(&self.inner.running)
            .try_acquire_owned()
            .map_err(|_| {
                cmdb_core::Error::new(
                    ErrorKind::RateLimited,
                    format!(
                        "{} syncs are running, the most this server runs at once; retry later",
                        self.inner.max_running
                    ),
                )
            })?;
        let (ready_tx, ready_rx) = oneshot::channel::<Result<SyncRun>>();
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let (progress_tx, progress_rx) = watch::channel(SyncProgress::default());
            // Checks, then takes the scope's locks: held until the run ends.
            let sync_trigger = sync_trigger(trigger);
            let id = uuid::Uuid::new_v4().to_string();
            let parent = Parent {
                inner: Arc::clone(&inner),
                id: id.clone(),
                trigger,
            };
            let prepared = prepare(&syncer, request, sync_trigger, progress_tx.clone(), parent);
            let (scope, sync) = match prepared.await {
                Ok(prepared) => prepared,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let now = Utc::now().trunc_subsecs(6);
            let run = SyncRun::new(id.clone(), &scope, trigger, now)
                .with_state(RunState::Running)
                .with_started_at(Some(now))
                .with_runner(Some(inner.runner.clone()));
            let task = Arc::new(LiveTask {
                progress: progress_rx.clone(),
                done: watch::channel(false).0,
            });
            // Live here before it is in the store: this process never takes it for a
            // dead one's.
            lock(&inner.live).insert(id.clone(), Arc::clone(&task));
            if let Err(e) = inner.runs.insert_run(&run).await {
                lock(&inner.live).remove(&id);
                let _ = ready_tx.send(Err(e.context("recording the run")));
                return;
            }
            if ready_tx.send(Ok(run.clone())).is_err() {
                // Nobody waits for the answer; the run still goes on.
                tracing::debug!(task = %id, "sync started for a caller that left");
            }

            let mut shutdown = inner.shutdown.subscribe();
            let writer = write_progress(Arc::clone(&inner.runs), id.clone(), progress_rx);
            // `None`: stopped by the shutdown. `held`: the scope's locks, kept until the
            // end is stored, so that no other process takes the run for a dead one's.
            let (outcome, held) = if *shutdown.borrow() {
                (None, None)
            } else {
                tokio::select! {
                    (r, held) = sync => (Some(r.map_err(|e| ErrorReport::from(&e))), Some(held)),
                    _ = shutdown.changed() => (None, None),
                    never = writer => match never {},
                }
            };
            let progress = progress_tx.borrow().clone();
            let (end, outcome) = ended(run, &progress, outcome);
            // The slot is free before anyone can see the run finished.
            drop(permit);
            if let Err(e) = inner.runs.finish_run(&end).await {
                // The run stays `running` in the store until its lock is found free.
                tracing::error!(task = %end.id, error = %e, "cannot record the end of a sync run");
            }
            drop(held);
            lock(&inner.live).remove(&end.id);
            task.done.send_replace(true);
            if let Some(tx) = answer_tx {
                // Dropped with the answer when the caller has gone.
                let _ = tx.send(outcome);
            }
        });
        match ready_rx.await {
            Ok(result) => result,
            Err(_) => Err(cmdb_core::Error::new(
                ErrorKind::Unavailable,
                "the sync task ended before it started",
            )),
        }
    }

    /// The run `id` as it is now (`None` if there is none): its live counters when this
    /// process runs it. A `running` run of a process that is gone is marked interrupted
    /// first.
    pub async fn get(&self, id: &str) -> Result<Option<SyncRun>> {
        let Some(run) = self.inner.runs.get_run(id).await? else {
            return Ok(None);
        };
        Ok(Some(self.current(run).await?))
    }

    /// A page of runs, most recent first, as [`get`](Self::get) shows each.
    pub async fn list(&self, query: &RunQuery) -> Result<RunList> {
        let mut list = self.inner.runs.list_runs(query).await?;
        for run in &mut list.items {
            *run = self.current(run.clone()).await?;
        }
        Ok(list)
    }

    /// The runs of `secret_id` that are running (here or in another process), after
    /// marking those whose process is gone interrupted.
    pub async fn active(&self, secret_id: &str) -> Result<Vec<SyncRun>> {
        let running = self
            .running(RunQuery::default().with_secret_id(secret_id))
            .await?;
        let mut active = Vec::new();
        for run in running {
            let run = self.current(run).await?;
            if run.state == RunState::Running {
                active.push(run);
            }
        }
        Ok(active)
    }

    /// Marks interrupted every `running` run whose process is gone (not this one, and
    /// its scope lock is free); how many. Run when a server starts, and periodically.
    pub async fn mark_interrupted(&self) -> Result<u64> {
        let mut marked = 0;
        for run in self.running(RunQuery::default()).await? {
            if self.current(run).await?.state == RunState::Interrupted {
                marked += 1;
            }
        }
        Ok(marked)
    }

    /// Deletes the finished runs that ended more than `retention` ago; how many.
    pub async fn prune(&self, retention: Duration) -> Result<u64> {
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        // The stores keep the years 1000 to 9999: nothing ended before.
        match Utc::now()
            .checked_sub_signed(retention)
            .filter(|t| t.year() >= 1000)
        {
            Some(before) => self.inner.runs.prune_runs(before).await,
            None => Ok(0),
        }
    }

    /// Every `running` run matching `query` (all pages).
    async fn running(&self, query: RunQuery) -> Result<Vec<SyncRun>> {
        let mut query = query
            .with_state(RunState::Running)
            .with_page_size(MAX_PAGE_SIZE);
        let mut all = Vec::new();
        loop {
            let page = self.inner.runs.list_runs(&query).await?;
            let last = page.items.len() < MAX_PAGE_SIZE as usize;
            all.extend(page.items);
            if last {
                return Ok(all);
            }
            query.page_number += 1;
        }
    }

    /// `run` as it is now: with its live counters when this process runs it; marked
    /// interrupted when it is `running` in the store but its scope lock is free.
    async fn current(&self, mut run: SyncRun) -> Result<SyncRun> {
        let live = lock(&self.inner.live).get(&run.id).cloned();
        if let Some(task) = live {
            if run.state == RunState::Running {
                run.counters = with_progress(run.counters, &task.progress.borrow());
            }
            return Ok(run);
        }
        if run.state != RunState::Running {
            return Ok(run);
        }
        // Held: a live process runs it (which keeps the lock until its end is stored).
        // Free: nobody does. Asked without taking the lock where the store can tell;
        // else taken and let go at once.
        let scope = run.scope();
        let held = match self.inner.hosts.is_scope_locked(&scope).await? {
            Some(held) => held,
            None => self.inner.hosts.try_lock_scope(&scope).await?.is_none(),
        };
        if held {
            return Ok(run);
        }
        let report = interrupted_report();
        let at = Utc::now().trunc_subsecs(6);
        if self
            .inner
            .runs
            .mark_run_interrupted(&run.id, &report, at)
            .await?
        {
            tracing::warn!(task = %run.id, scope = %run.scope(), "marked a sync run whose process is gone interrupted");
        }
        // Marked here, or ended meanwhile: the store says which.
        Ok(self.inner.runs.get_run(&run.id).await?.unwrap_or(run))
    }

    /// Stops every running task at its next page boundary (their runs are recorded as
    /// interrupted by the shutdown) and waits until their ends are stored. Tasks started
    /// afterwards stop at once.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let running: Vec<Arc<LiveTask>> = lock(&self.inner.live).values().cloned().collect();
        for task in running {
            let mut done = task.done.subscribe();
            let _ = done.wait_for(|d| *d).await;
        }
    }

    /// Marks the runs of dead processes interrupted and prunes finished runs older than
    /// `retention`, now and then every hour until [`shutdown`](Self::shutdown) (or until
    /// the registry is dropped).
    pub async fn start_maintenance(&self, retention: Duration) -> Result<()> {
        self.maintain(retention).await?;
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let mut shutdown = self.inner.shutdown.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(MAINTENANCE_EVERY) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
                let Some(inner) = weak.upgrade() else { return };
                let registry = TaskRegistry { inner };
                if let Err(e) = registry.maintain(retention).await {
                    tracing::warn!(error = %e, "sync run maintenance failed; trying again later");
                }
            }
        });
        Ok(())
    }

    async fn maintain(&self, retention: Duration) -> Result<()> {
        let marked = self.mark_interrupted().await?;
        let pruned = self.prune(retention).await?;
        tracing::info!(
            interrupted = marked,
            pruned,
            "sync runs: dead processes' runs marked, old ones pruned"
        );
        Ok(())
    }
}

/// Writes the counters of the run `id` to the store as they move: at most every
/// [`PROGRESS_EVERY_PAGES`] pages or [`PROGRESS_EVERY`], whichever comes first. Never
/// ends: the task drops it with the run.
async fn write_progress(
    runs: Arc<dyn RunStore>,
    id: String,
    mut progress: watch::Receiver<SyncProgress>,
) -> Infallible {
    let mut written_pages = 0;
    let mut written_at = tokio::time::Instant::now();
    let mut counters = RunCounters::new();
    loop {
        if progress.changed().await.is_err() {
            return std::future::pending().await;
        }
        let now = progress.borrow_and_update().clone();
        if now.pages < written_pages + PROGRESS_EVERY_PAGES && written_at.elapsed() < PROGRESS_EVERY
        {
            continue;
        }
        counters = with_progress(counters, &now);
        if let Err(e) = runs.update_run_progress(&id, &counters).await {
            tracing::warn!(task = %id, error = %e, "cannot record the progress of a sync run");
        }
        written_pages = now.pages;
        written_at = tokio::time::Instant::now();
    }
}

/// The end of `run` as the store keeps it (counters, failed details, the error with a
/// store's or server's own text kept to the log), and the outcome for a waiting caller.
///
/// `outcome` is `None` for a run the server's shutdown stopped at a page boundary.
fn ended(
    run: SyncRun,
    progress: &SyncProgress,
    outcome: Option<RunOutcome>,
) -> (SyncRun, RunOutcome) {
    let at = Some(Utc::now().trunc_subsecs(6));
    let counters = with_progress(run.counters, progress);
    match outcome {
        None => {
            let error = stopped(progress);
            let end = run
                .with_state(RunState::Interrupted)
                .with_counters(counters)
                .with_error(Some(error.clone()))
                .with_finished_at(at);
            (end, Err(error))
        }
        Some(Ok(mut response)) => {
            if let Some(error) = &mut response.error {
                redact_internal(error);
            }
            let mut counters = counters;
            counters.stored = response.total_succeed;
            counters.failed = response.total_failed;
            counters.created = response.created;
            counters.updated = response.updated;
            counters.unchanged = response.unchanged;
            counters.released = response.released;
            counters.pages = response.pages;
            let state =
                if response.complete && response.total_failed == 0 && response.error.is_none() {
                    RunState::Succeeded
                } else {
                    RunState::Partial
                };
            let end = run
                .with_state(state)
                .with_counters(counters)
                .with_failed_details(response.details.iter().cloned())
                .with_error(response.error.clone())
                .with_finished_at(at);
            (end, Ok(response))
        }
        Some(Err(mut error)) => {
            redact_internal(&mut error);
            let end = run
                .with_state(RunState::Failed)
                .with_counters(counters)
                .with_error(Some(error.clone()))
                .with_finished_at(at);
            (end, Err(error))
        }
    }
}

/// The task a whole-account sync's region runs belong to.
struct Parent {
    inner: Arc<Inner>,
    id: String,
    trigger: RunTrigger,
}

/// The region runs of one whole-account task, each recorded as a run of its own (its
/// `parent_id` the task's id) as it starts and ends, with its live counters; the task's
/// counters are their sum.
struct RegionRuns {
    shared: Arc<RegionRunsShared>,
}

struct RegionRunsShared {
    parent: Parent,
    /// The parent task's live counters.
    progress: watch::Sender<SyncProgress>,
    /// The regions running, by region.
    regions: Mutex<HashMap<String, RegionRun>>,
    /// Every region's latest counters, by region, summed into the parent's.
    sums: Mutex<HashMap<String, SyncProgress>>,
}

/// A region's run while it runs.
struct RegionRun {
    run: SyncRun,
    progress: watch::Receiver<SyncProgress>,
    task: Arc<LiveTask>,
    /// Its progress writer and the task summing it into the parent's; stopped at its end.
    helpers: [tokio::task::JoinHandle<()>; 2],
}

impl RegionRunsShared {
    /// Takes `progress` as `region`'s latest and publishes the parent's sum.
    fn add(&self, region: &str, progress: SyncProgress) {
        let mut sums = lock(&self.sums);
        sums.insert(region.to_owned(), progress);
        let mut total = SyncProgress::default();
        total.state = SyncState::Running;
        for p in sums.values() {
            total.pages += p.pages;
            total.hosts_seen += p.hosts_seen;
            total.stored += p.stored;
            total.failed += p.failed;
            if let Some(n) = p.expected_total {
                total.expected_total = Some(total.expected_total.unwrap_or(0) + n);
            }
        }
        self.progress.send_replace(total);
    }

    /// A region run that starts: recorded, live here, its counters written as they move.
    async fn start(self: Arc<Self>, scope: SyncScope) -> Option<watch::Sender<SyncProgress>> {
        let inner = &self.parent.inner;
        let now = Utc::now().trunc_subsecs(6);
        let run = SyncRun::new(
            uuid::Uuid::new_v4().to_string(),
            &scope,
            self.parent.trigger,
            now,
        )
        .with_state(RunState::Running)
        .with_started_at(Some(now))
        .with_runner(Some(inner.runner.clone()))
        .with_parent_id(Some(self.parent.id.clone()));
        let (tx, rx) = watch::channel(SyncProgress::default());
        let task = Arc::new(LiveTask {
            progress: rx.clone(),
            done: watch::channel(false).0,
        });
        lock(&inner.live).insert(run.id.clone(), Arc::clone(&task));
        if let Err(e) = inner.runs.insert_run(&run).await {
            lock(&inner.live).remove(&run.id);
            tracing::warn!(task = %self.parent.id, region = %scope.region, error = %e,
                "cannot record a region's run; its task's counters still count it");
            return None;
        }
        let writer = {
            let (runs, id, rx) = (Arc::clone(&inner.runs), run.id.clone(), rx.clone());
            tokio::spawn(async move { match write_progress(runs, id, rx).await {} })
        };
        let summer = {
            // Weak: a region's helpers must not keep its whole-account run alive.
            let (shared, region, mut rx) =
                (Arc::downgrade(&self), scope.region.clone(), rx.clone());
            tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let now = rx.borrow_and_update().clone();
                    let Some(shared) = shared.upgrade() else {
                        return;
                    };
                    shared.add(&region, now);
                }
            })
        };
        lock(&self.regions).insert(
            scope.region.clone(),
            RegionRun {
                run,
                progress: rx,
                task,
                helpers: [writer, summer],
            },
        );
        Some(tx)
    }

    /// A region run that ended (or never started: recorded failed).
    async fn end(self: Arc<Self>, scope: SyncScope, outcome: RunOutcome) {
        let inner = &self.parent.inner;
        let Some(region) = lock(&self.regions).remove(&scope.region) else {
            let now = Utc::now().trunc_subsecs(6);
            let run = SyncRun::new(
                uuid::Uuid::new_v4().to_string(),
                &scope,
                self.parent.trigger,
                now,
            )
            .with_runner(Some(inner.runner.clone()))
            .with_parent_id(Some(self.parent.id.clone()));
            let (end, _) = ended(run, &SyncProgress::default(), Some(outcome));
            if let Err(e) = inner.runs.insert_run(&end).await {
                tracing::warn!(task = %self.parent.id, region = %scope.region, error = %e,
                    "cannot record a region that did not start");
            }
            return;
        };
        for helper in &region.helpers {
            helper.abort();
        }
        let progress = region.progress.borrow().clone();
        self.add(&scope.region, progress.clone());
        let (end, _) = ended(region.run, &progress, Some(outcome));
        if let Err(e) = inner.runs.finish_run(&end).await {
            tracing::error!(task = %end.id, error = %e, "cannot record the end of a region's run");
        }
        lock(&inner.live).remove(&end.id);
        region.task.done.send_replace(true);
    }
}

impl Drop for RegionRunsShared {
    /// Regions still running when the whole-account run is dropped (the server shuts
    /// down) were stopped at a page boundary: recorded so.
    fn drop(&mut self) {
        let stopped: Vec<RegionRun> = lock(&self.regions).drain().map(|(_, r)| r).collect();
        if stopped.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = Arc::clone(&self.parent.inner);
        runtime.spawn(async move {
            for region in stopped {
                for helper in &region.helpers {
                    helper.abort();
                }
                let progress = region.progress.borrow().clone();
                let (end, _) = ended(region.run, &progress, None);
                if let Err(e) = inner.runs.finish_run(&end).await {
                    tracing::error!(task = %end.id, error = %e, "cannot record the end of a region's run");
                }
                lock(&inner.live).remove(&end.id);
                region.task.done.send_replace(true);
            }
        });
    }
}

impl RegionObserver for RegionRuns {
    fn started(
        &self,
        scope: &SyncScope,
    ) -> BoxFuture<'static, Option<watch::Sender<SyncProgress>>> {
        Box::pin(Arc::clone(&self.shared).start(scope.clone()))
    }

    fn ended(&self, scope: &SyncScope, result: &Result<SyncResponse>) -> BoxFuture<'static, ()> {
        let outcome = match result {
            Ok(response) => Ok(response.clone()),
            Err(e) => Err(ErrorReport::from(e)),
        };
        Box::pin(Arc::clone(&self.shared).end(scope.clone(), outcome))
    }

    fn trigger(&self) -> SyncTrigger {
        sync_trigger(self.shared.parent.trigger)
    }
}

/// The metrics label of what started a task.
fn sync_trigger(trigger: RunTrigger) -> SyncTrigger {
    match trigger {
        RunTrigger::Schedule => SyncTrigger::Schedule,
        _ => SyncTrigger::Api,
    }
}

/// A run's answer, and its scope's locks, to drop once its end is stored.
type Held = (Result<SyncResponse>, Box<dyn std::any::Any + Send>);

/// The scope a task records and its run, its locks taken: one region through
/// [`Syncer::prepare`], or, for `"*"` (or no region, for a vendor with regions), every
/// region of the account through [`Syncer::sync_all`], under a lock on the account's
/// `"*"` scope, so that one whole-account sync of a secret runs at a time and other
/// replicas see it alive.
async fn prepare(
    syncer: &Arc<Syncer>,
    mut request: SyncRequest,
    trigger: SyncTrigger,
    progress: watch::Sender<SyncProgress>,
    parent: Parent,
) -> Result<(SyncScope, BoxFuture<'static, Held>)> {
    request.validate()?;
    // A region named: that region. No region: the whole account, but for vSphere, whose
    // one scope is its vCenter.
    let secret = if request.is_all_regions() || request.region.is_empty() {
        Some(secret_of(syncer, &request).await?)
    } else {
        None
    };
    let secret = match secret {
        Some(s) if request.is_all_regions() || s.vendor.requires_region() => s,
        _ => {
            let prepared = syncer.prepare(request).await?;
            let scope = prepared.scope().clone();
            let run = prepared
                .with_progress(progress)
                .with_trigger(trigger)
                .run_holding_locks();
            let run = async move {
                let (result, held) = run.await;
                (result, Box::new(held) as Box<dyn std::any::Any + Send>)
            };
            return Ok((scope, Box::pin(run)));
        }
    };
    request.region = ALL_REGIONS.to_owned();
    let scope = SyncScope::new(
        secret.id.clone(),
        secret.vendor,
        ALL_REGIONS,
        request.resource_type,
    );
    let lease = syncer
        .host_store()
        .try_lock_scope(&scope)
        .await?
        .ok_or_else(|| {
            cmdb_core::Error::new(
                ErrorKind::Conflict,
                format!(
                    "a sync of every region of secret {} is already running",
                    secret.id
                ),
            )
        })?;
    let mut running = SyncProgress::default();
    running.state = SyncState::Running;
    progress.send_replace(running);
    let syncer = Arc::clone(syncer);
    let regions = RegionRuns {
        shared: Arc::new(RegionRunsShared {
            parent,
            progress,
            regions: Mutex::default(),
            sums: Mutex::default(),
        }),
    };
    let run = async move {
        let result = syncer.sync_all_observed(request, Arc::new(regions)).await;
        (result, Box::new(lease) as Box<dyn std::any::Any + Send>)
    };
    Ok((scope, Box::pin(run)))
}

/// This process as its runs name it: `host:pid`, the host name from `HOSTNAME` or
/// the kernel's.
fn default_runner() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// The secret a request names.
async fn secret_of(syncer: &Syncer, request: &SyncRequest) -> Result<cmdb_secret::Secret> {
    let secrets = syncer.secret_store().ok_or_else(|| {
        cmdb_core::Error::new(ErrorKind::InvalidInput, "the syncer has no secret store")
    })?;
    secrets.get(&request.secret_id).await
}

/// The error of a run stopped by shutdown: whatever it stored stays, nothing was
/// released.
fn stopped(p: &SyncProgress) -> ErrorReport {
    ErrorReport::new(
        ErrorKind::Unavailable,
        format!(
            "stopped by server shutdown at a page boundary after {} pages ({} hosts stored); \
             nothing was released",
            p.pages, p.stored
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmdb_core::{MemoryHostStore, SyncScope, Vendor};

    /// Lets the writer task take what was sent.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn progress_is_written_every_ten_pages_or_five_seconds() {
        let runs = Arc::new(MemoryHostStore::new());
        let scope = SyncScope::hosts("s", Vendor::Aliyun, "cn-hangzhou");
        let run = SyncRun::new("r", &scope, RunTrigger::Api, Utc::now().trunc_subsecs(6))
            .with_state(RunState::Running);
        runs.insert_run(&run).await.unwrap();
        let (tx, rx) = watch::channel(SyncProgress::default());
        let writer = tokio::spawn(write_progress(runs.clone(), "r".into(), rx));
        let stored = || async { runs.get_run("r").await.unwrap().unwrap().counters.pages };
        let send = |pages: u64| {
            let mut p = SyncProgress::default();
            p.pages = pages;
            p.stored = pages * 100;
            tx.send_replace(p);
        };

        for pages in 1..=25 {
            send(pages);
            settle().await;
            let expected = match pages {
                0..=9 => 0,
                10..=19 => 10,
                _ => 20,
            };
            assert_eq!(stored().await, expected, "after page {pages}");
        }
        // Five seconds on, the next change is written whatever its pages.
        tokio::time::advance(PROGRESS_EVERY).await;
        send(26);
        settle().await;
        assert_eq!(stored().await, 26);
        let written = runs.get_run("r").await.unwrap().unwrap().counters;
        assert_eq!(written.stored, 2600);
        // Nothing changes: nothing is written, however long it takes.
        tokio::time::advance(PROGRESS_EVERY * 10).await;
        settle().await;
        assert_eq!(stored().await, 26);
        writer.abort();
    }
}
