//! What a sync answers.

use serde::{Deserialize, Serialize};

// Defined in cmdb-core, where stored runs keep them too; named here as before.
pub use cmdb_core::{ErrorReport, SyncDetail};

/// The answer to a sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct SyncResponse {
    /// Hosts stored.
    pub total_succeed: u64,
    /// Hosts listed that could not be stored.
    pub total_failed: u64,
    /// Per-host outcomes, as the request's [`DetailsMode`](crate::DetailsMode) asks, at
    /// most [`SyncOptions::max_details`](crate::SyncOptions::max_details) of them.
    pub details: Vec<SyncDetail>,
    /// Whether `details` was cut at that cap (the counters still count every host).
    #[serde(default)]
    pub details_truncated: bool,
    /// Hosts new to the store.
    pub created: u64,
    /// Hosts whose content changed (or that came back after a release).
    pub updated: u64,
    /// Hosts seen again unchanged.
    pub unchanged: u64,
    /// Hosts of the scope marked released: missing from a complete listing and
    /// confirmed gone by the vendor (or, for a provider without a by-id lookup, missing
    /// from two consecutive complete runs).
    pub released: u64,
    /// Missing hosts the vendor's by-id lookup confirmed gone.
    pub release_confirmed: u64,
    /// Missing hosts the vendor's by-id lookup still found: a listing that moved while
    /// it was paged skipped them. They are stored as seen (counted in `total_succeed`
    /// and the outcome counters), never released.
    pub release_found_alive: u64,
    /// Why no release was made, when none was made although hosts were missing.
    pub release_skipped: Option<String>,
    /// Whether the vendor's listing ended cleanly and every page was stored.
    pub complete: bool,
    /// Vendor pages stored: listing pages, then by-id lookup requests.
    pub pages: u64,
    /// Duration of the run in milliseconds.
    pub elapsed_ms: u64,
    /// The error that ended an incomplete run.
    pub error: Option<ErrorReport>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmdb_core::UpsertOutcome;

    #[test]
    fn serializes_with_the_documented_field_names() {
        let r = SyncResponse {
            details: vec![SyncDetail::new("i-1", "web", &UpsertOutcome::Created)],
            ..SyncResponse::default()
        };
        let v = serde_json::to_value(&r).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "complete",
                "created",
                "details",
                "details_truncated",
                "elapsed_ms",
                "error",
                "pages",
                "release_confirmed",
                "release_found_alive",
                "release_skipped",
                "released",
                "total_failed",
                "total_succeed",
                "unchanged",
                "updated"
            ]
        );
        assert_eq!(
            v["details"][0],
            serde_json::json!({"instance_id": "i-1", "name": "web", "is_success": true, "message": "created"})
        );
        assert!(v["error"].is_null() && v["release_skipped"].is_null());
    }
}
