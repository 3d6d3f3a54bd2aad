//! Sync runs as a store keeps them: the [`SyncRun`] record and the [`RunStore`] trait.
//!
//! A run is one sync of one scope, from the moment it starts to its end. A store keeps
//! it so that every process sharing the store sees it, before and after a restart.

use std::fmt::{self, Debug};
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorReport, Result};
use crate::model::{FailedRecord, ParseEnumError, ResourceType, SyncScope, UpsertOutcome, Vendor};
use crate::store::{check_paging, page_offset};

/// The most failed details a stored run keeps; its counters still count every host.
pub const MAX_RUN_FAILED_DETAILS: usize = 100;

/// The outcome for one host of a sync, as its answer and its stored run report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct SyncDetail {
    /// The vendor's id of the host.
    pub instance_id: String,
    /// The host's name.
    pub name: String,
    /// Whether the host is stored.
    pub is_success: bool,
    /// `created`, `updated`, `unchanged`, or why the host failed.
    pub message: String,
}

impl SyncDetail {
    /// The detail of the host `instance_id` named `name` whose upsert had `outcome`.
    pub fn new(instance_id: &str, name: &str, outcome: &UpsertOutcome) -> SyncDetail {
        let message = match outcome {
            UpsertOutcome::Created => "created".to_owned(),
            UpsertOutcome::Updated => "updated".to_owned(),
            UpsertOutcome::Unchanged => "unchanged".to_owned(),
            UpsertOutcome::Failed(reason) => reason.clone(),
        };
        SyncDetail {
            instance_id: instance_id.to_owned(),
            name: name.to_owned(),
            is_success: outcome.is_success(),
            message,
        }
    }

