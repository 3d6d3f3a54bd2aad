//! Scheduled syncs: every replica looks for due syncs every few seconds and runs those
//! it claims. The store is the coordinator: a claim moves the secret's `next_sync_at`
//! with a compare-and-swap ([`SecretStore::claim_sync`]), so of the replicas that see a
//! sync due, exactly one claims it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use rand::Rng;
use tokio::sync::oneshot;

use cmdb_core::{ErrorKind, Result, RunTrigger};
use cmdb_secret::{DueSync, SecretStore, SyncInterval};
use cmdb_sync::{SyncRequest, Syncer, ALL_REGIONS};

use crate::tasks::{RunOutcome, TaskRegistry};

/// How often a server looks for due syncs by default.
pub const DEFAULT_SCHEDULE_TICK: Duration = Duration::from_secs(15);

/// The longest a failing schedule waits between syncs (unless its interval is longer).
pub const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// Due syncs claimed per look; the rest wait for the next one.
const BATCH: u32 = 32;

/// The jitter added to every next due time: up to a tenth of the interval, at most five
/// minutes, so that secrets made together drift apart.
fn jitter(every: SyncInterval) -> Duration {
    let most = (every.as_duration() / 10).min(Duration::from_secs(300));
    Duration::from_millis(rand::thread_rng().gen_range(0..=most.as_millis() as u64))
}

/// The wait before the next sync after `failures` scheduled syncs in a row failed: the
/// interval doubled for each, at most [`MAX_BACKOFF`] (or the interval, if longer).
pub fn backoff(every: SyncInterval, failures: u32) -> Duration {
    let every = every.as_duration();
    let cap = MAX_BACKOFF.max(every);
    every
        .checked_mul(1 << failures.min(16))
        .map_or(cap, |d| d.min(cap))
}

fn after(at: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    at + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
}

/// Whether a scheduled sync's outcome counts as a failure for its back-off: it stored
/// nothing, or a region's listing did not complete. Hosts that failed to store alone
/// (their record is what it is) do not back off.
fn failed(outcome: &RunOutcome) -> bool {
    match outcome {
        Ok(response) => !response.complete || response.error.is_some(),
        Err(_) => true,
    }
}

/// One look for due syncs: claims and starts each, answers how many started.
pub(crate) async fn run_due(
    syncer: &Arc<Syncer>,
    secrets: &Arc<dyn SecretStore>,
    tasks: &TaskRegistry,
) -> Result<usize> {
    let now = Utc::now().trunc_subsecs(6);
    let mut started = 0;
    for due in secrets.due_syncs(now, BATCH).await? {
        let next = after(now, due.interval.as_duration() + jitter(due.interval)).trunc_subsecs(6);
        if !secrets.claim_sync(&due.secret_id, due.due_at, next).await? {
            // Another replica claimed it first.
            continue;
        }
        let request = SyncRequest::new(due.secret_id.clone(), ALL_REGIONS);
        match tasks
            .start_with(Arc::clone(syncer), request, RunTrigger::Schedule)
            .await
        {
            Ok((run, outcome)) => {
                tracing::info!(task = %run.id, secret_id = %due.secret_id, "scheduled sync started");
                started += 1;
                tokio::spawn(record(Arc::clone(secrets), due, outcome));
            }
            Err(e) if e.kind() == ErrorKind::RateLimited => {
                // This server is full: hand the sync back, due as it was, for another
                // replica or the next look.
                secrets.claim_sync(&due.secret_id, next, due.due_at).await?;
                tracing::info!(secret_id = %due.secret_id, "scheduled sync left for later: {e}");
                break;
            }
            Err(e) if e.kind() == ErrorKind::Conflict => {
                // A sync of the account is running (asked for, or the last scheduled one
                // still going): this one is skipped, the next comes at its time.
                tracing::info!(secret_id = %due.secret_id, "scheduled sync skipped: {e}");
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                tracing::debug!(secret_id = %due.secret_id, "scheduled sync of a deleted secret: {e}");
            }
            Err(e) => {
                tracing::warn!(secret_id = %due.secret_id, error = %e, "scheduled sync could not start");
                let failures = due.failures.saturating_add(1);
                let retry = after(Utc::now(), backoff(due.interval, failures)).trunc_subsecs(6);
                secrets
                    .record_sync_outcome(&due.secret_id, failures, Some(retry))
                    .await?;
            }
        }
    }
    Ok(started)
}

/// Records how a scheduled sync ended, once it has: its failure count, and after a
/// failure the back-off.
async fn record(
    secrets: Arc<dyn SecretStore>,
    due: DueSync,
    outcome: oneshot::Receiver<RunOutcome>,
) {
    // No outcome: the server stopped the run; the next look starts it again.
    let Ok(outcome) = outcome.await else { return };
    let result = if failed(&outcome) {
        let failures = due.failures.saturating_add(1);
        let wait = backoff(due.interval, failures);
        tracing::warn!(secret_id = %due.secret_id, failures, next_in_s = wait.as_secs(),
            "scheduled sync failed; backing off");
        let retry = after(Utc::now(), wait).trunc_subsecs(6);
        secrets
            .record_sync_outcome(&due.secret_id, failures, Some(retry))
            .await
    } else if due.failures > 0 {
        secrets.record_sync_outcome(&due.secret_id, 0, None).await
    } else {
        Ok(())
    };
    if let Err(e) = result {
        tracing::warn!(secret_id = %due.secret_id, error = %e, "cannot record a scheduled sync's outcome");
    }
}

/// Looks for due syncs now and then every `tick` until the registry shuts down (or is
/// dropped).
pub(crate) fn spawn_scheduler(
    syncer: Arc<Syncer>,
    secrets: Arc<dyn SecretStore>,
    tasks: &TaskRegistry,
    tick: Duration,
) {
    let weak = tasks.downgrade();
    let mut shutdown = tasks.shutdown_signal();
    tokio::spawn(async move {
        loop {
            let Some(tasks) = TaskRegistry::upgrade(&weak) else {
                return;
            };
            if let Err(e) = run_due(&syncer, &secrets, &tasks).await {
                tracing::warn!(error = %e, "looking for due syncs failed; trying again later");
            }
            drop(tasks);
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_six_hours_or_the_interval() {
        let every = |s: &str| s.parse::<SyncInterval>().unwrap();
        let minutes = |d: Duration| d.as_secs() / 60;
        assert_eq!(minutes(backoff(every("1m"), 1)), 2);
        assert_eq!(minutes(backoff(every("1m"), 3)), 8);
        assert_eq!(minutes(backoff(every("1m"), 9)), 360, "capped at 6 h");
        assert_eq!(minutes(backoff(every("1m"), u32::MAX)), 360);
        assert_eq!(minutes(backoff(every("30m"), 2)), 120);
        assert_eq!(
            minutes(backoff(every("1d"), 5)),
            1440,
            "a day's interval stays a day"
        );
    }

    #[test]
    fn jitter_is_at_most_a_tenth_and_five_minutes() {
        let every = |s: &str| s.parse::<SyncInterval>().unwrap();
        for _ in 0..200 {
            assert!(jitter(every("1m")) <= Duration::from_secs(6));
            assert!(jitter(every("7d")) <= Duration::from_secs(300));
        }
    }
}
