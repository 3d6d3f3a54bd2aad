//! Sync runs as tasks: started in the background, watched while they go, kept when done.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{oneshot, watch, Semaphore};

use cmdb_core::{ErrorKind, Result, Vendor};
use cmdb_sync::{
    ErrorReport, SyncProgress, SyncRequest, SyncResponse, SyncState, SyncTrigger, Syncer,
};

use crate::error::redact_internal;

/// A task as `GET /tasks/:id` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    /// The task id.
    pub id: String,
    /// The secret synced.
    pub secret_id: String,
    /// The secret's vendor.
    pub vendor: Vendor,
    /// The region synced (vSphere: the vCenter host).
    pub region: String,
    /// pending, running, succeeded, partial or failed.
    pub state: SyncState,
    /// Live counters.
    pub progress: SyncProgress,
    /// The answer of the run, once it ended with one.
    pub result: Option<SyncResponse>,
    /// The error of a run that failed before storing anything, or was stopped.
    pub error: Option<ErrorReport>,
    /// When the task was started.
    pub created_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// How a run ended: its answer, or the error of a run that stored nothing.
type Outcome = std::result::Result<SyncResponse, ErrorReport>;

struct Task {
    id: String,
    secret_id: String,
    vendor: Vendor,
    region: String,
    created_at: DateTime<Utc>,
    progress: watch::Receiver<SyncProgress>,
    outcome: Mutex<Option<(Outcome, DateTime<Utc>)>>,
    done: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections are single assignments: a poisoned lock holds consistent data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Task {
    fn view(&self) -> TaskView {
        let progress = self.progress.borrow().clone();
        let outcome = lock(&self.outcome);
        let (result, error, finished_at) = match &*outcome {
            None => (None, None, None),
            Some((Ok(r), at)) => (Some(r.clone()), None, Some(*at)),
            Some((Err(e), at)) => (None, Some(e.clone()), Some(*at)),
        };
        TaskView {
            id: self.id.clone(),
            secret_id: self.secret_id.clone(),
            vendor: self.vendor,
            region: self.region.clone(),
            state: progress.state,
            progress,
            result,
            error,
            created_at: self.created_at,
            finished_at,
        }
    }

    fn is_done(&self) -> bool {
        *self.done.borrow()
    }
}

/// The tasks of one API: running ones, and the most recent finished ones.
#[derive(Clone)]
pub struct TaskRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    tasks: Mutex<VecDeque<Arc<Task>>>,
    keep_finished: usize,
    shutdown: watch::Sender<bool>,
    /// One permit per sync that may run at once.
    running: Arc<Semaphore>,
    max_running: usize,
}

/// Syncs an API runs at once by default; more are answered 429.
pub const DEFAULT_MAX_RUNNING_SYNCS: usize = 16;

impl std::fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRegistry")
            .field("tasks", &lock(&self.inner.tasks).len())
            .field("keep_finished", &self.inner.keep_finished)
            .field("max_running", &self.inner.max_running)
            .finish()
    }
}

impl TaskRegistry {
    /// A registry that keeps the `keep_finished` most recent finished tasks and runs at
    /// most [`DEFAULT_MAX_RUNNING_SYNCS`] at once.
    pub fn new(keep_finished: usize) -> TaskRegistry {
        TaskRegistry::with_limits(keep_finished, DEFAULT_MAX_RUNNING_SYNCS)
    }

    /// A registry that keeps the `keep_finished` most recent finished tasks and runs at
    /// most `max_running` syncs at once (at least one).
    pub fn with_limits(keep_finished: usize, max_running: usize) -> TaskRegistry {
        let max_running = max_running.max(1);
        TaskRegistry {
            inner: Arc::new(Inner {
                tasks: Mutex::default(),
                keep_finished,
                shutdown: watch::channel(false).0,
                running: Arc::new(Semaphore::new(max_running)),
                max_running,
            }),
        }
    }

    /// Checks and starts a sync in the background; its task id. Errors found before the
    /// first vendor request (invalid request, unknown secret, region not allowed, scope
    /// already syncing, ...) are returned here; afterwards the task's view tells. With as
    /// many syncs running as the registry allows, the answer is
    /// [`RateLimited`](ErrorKind::RateLimited) at once (the API's 429).
    ///
    /// The finished task keeps its counters and failed details only.
    pub async fn start(&self, syncer: Arc<Syncer>, request: SyncRequest) -> Result<String> {
        Ok(self.spawn(syncer, request, None).await?.id.clone())
    }

    /// Runs a sync as a task, as [`start`](Self::start) does, and waits for its end: its
    /// view, whose result holds every detail the request asked for. Only this caller gets
    /// those: the task keeps counters and failed details, and if the caller goes away
    /// before the end, the run goes on and its successes are dropped with the answer.
    pub async fn run(&self, syncer: Arc<Syncer>, request: SyncRequest) -> Result<TaskView> {
        let (answer_tx, answer_rx) = oneshot::channel();
        let task = self.spawn(syncer, request, Some(answer_tx)).await?;
        // No answer (the run failed or was stopped): the view holds the error.
        let answer = answer_rx.await.ok();
        let mut done = task.done.subscribe();
        let _ = done.wait_for(|d| *d).await;
        let mut view = task.view();
        if answer.is_some() {
            view.result = answer;
        }
        Ok(view)
    }

