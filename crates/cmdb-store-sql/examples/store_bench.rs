//! Upsert throughput of the SQL stores: 100,000 hosts in pages of 100, as new hosts, all
//! unchanged, and with 10% changed, on SQLite and, when `CMDB_TEST_POSTGRES_URL` /
//! `CMDB_TEST_MYSQL_URL` are set, on PostgreSQL and MySQL.
//!
//! ```text
//! cargo run --release -p cmdb-store-sql --all-features --example store_bench
//! ```
//! `CMDB_BENCH_HOSTS` changes the number of hosts.

use std::time::Instant;

use chrono::{Duration, Utc};
use cmdb_core::{Host, HostStatus, HostStore, PayMode, SyncScope, UpsertOutcome, Vendor};
use cmdb_store_sql::SqlStore;

const PAGE: usize = 100;

fn host(scope: &SyncScope, i: usize) -> Host {
    let mut h = Host::new(scope.vendor, format!("i-bench{i:08}"), &scope.region);
    h.name = format!("bench-host-{i}");
    h.zone = Some(format!("{}-a", scope.region));
    h.status = HostStatus::Running;
    h.raw_status = "Running".into();
    h.instance_type = Some("ecs.g6.large".into());
    h.cpu = Some(2);
    h.memory_mib = Some(8192);
    h.pay_mode = PayMode::Postpaid;
    h.private_ips = vec![format!(
        "10.{}.{}.{}",
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    )];
    h.tags.insert("env".into(), "bench".into());
    h
}

async fn pass(
    store: &SqlStore,
    scope: &SyncScope,
    hosts: &[Host],
    run: i64,
    expect: impl Fn(usize) -> UpsertOutcome,
) -> f64 {
    let seen = Utc::now() + Duration::seconds(run);
    let started = Instant::now();
    for (p, page) in hosts.chunks(PAGE).enumerate() {
        let out = store.upsert(scope, page, seen).await.expect("upsert");
        for (j, o) in out.iter().enumerate() {
            assert_eq!(*o, expect(p * PAGE + j), "host {}", p * PAGE + j);
        }
    }
    hosts.len() as f64 / started.elapsed().as_secs_f64()
}

async fn bench(label: &str, store: SqlStore, n: usize) {
    let scope = SyncScope::hosts(
        format!(
            "bench-{}",
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ),
        Vendor::Aliyun,
        "cn-hangzhou",
    );
    let hosts: Vec<Host> = (0..n).map(|i| host(&scope, i)).collect();
    let new = pass(&store, &scope, &hosts, 0, |_| UpsertOutcome::Created).await;
    let unchanged = pass(&store, &scope, &hosts, 1, |_| UpsertOutcome::Unchanged).await;
    let changed: Vec<Host> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut h = h.clone();
            if i % 10 == 0 {
                h.status = HostStatus::Stopped;
            }
            h
        })
        .collect();
    let ten = pass(&store, &scope, &changed, 2, |i| {
        if i % 10 == 0 {
            UpsertOutcome::Updated
        } else {
            UpsertOutcome::Unchanged
        }
    })
    .await;
    println!(
        "{label:<8} {n} hosts, pages of {PAGE}: new {new:>9.0} hosts/s | unchanged {unchanged:>9.0} hosts/s | 10% changed {ten:>9.0} hosts/s"
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("CMDB_BENCH_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join("cmdb-store-bench");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("bench-{}.db", std::process::id()));
    let store = SqlStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("sqlite");
    bench("sqlite", store, n).await;
    let _ = std::fs::remove_file(&path);

    let schema = format!("bench_{}", std::process::id());
    for (label, var) in [
        ("postgres", "CMDB_TEST_POSTGRES_URL"),
        ("mysql", "CMDB_TEST_MYSQL_URL"),
    ] {
        match std::env::var(var) {
            Ok(url) => match SqlStore::builder(url)
                .schema(schema.clone())
                .connect()
                .await
            {
                Ok(store) => bench(label, store, n).await,
                Err(e) => println!("{label:<8} skipped: {e}"),
            },
            Err(_) => println!("{label:<8} skipped: {var} is not set"),
        }
    }
}