    /// The detail of a vendor record that could not be mapped to a host.
    pub fn unmapped(record: &FailedRecord) -> SyncDetail {
        SyncDetail {
            instance_id: record.instance_id.clone().unwrap_or_default(),
            name: String::new(),
            is_success: false,
            message: record.reason.clone(),
        }
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum RunState {
    /// Accepted, not started.
    #[default]
    Pending,
    /// Listing and storing.
    Running,
    /// Ended with a complete listing and every host stored.
    Succeeded,
    /// Ended with some hosts stored, but incomplete or with failed hosts.
    Partial,
    /// Ended without storing anything.
    Failed,
    /// The process running it stopped before it ended (killed, crashed, restarted): what
    /// it stored stays, nothing was released.
    Interrupted,
}

named_enum!(RunState, "run state", [
    Pending => "pending",
    Running => "running",
    Succeeded => "succeeded",
    Partial => "partial",
    Failed => "failed",
    Interrupted => "interrupted",
]);

impl RunState {
    /// Whether the run has ended (succeeded, partial, failed or interrupted).
    pub const fn is_finished(self) -> bool {
        !matches!(self, RunState::Pending | RunState::Running)
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum RunTrigger {
    /// A request to the API (`POST /secrets/:id/sync`).
    #[default]
    Api,
    /// A schedule.
    Schedule,
}

named_enum!(RunTrigger, "run trigger", [Api => "api", Schedule => "schedule"]);

/// The counters of a run, as far as it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct RunCounters {
    /// Vendor pages stored: listing pages, then by-id lookup requests.
    pub pages: u64,
    /// Hosts the vendor listed (or found by id).
    pub seen: u64,
    /// Hosts stored.
    pub stored: u64,
    /// Hosts (or vendor records) that could not be stored.
    pub failed: u64,
    /// Hosts new to the store.
    pub created: u64,
    /// Hosts whose content changed (or that came back after a release).
    pub updated: u64,
    /// Hosts seen again unchanged.
    pub unchanged: u64,
    /// Hosts of the scope marked released.
    pub released: u64,
    /// The total the vendor reports for the listing, when it does.
    pub expected_total: Option<u64>,
}

impl RunCounters {
    /// Counters that all say `0`: set the ones known with the fields.
    pub fn new() -> RunCounters {
        RunCounters::default()
    }
}

/// One sync run as a [`RunStore`] keeps it.
///
/// Build one with [`SyncRun::new`] and the `with_*` methods; times are kept to the
/// microsecond by the SQL stores, so give them whole microseconds to read back equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct SyncRun {
    /// The run's id (a UUID).
    pub id: String,
    /// The secret synced.
    pub secret_id: String,
    /// The secret's vendor.
    pub vendor: Vendor,
    /// The region synced (vSphere: the vCenter host).
    pub region: String,
    /// What was listed.
    pub resource_type: ResourceType,
    /// What started the run.
    pub trigger: RunTrigger,
    /// Where the run is.
    pub state: RunState,
    /// How far it got.
    pub counters: RunCounters,
    /// The hosts that failed, at most [`MAX_RUN_FAILED_DETAILS`] of them.
    pub failed_details: Vec<SyncDetail>,
    /// Why the run failed, stopped or is incomplete.
    pub error: Option<ErrorReport>,
    /// When the run was accepted.
    pub created_at: DateTime<Utc>,
    /// When it started listing.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// The process that runs (or ran) it: its host name and process id, or the name
    /// the server was given.
    #[serde(default)]
    pub runner: Option<String>,
    /// The whole-account run this region's run belongs to, if it does: a sync of every
    /// region is a parent run (region `"*"`) and one run per region.
    #[serde(default)]
    pub parent_id: Option<String>,
}

impl SyncRun {
    /// A pending run `id` of `scope`, started by `trigger` and accepted at `created_at`,
    /// with every counter at zero.
    pub fn new(
        id: impl Into<String>,
        scope: &SyncScope,
        trigger: RunTrigger,
        created_at: DateTime<Utc>,
    ) -> SyncRun {
        SyncRun {
            id: id.into(),
            secret_id: scope.secret_id.clone(),
            vendor: scope.vendor,
            region: scope.region.clone(),
            resource_type: scope.resource_type,
            trigger,
            state: RunState::Pending,
            counters: RunCounters::default(),
            failed_details: Vec::new(),
            error: None,
            created_at,
            started_at: None,
            finished_at: None,
            runner: None,
            parent_id: None,
        }
    }

    /// The scope the run syncs.
    pub fn scope(&self) -> SyncScope {
        SyncScope::new(
            self.secret_id.clone(),
            self.vendor,
            self.region.clone(),
            self.resource_type,
        )
    }

    /// Sets the state.
    pub fn with_state(mut self, state: RunState) -> SyncRun {
        self.state = state;
        self
    }

    /// Sets the counters.
    pub fn with_counters(mut self, counters: RunCounters) -> SyncRun {
        self.counters = counters;
        self
    }

    /// Sets the failed details, keeping the first [`MAX_RUN_FAILED_DETAILS`] failed ones
    /// (successes are not kept).
    pub fn with_failed_details(mut self, details: impl IntoIterator<Item = SyncDetail>) -> SyncRun {
        self.failed_details = capped_failures(details);
        self
    }

    /// Sets the error.
    pub fn with_error(mut self, error: Option<ErrorReport>) -> SyncRun {
        self.error = error;
        self
    }

    /// Sets when the run started listing.
    pub fn with_started_at(mut self, started_at: Option<DateTime<Utc>>) -> SyncRun {
        self.started_at = started_at;
        self
    }

    /// Sets when the run ended.
    pub fn with_finished_at(mut self, finished_at: Option<DateTime<Utc>>) -> SyncRun {
        self.finished_at = finished_at;
        self
    }

    /// Sets the process that runs it.
    pub fn with_runner(mut self, runner: Option<String>) -> SyncRun {
        self.runner = runner;
        self
    }

    /// Sets the whole-account run it belongs to.
    pub fn with_parent_id(mut self, parent_id: Option<String>) -> SyncRun {
        self.parent_id = parent_id;
        self
    }
}

/// The first [`MAX_RUN_FAILED_DETAILS`] failed ones of `details`.
pub(crate) fn capped_failures(details: impl IntoIterator<Item = SyncDetail>) -> Vec<SyncDetail> {
    details
        .into_iter()
        .filter(|d| !d.is_success)
        .take(MAX_RUN_FAILED_DETAILS)
        .collect()
}

/// A filtered, paged query of stored runs, most recent first. Empty filters match
/// everything.
///
/// ```
/// use cmdb_core::{RunQuery, RunState};
///
/// let query = RunQuery::default()
///     .with_secret_id("s-1")
///     .with_state(RunState::Running)
///     .with_page_size(50);
/// assert_eq!((query.page_size, query.page_number), (50, 1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RunQuery {
    /// Only runs of this secret.
    pub secret_id: Option<String>,
    /// Only runs in this state.
    pub state: Option<RunState>,
    /// Only runs of this region.
    pub region: Option<String>,
    /// Only the region runs of this whole-account run.
    pub parent_id: Option<String>,
    /// Runs per page, 1 to [`MAX_PAGE_SIZE`](crate::MAX_PAGE_SIZE).
    pub page_size: u32,
    /// Page number, from 1.
    pub page_number: u32,
}

impl Default for RunQuery {
    fn default() -> Self {
        RunQuery {
            secret_id: None,
            state: None,
            region: None,
            parent_id: None,
            page_size: 20,
            page_number: 1,
        }
    }
}

impl RunQuery {
    /// Only runs of this secret.
    pub fn with_secret_id(mut self, secret_id: impl Into<String>) -> RunQuery {
        self.secret_id = Some(secret_id.into());
        self
    }

