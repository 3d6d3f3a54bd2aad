//! `GET /metrics`: the Prometheus text of the metrics cmdb records, and the stored hosts
//! counted at scrape time.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use cmdb_core::{
    DatabaseQuery, DatabaseStatus, DatabaseStore, HostQuery, HostStatus, HostStore, Result, Vendor,
};

/// Gauge of the active (not released) stored hosts, by `vendor` and `status`, counted
/// from the host store at each scrape of `/metrics`.
pub const HOSTS: &str = "cmdb_hosts";

/// Gauge of the active stored database instances, by `vendor` and `status`, counted at
/// each scrape when the syncer has a database store.
pub const DATABASES: &str = "cmdb_databases";

/// Bucket bounds of [`cmdb_http::telemetry::VENDOR_REQUEST_DURATION_SECONDS`], in seconds.
pub const VENDOR_REQUEST_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Bucket bounds of [`cmdb_sync::telemetry::SYNC_RUN_DURATION_SECONDS`], in seconds.
pub const SYNC_RUN_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// A Prometheus recorder builder with histogram buckets for cmdb's durations
/// ([`VENDOR_REQUEST_BUCKETS`], [`SYNC_RUN_BUCKETS`]; without them the exporter renders
/// summaries, which Prometheus cannot aggregate across replicas). Install it once, at
/// start-up, and give its handle to [`Api::with_metrics`](crate::Api::with_metrics):
///
/// ```no_run
/// # fn demo(api: cmdb_api::Api) -> Result<(), Box<dyn std::error::Error>> {
/// let handle = cmdb_api::prometheus_builder().install_recorder()?;
/// let api = api.with_metrics(handle);
/// # Ok(()) }
/// ```
pub fn prometheus_builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(cmdb_http::telemetry::VENDOR_REQUEST_DURATION_SECONDS.to_owned()),
            VENDOR_REQUEST_BUCKETS,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(cmdb_sync::telemetry::SYNC_RUN_DURATION_SECONDS.to_owned()),
                SYNC_RUN_BUCKETS,
            )
        })
        .expect("the bucket lists are not empty")
}

/// Describes every metric cmdb records to the installed recorder.
pub(crate) fn describe_metrics() {
    cmdb_http::telemetry::describe_metrics();
    cmdb_sync::telemetry::describe_metrics();
    metrics::describe_gauge!(
        HOSTS,
        "Active stored hosts by vendor and status, counted at scrape time"
    );
    metrics::describe_gauge!(
        DATABASES,
        "Active stored database instances by vendor and status, counted at scrape time"
    );
}

/// Sets [`HOSTS`] for every vendor and status from `store`: one count per vendor, and one
/// per status of the vendors that have hosts (the others are 0 without asking).
pub(crate) async fn record_host_counts(store: &dyn HostStore) -> Result<()> {
    for &vendor in Vendor::ALL {
        let active = HostQuery::default()
            .with_vendor(vendor)
            .with_released(false)
            .with_page_size(1);
        let any = store.query(&active).await?.total > 0;
        for &status in HostStatus::ALL {
            let count = if any {
                store
                    .query(&active.clone().with_status(status))
                    .await?
                    .total
            } else {
                0
            };
            metrics::gauge!(HOSTS, "vendor" => vendor.as_str(), "status" => status.as_str())
                .set(count as f64);
        }
    }
    Ok(())
}

/// Sets [`DATABASES`] for every vendor and status from `store`, as
/// [`record_host_counts`] does for hosts.
pub(crate) async fn record_database_counts(store: &dyn DatabaseStore) -> Result<()> {
    for &vendor in Vendor::ALL {
        let active = DatabaseQuery::default()
            .with_vendor(vendor)
            .with_released(false)
            .with_page_size(1);
        let any = store.query(&active).await?.total > 0;
        for &status in DatabaseStatus::ALL {
            let count = if any {
                store
                    .query(&active.clone().with_status(status))
                    .await?
                    .total
            } else {
                0
            };
            metrics::gauge!(DATABASES, "vendor" => vendor.as_str(), "status" => status.as_str())
                .set(count as f64);
        }
    }
    Ok(())
}
