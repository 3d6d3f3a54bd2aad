//! The metrics a run records ([`PreparedSync::run`](crate::PreparedSync::run), and so
//! every `Syncer::sync*`), through the [`metrics`] facade: nothing is recorded until the
//! application installs a recorder.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | [`SYNC_RUNS_TOTAL`] | counter | `vendor`, `resource_type` (`host`, `rds`), `trigger`, `outcome` (`succeeded`, `partial`, `failed`) |
//! | [`SYNC_RUN_DURATION_SECONDS`] | histogram | `vendor`, `resource_type` |
//! | [`SYNC_LAST_SUCCESS_TIMESTAMP_SECONDS`] | gauge | `secret_id`, `vendor`, `region`, `resource_type` |
//! | [`SYNC_HOSTS_TOTAL`] | counter | `vendor`, `outcome` (`created`, `updated`, `unchanged`, `failed`, `released`) |
//! | [`SYNC_DATABASES_TOTAL`] | counter | `vendor`, `outcome`, as hosts |
//!
//! A run is counted when it ends with an answer or an error; a run whose future is
//! dropped (stopped at shutdown) is not, nor a request refused before its run (an
//! invalid request, an unknown secret, a scope already syncing). `secret_id` is the
//! secret's id, never its key or secret; `region` is the scope's (vSphere: the vCenter's
//! host). The vendor calls of a run record [`cmdb_http::telemetry`]'s metrics.

use chrono::Utc;

use crate::{SyncResponse, SyncTrigger};
use cmdb_core::{ResourceType, Result, SyncScope};

/// Counter of runs, by vendor, trigger and outcome: `succeeded` (complete, every host
/// stored), `partial` (hosts stored, but the listing or release is incomplete, or some
/// hosts failed), `failed` (nothing stored).
pub const SYNC_RUNS_TOTAL: &str = "cmdb_sync_runs_total";

/// Histogram of the time runs took, in seconds, whatever their outcome.
pub const SYNC_RUN_DURATION_SECONDS: &str = "cmdb_sync_run_duration_seconds";

/// Gauge of the Unix time, in seconds, at which the last complete run of a scope ended:
/// the whole listing was read and the release step did not fail (some hosts may still
/// have failed to map or store). Alert on `time() - this` to catch a scope that stopped
/// syncing.
pub const SYNC_LAST_SUCCESS_TIMESTAMP_SECONDS: &str = "cmdb_sync_last_success_timestamp_seconds";

/// Counter of hosts by what a run did with them: `created`, `updated`, `unchanged`,
/// `failed` (not mapped or not stored) and `released`.
pub const SYNC_HOSTS_TOTAL: &str = "cmdb_sync_hosts_total";

/// Counter of database instances (`resource_type: rds`) by what a run did with them, as
/// [`SYNC_HOSTS_TOTAL`] counts hosts.
pub const SYNC_DATABASES_TOTAL: &str = "cmdb_sync_databases_total";

/// Describes this crate's metrics (help text and unit) to the installed recorder: call
/// it once after installing one, so that an exporter can print their help lines.
pub fn describe_metrics() {
    metrics::describe_counter!(
        SYNC_RUNS_TOTAL,
        "Sync runs, by vendor, resource type, trigger and outcome (succeeded, partial, failed)"
    );
    metrics::describe_histogram!(
        SYNC_RUN_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Time sync runs took, by vendor and resource type"
    );
    metrics::describe_gauge!(
        SYNC_LAST_SUCCESS_TIMESTAMP_SECONDS,
        metrics::Unit::Seconds,
        "Unix time of the end of the last complete sync run of a scope"
    );
    metrics::describe_counter!(
        SYNC_HOSTS_TOTAL,
        "Hosts synced, by vendor and outcome (created, updated, unchanged, failed, released)"
    );
    metrics::describe_counter!(
        SYNC_DATABASES_TOTAL,
        "Database instances synced, by vendor and outcome (created, updated, unchanged, failed, released)"
    );
}

/// Records the end of a run of `scope` that took `seconds`.
pub(crate) fn record_run(
    scope: &SyncScope,
    trigger: SyncTrigger,
    seconds: f64,
    result: &Result<SyncResponse>,
) {
    let vendor = scope.vendor.as_str();
    let resource_type = scope.resource_type.as_str();
    let outcome = match result {
        Err(_) => "failed",
        Ok(r) if r.complete && r.total_failed == 0 && r.error.is_none() => "succeeded",
        Ok(_) => "partial",
    };
    metrics::counter!(
        SYNC_RUNS_TOTAL,
        "vendor" => vendor,
        "resource_type" => resource_type,
        "trigger" => trigger.as_str(),
        "outcome" => outcome,
    )
    .increment(1);
    metrics::histogram!(
        SYNC_RUN_DURATION_SECONDS,
        "vendor" => vendor,
        "resource_type" => resource_type,
    )
    .record(seconds);
    let Ok(response) = result else {
        return;
    };
    for (outcome, n) in [
        ("created", response.created),
        ("updated", response.updated),
        ("unchanged", response.unchanged),
        ("failed", response.total_failed),
        ("released", response.released),
    ] {
        let name = match scope.resource_type {
            ResourceType::Rds => SYNC_DATABASES_TOTAL,
            _ => SYNC_HOSTS_TOTAL,
        };
        metrics::counter!(name, "vendor" => vendor, "outcome" => outcome).increment(n);
    }
    if response.complete {
        metrics::gauge!(
            SYNC_LAST_SUCCESS_TIMESTAMP_SECONDS,
            "secret_id" => scope.secret_id.clone(),
            "vendor" => vendor,
            "region" => scope.region.clone(),
            "resource_type" => resource_type,
        )
        .set(Utc::now().timestamp_millis() as f64 / 1000.0);
    }
}
