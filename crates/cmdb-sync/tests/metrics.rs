#![cfg_attr(not(feature = "aliyun"), allow(missing_docs))]
#![cfg(feature = "aliyun")]
//! The metrics of a sync: the built-in Alibaba Cloud provider against its simulator, with
//! a metrics recorder local to the test's thread (a current-thread runtime runs the whole
//! sync on it).

mod common;

use std::collections::BTreeMap;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

use cmdb_core::Vendor;
use cmdb_sync::SyncRequest;
use cmdb_testkit::aliyun::SimulatedAliyun;

const REGION: &str = "cn-shanghai";

/// A metric's name and its labels, sorted.
type Key = (String, Vec<(String, String)>);

fn snapshot(snapshotter: &Snapshotter) -> BTreeMap<Key, DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            ((key.name().to_owned(), labels), value)
        })
        .collect()
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    (name.to_owned(), labels)
}

fn counter(found: &BTreeMap<Key, DebugValue>, name: &str, labels: &[(&str, &str)]) -> u64 {
    match found.get(&key(name, labels)) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name} {labels:?}: {other:?} in {found:#?}"),
    }
}

fn samples(found: &BTreeMap<Key, DebugValue>, name: &str, labels: &[(&str, &str)]) -> usize {
    match found.get(&key(name, labels)) {
        Some(DebugValue::Histogram(s)) => s.len(),
        None => 0,
        other => panic!("{name} {labels:?}: {other:?}"),
    }
}

fn describe_instances(class: &str) -> Vec<(&str, &str)> {
    vec![
        ("vendor", "aliyun"),
        ("action", "DescribeInstances"),
        ("region", REGION),
        ("status_class", class),
    ]
}

