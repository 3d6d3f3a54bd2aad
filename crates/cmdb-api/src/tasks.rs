//! Sync runs as tasks: started in the background, watched while they go, kept when done.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{oneshot, watch};

use cmdb_core::{ErrorKind, Result, Vendor};
use cmdb_sync::{ErrorReport, SyncProgress, SyncRequest, SyncResponse, SyncState, Syncer};

/// A task as `GET /tasks/:id` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
}

impl std::fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRegistry")
            .field("tasks", &lock(&self.inner.tasks).len())
            .field("keep_finished", &self.inner.keep_finished)
            .finish()
    }
}

impl TaskRegistry {
    /// A registry that keeps the `keep_finished` most recent finished tasks.
    pub fn new(keep_finished: usize) -> TaskRegistry {
        TaskRegistry {
            inner: Arc::new(Inner {
                tasks: Mutex::default(),
                keep_finished,
                shutdown: watch::channel(false).0,
            }),
        }
    }

    /// Checks and starts a sync in the background. Errors found before the first vendor
    /// request (invalid request, unknown secret, region not allowed, scope already
    /// syncing, ...) are returned here; afterwards the task's view tells.
    pub async fn start(&self, syncer: Arc<Syncer>, request: SyncRequest) -> Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        let (progress_tx, progress_rx) = watch::channel(SyncProgress::default());
        let (ready_tx, ready_rx) = oneshot::channel();
        let mut shutdown = self.inner.shutdown.subscribe();
        let secret_id = request.secret_id.clone();
        let handle_id = id.clone();
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
                id: handle_id,
                secret_id,
                vendor: scope.vendor,
                region: scope.region.clone(),
                created_at: Utc::now(),
                progress: progress_rx,
                outcome: Mutex::new(None),
                done: watch::channel(false).0,
            });
            inner.insert(Arc::clone(&task));
            if ready_tx.send(Ok(())).is_err() {
                // Nobody waits for the answer; the run still goes on.
                tracing::debug!(task = %task.id, "sync started for a caller that left");
            }
            let run = prepared.run(Some(&progress_tx));
            let outcome = if *shutdown.borrow() {
                Err(stopped(&progress_tx))
            } else {
                tokio::select! {
                    r = run => r.map_err(|e| ErrorReport::from(&e)),
                    _ = shutdown.changed() => Err(stopped(&progress_tx)),
                }
            };
            *lock(&task.outcome) = Some((outcome, Utc::now()));
            task.done.send_replace(true);
        });
        match ready_rx.await {
            Ok(Ok(())) => Ok(id),
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

    /// The tasks, most recent first, of one secret or of all.
    pub fn list(&self, secret_id: Option<&str>) -> Vec<TaskView> {
        lock(&self.inner.tasks)
            .iter()
            .rev()
            .filter(|t| secret_id.is_none_or(|s| t.secret_id == s))
            .map(|t| t.view())
            .collect()
    }

    /// Waits until task `id` has ended and answers its view (`None` for an unknown id).
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
    ErrorReport {
        kind: ErrorKind::Unavailable,
        message,
        vendor: None,
        code: None,
        http_status: None,
        request_id: None,
    }
}
