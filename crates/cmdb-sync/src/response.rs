//! What a sync answers.

use serde::{Deserialize, Serialize};

// Defined in cmdb-core, where stored runs keep them too; named here as before.
pub use cmdb_core::{ErrorReport, SyncDetail};

use cmdb_core::Error;

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
    /// The error that ended an incomplete run. For a whole-account sync, the first
    /// region's error (in the order of `regions`), its message naming the region.
    pub error: Option<ErrorReport>,
    /// For a whole-account sync ([`Syncer::sync_all`](crate::Syncer::sync_all)), what
    /// each region's run did, in the order the regions were named; the fields above then
    /// add them up. Empty (and left out of the JSON) for a sync of one region.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionSummary>,
}

/// What the run of one region of a whole-account sync did: its own scope, locks,
/// release and result, summed up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct RegionSummary {
    /// The region (vSphere: the vCenter host).
    pub region: String,
    /// Hosts stored.
    pub total_succeed: u64,
    /// Hosts listed that could not be stored.
    pub total_failed: u64,
    /// Hosts new to the store.
    pub created: u64,
    /// Hosts whose content changed (or that came back after a release).
    pub updated: u64,
    /// Hosts seen again unchanged.
    pub unchanged: u64,
    /// Hosts of the region marked released.
    pub released: u64,
    /// Why no release was made in the region, when none was made although hosts were
    /// missing.
    pub release_skipped: Option<String>,
    /// Vendor pages stored.
    pub pages: u64,
    /// Whether the region's listing ended cleanly and every page was stored.
    pub complete: bool,
    /// Duration of the region's run in milliseconds.
    pub elapsed_ms: u64,
    /// Why the region's run failed or is incomplete: an error before anything was
    /// stored (a region the key may not list, a sync of it already running, ...) or the
    /// one that ended its listing.
    pub error: Option<ErrorReport>,
}

impl RegionSummary {
    /// The summary of a region's run that answered `response`.
    pub(crate) fn of(region: String, response: &SyncResponse) -> RegionSummary {
        RegionSummary {
            region,
            total_succeed: response.total_succeed,
            total_failed: response.total_failed,
            created: response.created,
            updated: response.updated,
            unchanged: response.unchanged,
            released: response.released,
            release_skipped: response.release_skipped.clone(),
            pages: response.pages,
            complete: response.complete,
            elapsed_ms: response.elapsed_ms,
            error: response.error.clone(),
        }
    }

    /// The summary of a region's run that failed before storing anything.
    pub(crate) fn failed(region: String, error: &Error, elapsed_ms: u64) -> RegionSummary {
        RegionSummary {
            region,
            elapsed_ms,
            error: Some(ErrorReport::from(error)),
            ..RegionSummary::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmdb_core::UpsertOutcome;

    /// An API documenting `SyncResponse` documents the regions' summaries with it.
    #[cfg(feature = "openapi")]
    #[test]
    fn the_response_schema_brings_the_region_summary_schema() {
        use utoipa::ToSchema;
        let mut schemas = Vec::new();
        SyncResponse::schemas(&mut schemas);
        let names: Vec<&str> = schemas.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"RegionSummary"), "{names:?}");
        assert!(names.contains(&"ErrorReport"), "{names:?}");
    }

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
