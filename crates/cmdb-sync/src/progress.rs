//! Live progress of a run.

use serde::{Deserialize, Serialize};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum SyncState {
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
}

/// Counters of a run, published while it goes (see
/// [`Syncer::sync_with_progress`](crate::Syncer::sync_with_progress)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct SyncProgress {
    /// Where the run is.
    pub state: SyncState,
    /// Pages stored.
    pub pages: u64,
    /// Hosts listed by the vendor so far.
    pub hosts_seen: u64,
    /// Hosts stored so far.
    pub stored: u64,
    /// Hosts that failed to store so far.
    pub failed: u64,
    /// The total the vendor reports, when it does.
    pub expected_total: Option<u64>,
}