    /// Starts a sync as a task; the whole answer goes to `answer_tx` when one is given.
    async fn spawn(
        &self,
        syncer: Arc<Syncer>,
        request: SyncRequest,
        answer_tx: Option<oneshot::Sender<SyncResponse>>,
    ) -> Result<Arc<Task>> {
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
        let id = uuid::Uuid::new_v4().to_string();
        let (progress_tx, progress_rx) = watch::channel(SyncProgress::default());
        let (ready_tx, ready_rx) = oneshot::channel();
        let mut shutdown = self.inner.shutdown.subscribe();
        let secret_id = request.secret_id.clone();
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let prepared = match syncer.prepare(request).await {
                Ok(p) => p,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let scope = prepared.scope().clone();
            let task = Arc::new(Task {
                id,
                secret_id,
                vendor: scope.vendor,
                region: scope.region.clone(),
                created_at: Utc::now(),
                progress: progress_rx,
                outcome: Mutex::new(None),
                done: watch::channel(false).0,
            });
            inner.insert(Arc::clone(&task));
            if ready_tx.send(Ok(Arc::clone(&task))).is_err() {
                // Nobody waits for the answer; the run still goes on.
                tracing::debug!(task = %task.id, "sync started for a caller that left");
            }
            let run = prepared
                .with_progress(progress_tx.clone())
                .with_trigger(SyncTrigger::Api)
                .run();
            let outcome = if *shutdown.borrow() {
                Err(stopped(&progress_tx))
            } else {
                tokio::select! {
                    r = run => r.map_err(|e| ErrorReport::from(&e)),
                    _ = shutdown.changed() => Err(stopped(&progress_tx)),
                }
            };
            let (kept, answer) = match outcome {
                Ok(mut response) => {
                    if let Some(error) = &mut response.error {
                        redact_internal(error);
                    }
                    (Ok(lean(&mut response)), Some(response))
                }
                Err(mut error) => {
                    redact_internal(&mut error);
                    (Err(error), None)
                }
            };
            // The slot is free before anyone can see the task finished.
            drop(permit);
            *lock(&task.outcome) = Some((kept, Utc::now()));
            task.done.send_replace(true);
            if let (Some(tx), Some(answer)) = (answer_tx, answer) {
                // Dropped with the answer when the caller has gone.
                let _ = tx.send(answer);
            }
        });
        match ready_rx.await {
            Ok(Ok(task)) => Ok(task),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(cmdb_core::Error::new(
                ErrorKind::Unavailable,
                "the sync task ended before it started",
            )),
        }
    }

    /// The task `id`, as it is now.
    pub fn get(&self, id: &str) -> Option<TaskView> {
        self.inner.find(id).map(|t| t.view())
    }

    /// The tasks, most recent first, of one secret or of all: `page_size` of them from
    /// page `page_number` (from 1), and how many there are in all.
    pub fn list(
        &self,
        secret_id: Option<&str>,
        page_size: usize,
        page_number: usize,
    ) -> (Vec<TaskView>, u64) {
        let tasks = lock(&self.inner.tasks);
        let matching = || {
            tasks
                .iter()
                .rev()
                .filter(|t| secret_id.is_none_or(|s| t.secret_id == s))
        };
        let total = matching().count() as u64;
        let skip = page_number.saturating_sub(1).saturating_mul(page_size);
        let page = matching()
            .skip(skip)
            .take(page_size)
            .map(|t| t.view())
            .collect();
        (page, total)
    }

    /// Waits until task `id` has ended and answers its view (`None` for an unknown id):
    /// counters and failed details.
    pub async fn wait(&self, id: &str) -> Option<TaskView> {
        let task = self.inner.find(id)?;
        let mut done = task.done.subscribe();
        // The sender lives in the task itself, so it cannot be dropped while we wait.
        let _ = done.wait_for(|d| *d).await;
        Some(task.view())
    }

    /// Stops every running task at its next page boundary (their views say they were
    /// stopped) and waits for them to end. Tasks started afterwards stop at once.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let running: Vec<Arc<Task>> = lock(&self.inner.tasks)
            .iter()
            .filter(|t| !t.is_done())
            .cloned()
            .collect();
        for task in running {
            let mut done = task.done.subscribe();
            let _ = done.wait_for(|d| *d).await;
        }
    }
}

impl Inner {
    fn insert(&self, task: Arc<Task>) {
        let mut tasks = lock(&self.tasks);
        tasks.push_back(task);
        let finished = tasks.iter().filter(|t| t.is_done()).count();
        let mut excess = finished.saturating_sub(self.keep_finished);
        tasks.retain(|t| {
            if excess > 0 && t.is_done() {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }

    fn find(&self, id: &str) -> Option<Arc<Task>> {
        lock(&self.tasks).iter().find(|t| t.id == id).cloned()
    }
}

/// What a finished task keeps of `response`: its counters and failed details. A
/// long-running server would otherwise hold every host of every kept run.
fn lean(response: &mut SyncResponse) -> SyncResponse {
    let details = std::mem::take(&mut response.details);
    let mut kept = response.clone();
    kept.details = details.iter().filter(|d| !d.is_success).cloned().collect();
    response.details = details;
    kept
}

/// Marks a run stopped by shutdown: whatever it stored stays, nothing was released.
fn stopped(progress: &watch::Sender<SyncProgress>) -> ErrorReport {
    let mut p = progress.borrow().clone();
    p.state = if p.pages > 0 {
        SyncState::Partial
    } else {
        SyncState::Failed
    };
    let message = format!(
        "stopped by server shutdown at a page boundary after {} pages ({} hosts stored); \
         nothing was released",
        p.pages, p.stored
    );
    progress.send_replace(p);
    ErrorReport::new(ErrorKind::Unavailable, message)
}