/// No label value carries the key or the secret (or a part of the secret).
fn assert_no_secret_in_labels(found: &BTreeMap<Key, DebugValue>, key: &str, secret: &str) {
    assert!(!found.is_empty());
    for (name, labels) in found.keys() {
        for (label, value) in labels {
            for forbidden in [key, secret, &secret[..secret.len() / 2]] {
                assert!(
                    !value.contains(forbidden),
                    "{name}{{{label}={value:?}}} carries a credential"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_sync_of_250_hosts_records_its_requests_run_and_hosts() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let sim = SimulatedAliyun::start(REGION, 250).await;
    let env = common::builtin_syncer(
        Vendor::Aliyun,
        &sim.access_key_id(),
        &sim.access_key_secret(),
        REGION,
        &sim.uri(),
    )
    .await;
    let before = chrono::Utc::now().timestamp() as f64;
    let r = env
        .syncer
        .sync(SyncRequest::new(&env.secret.id, REGION))
        .await
        .unwrap();
    assert!(r.complete && r.created == 250 && r.pages == 3, "{r:?}");

    let found = snapshot(&snapshotter);
    let requests = sim.requests() as usize;
    assert_eq!(requests, 3, "one request a page: {:?}", sim.answers());
    assert_eq!(
        samples(
            &found,
            "cmdb_vendor_request_duration_seconds",
            &describe_instances("2xx")
        ),
        requests
    );
    for class in ["4xx", "5xx", "error"] {
        assert_eq!(
            samples(
                &found,
                "cmdb_vendor_request_duration_seconds",
                &describe_instances(class)
            ),
            0
        );
    }
    assert!(!found
        .keys()
        .any(|(name, _)| name == "cmdb_vendor_retries_total"));
    assert!(!found
        .keys()
        .any(|(name, _)| name == "cmdb_vendor_throttled_total"));

    let runs = [
        ("vendor", "aliyun"),
        ("resource_type", "host"),
        ("trigger", "library"),
    ];
    let run = |outcome| {
        let mut labels = runs.to_vec();
        labels.push(("outcome", outcome));
        labels
    };
    assert_eq!(
        counter(&found, "cmdb_sync_runs_total", &run("succeeded")),
        1
    );
    assert_eq!(
        samples(
            &found,
            "cmdb_sync_run_duration_seconds",
            &[("vendor", "aliyun"), ("resource_type", "host")]
        ),
        1
    );
    for (outcome, n) in [
        ("created", 250),
        ("updated", 0),
        ("unchanged", 0),
        ("failed", 0),
        ("released", 0),
    ] {
        assert_eq!(
            counter(
                &found,
                "cmdb_sync_hosts_total",
                &[("vendor", "aliyun"), ("outcome", outcome)]
            ),
            n,
            "{outcome}"
        );
    }
    let last = key(
        "cmdb_sync_last_success_timestamp_seconds",
        &[
            ("secret_id", &env.secret.id),
            ("vendor", "aliyun"),
            ("region", REGION),
            ("resource_type", "host"),
        ],
    );
    match found.get(&last) {
        Some(DebugValue::Gauge(at)) => {
            let at = at.into_inner();
            assert!(
                at >= before && at <= chrono::Utc::now().timestamp() as f64 + 1.0,
                "{at}"
            );
        }
        other => panic!("{other:?} in {found:#?}"),
    }
    assert_no_secret_in_labels(&found, &sim.access_key_id(), &sim.access_key_secret());

    // A second run of unchanged hosts, then a failed run. (A snapshot takes the values
    // since the last one.)
    let r = env
        .syncer
        .sync(SyncRequest::new(&env.secret.id, REGION))
        .await
        .unwrap();
    assert_eq!(r.unchanged, 250);
    sim.set_credentials(&sim.access_key_id(), "rotated-elsewhere");
    env.syncer
        .sync(SyncRequest::new(&env.secret.id, REGION))
        .await
        .unwrap_err();
    let found = snapshot(&snapshotter);
    assert_eq!(
        counter(&found, "cmdb_sync_runs_total", &run("succeeded")),
        1
    );
    assert_eq!(counter(&found, "cmdb_sync_runs_total", &run("failed")), 1);
    assert_eq!(
        samples(
            &found,
            "cmdb_sync_run_duration_seconds",
            &[("vendor", "aliyun"), ("resource_type", "host")]
        ),
        2
    );
    assert_eq!(
        counter(
            &found,
            "cmdb_sync_hosts_total",
            &[("vendor", "aliyun"), ("outcome", "unchanged")]
        ),
        250
    );
    assert_eq!(
        samples(
            &found,
            "cmdb_vendor_request_duration_seconds",
            &describe_instances("4xx")
        ),
        1,
        "the refused signature"
    );
}

#[tokio::test]
async fn a_throttled_sync_records_throttles_and_retries() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let sim = SimulatedAliyun::start(REGION, 300).await;
    sim.throttle_every(2);
    let env = common::builtin_syncer(
        Vendor::Aliyun,
        &sim.access_key_id(),
        &sim.access_key_secret(),
        REGION,
        &sim.uri(),
    )
    .await;
    let r = env
        .syncer
        .sync(SyncRequest::new(&env.secret.id, REGION))
        .await
        .unwrap();
    assert!(r.complete && r.created == 300, "{r:?}");

    let found = snapshot(&snapshotter);
    let throttled = sim
        .answers()
        .iter()
        .filter(|a| *a == "Throttling.User")
        .count() as u64;
    assert!(throttled >= 1, "{:?}", sim.answers());
    let aliyun = [("vendor", "aliyun")];
    assert_eq!(
        counter(&found, "cmdb_vendor_throttled_total", &aliyun),
        throttled
    );
    assert_eq!(
        counter(&found, "cmdb_vendor_retries_total", &aliyun),
        throttled,
        "each throttled attempt was retried"
    );
    assert_eq!(
        samples(
            &found,
            "cmdb_vendor_request_duration_seconds",
            &describe_instances("4xx")
        ) as u64,
        throttled,
        "Alibaba Cloud throttles with a 400"
    );
    assert_eq!(
        samples(
            &found,
            "cmdb_vendor_request_duration_seconds",
            &describe_instances("2xx")
        ) as u64,
        sim.requests() - throttled
    );
    assert_no_secret_in_labels(&found, &sim.access_key_id(), &sim.access_key_secret());
}