    /// Only runs in this state.
    pub fn with_state(mut self, state: RunState) -> RunQuery {
        self.state = Some(state);
        self
    }

    /// Only runs of this region.
    pub fn with_region(mut self, region: impl Into<String>) -> RunQuery {
        self.region = Some(region.into());
        self
    }

    /// Only the region runs of the whole-account run `parent_id`.
    pub fn with_parent_id(mut self, parent_id: impl Into<String>) -> RunQuery {
        self.parent_id = Some(parent_id.into());
        self
    }

    /// Sets the runs per page, 1 to [`MAX_PAGE_SIZE`](crate::MAX_PAGE_SIZE).
    pub fn with_page_size(mut self, page_size: u32) -> RunQuery {
        self.page_size = page_size;
        self
    }

    /// Sets the page number, from 1.
    pub fn with_page_number(mut self, page_number: u32) -> RunQuery {
        self.page_number = page_number;
        self
    }

    /// Checks the paging values.
    pub fn validate(&self) -> Result<()> {
        check_paging(self.page_size, self.page_number)
    }

    /// Rows to skip for the requested page.
    pub fn offset(&self) -> u64 {
        page_offset(self.page_size, self.page_number)
    }

    /// Whether a stored run passes every filter.
    pub fn matches(&self, run: &SyncRun) -> bool {
        self.secret_id.as_deref().is_none_or(|s| run.secret_id == s)
            && self.state.is_none_or(|s| run.state == s)
            && self.region.as_deref().is_none_or(|r| run.region == r)
            && self
                .parent_id
                .as_deref()
                .is_none_or(|p| run.parent_id.as_deref() == Some(p))
    }
}

/// One page of runs and the number of runs matching in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct RunList {
    /// Runs matching the query, over all pages.
    pub total: u64,
    /// The requested page, most recent first.
    pub items: Vec<SyncRun>,
}

impl RunList {
    /// A page of `items` out of `total` matching runs.
    pub fn new(total: u64, items: Vec<SyncRun>) -> RunList {
        RunList { total, items }
    }
}

/// Where sync runs are kept, so that every process sharing the store sees them, and
/// after a restart.
///
/// Runs are keyed by id; listings are most recent first (`created_at`, then id, both
/// descending). A run's scope lock is the host store's
/// ([`HostStore::try_lock_scope`](crate::HostStore::try_lock_scope)): a `running` run
/// whose lock can be taken has lost its process, and [`mark_run_interrupted`](Self::mark_run_interrupted)
/// says so. Run `cmdb_core::testing::run_store_conformance` (feature `testing`) against
/// every implementation.
#[async_trait]
pub trait RunStore: Debug + Send + Sync + 'static {
    /// Stores a new run; [`Conflict`](crate::ErrorKind::Conflict) if one has its id.
    async fn insert_run(&self, run: &SyncRun) -> Result<()>;

    /// Replaces the counters of the run `id` while it is `running`; whether it was (a
    /// run that ended, or was marked interrupted, is left alone).
    async fn update_run_progress(&self, id: &str, counters: &RunCounters) -> Result<bool>;

    /// Records the end of the run `run.id`: its state, counters, failed details (the
    /// first [`MAX_RUN_FAILED_DETAILS`] failed ones), error and `finished_at`, whatever
    /// the stored state (the end a live process reports wins over an interrupted mark).
    /// [`NotFound`](crate::ErrorKind::NotFound) if no run has this id.
    async fn finish_run(&self, run: &SyncRun) -> Result<()>;

    /// The run `id`, if there is one.
    async fn get_run(&self, id: &str) -> Result<Option<SyncRun>>;

    /// A filtered page of runs, most recent first, with the total; an invalid query is
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput).
    async fn list_runs(&self, query: &RunQuery) -> Result<RunList>;

    /// Marks the run `id` [`Interrupted`](RunState::Interrupted) at `at` with `error`,
    /// if it still is `running`; whether it was.
    async fn mark_run_interrupted(
        &self,
        id: &str,
        error: &ErrorReport,
        at: DateTime<Utc>,
    ) -> Result<bool>;

    /// Deletes the finished runs (succeeded, partial, failed, interrupted) that ended
    /// before `finished_before`; how many.
    async fn prune_runs(&self, finished_before: DateTime<Utc>) -> Result<u64>;
}
