//! Several replicas of the `server` example over one PostgreSQL or MariaDB database:
//! schedules run each due sync exactly once across the replicas, and a replica killed
//! in the middle of a scheduled sync leaves its task `interrupted`, the next due sync of
//! that account running on the other replica.

#![cfg(unix)]

mod common;

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use serde_json::{json, Value};
use tokio::process::Child;

use cmdb::secret::SecretStore;
use cmdb::store_sql::SqlStore;
use cmdb_testkit::aliyun::SimulatedAliyun;

const TOKEN: &str = "replicas-test-token";
/// A fixed key (base64 of 32 bytes), shared by the replicas.
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Accounts (one region each) with a schedule; the last one is slow to list.
const ACCOUNTS: usize = 4;
const SLOW_HOSTS: u64 = 3000;
const HOSTS: u64 = 200;

async fn call(
    http: &reqwest::Client,
    method: &str,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, text) = common::api_call(http, TOKEN, method, url, body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The whole-account tasks of `secret`, most recent first.
async fn tasks(http: &reqwest::Client, base: &str, secret: &str) -> Vec<Value> {
    let (status, list) = call(
        http,
        "GET",
        format!("{base}/tasks?secret_id={secret}&region=*&page_size=100"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list["items"].as_array().unwrap().clone()
}

/// The whole-account tasks of `secret` once `count` of them have finished.
async fn finished(http: &reqwest::Client, base: &str, secret: &str, count: usize) -> Vec<Value> {
    for _ in 0..3000 {
        let runs = tasks(http, base, secret).await;
        if runs.iter().filter(|r| r["finished_at"].is_string()).count() >= count {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{count} syncs of {secret} did not finish");
}

/// Makes the next scheduled sync of each of `secrets` due now, as if its interval had
/// passed: its due time is moved back with the store's own compare-and-swap.
async fn make_due(store: &SqlStore, secrets: &[String]) {
    for id in secrets {
        let secret = SecretStore::get(store, id).await.unwrap();
        let past = Utc::now().trunc_subsecs(6) - chrono::Duration::seconds(1);
        let moved = store
            .claim_sync(id, secret.next_sync_at.unwrap(), past)
            .await
            .unwrap();
        assert!(moved, "{id}: its due time moved back");
    }
}

async fn kill(mut child: Child) {
    child.start_kill().expect("SIGKILL");
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "killed: {status:?}");
}

async fn two_replicas_share_the_schedules(url: &str, label: &str) {
    let db = common::create_database(url, "cmdb_replicas").await;
    let replica = |name: &'static str| [("CMDB_SCHEDULE_TICK", "100ms"), ("CMDB_RUNNER", name)];
    let (a, base_a) = common::start_server(&db, TOKEN, KEY_B64, &replica("replica-a")).await;
    let (b, base_b) = common::start_server(&db, TOKEN, KEY_B64, &replica("replica-b")).await;
    let http = reqwest::Client::new();
    let store = SqlStore::connect(&db)
        .await
        .expect("the test's own connection");

    let mut sims = Vec::new();
    let mut ids = Vec::new();
    for i in 0..ACCOUNTS {
        let slow = i == ACCOUNTS - 1;
        let sim =
            SimulatedAliyun::start("cn-hangzhou", if slow { SLOW_HOSTS } else { HOSTS }).await;
        let key = format!("LTAI5tReplica{i:04}");
        sim.set_credentials(&key, "replica-secret");
        if slow {
            // 30 pages of 100, 40 ms each: long enough to be killed in the middle.
            sim.set_latency(Some(Duration::from_millis(40)));
        }
        let base = if i % 2 == 0 { &base_a } else { &base_b };
        let (status, created) = call(
            &http,
            "POST",
            format!("{base}/secrets"),
            Some(json!({
                "vendor": "aliyun", "description": format!("replica test {i}"), "api_key": key,
                "api_secret": "replica-secret", "allowed_regions": ["cn-hangzhou"],
                "request_rate": 1000, "address": sim.uri(), "sync_interval": "1m",
            })),
        )
        .await;
        assert_eq!(status, 201, "{label}: {created}");
        assert_eq!(created["sync_interval"], "1m", "{label}: {created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
        sims.push(sim);
    }
    let slow = ids[ACCOUNTS - 1].clone();

    // Round one: every new schedule is due at once; each runs once, on either replica.
    for (id, sim) in ids.iter().zip(&sims) {
        let runs = finished(&http, &base_b, id, 1).await;
        assert_eq!(runs.len(), 1, "{label}: one run per due sync: {runs:?}");
        let run = &runs[0];
        assert_eq!(run["trigger"], "schedule", "{label}: {run}");
        assert_eq!(run["state"], "succeeded", "{label}: {run}");
        assert_eq!(
            run["counters"]["stored"],
            sim.host_count(),
            "{label}: {run}"
        );
        let runner = run["runner"].as_str().unwrap();
        assert!(
            ["replica-a", "replica-b"].contains(&runner),
            "{label}: {run}"
        );
        let pages = run["counters"]["pages"].as_u64().unwrap();
        assert!(pages > 0, "{label}: {run}");
        assert_eq!(sim.listings(), pages, "{label}: the vendor listed once");
    }

    // Round two, both replicas alive: every account due at once runs once more.
    make_due(&store, &ids).await;
    for (id, sim) in ids.iter().zip(&sims) {
        let runs = finished(&http, &base_a, id, 2).await;
        assert_eq!(
            runs.len(),
            2,
            "{label}: one more run per due sync: {runs:?}"
        );
        assert_eq!(
            runs[0]["counters"]["unchanged"],
            sim.host_count(),
            "{label}"
        );
        let pages = runs[0]["counters"]["pages"].as_u64().unwrap();
        assert_eq!(
            sim.listings(),
            2 * pages,
            "{label}: the vendor listed once more"
        );
    }

    // The slow account's next sync: its replica is killed while it runs.
    make_due(&store, std::slice::from_ref(&slow)).await;
    let mut running = Value::Null;
    for _ in 0..3000 {
        let runs = tasks(&http, &base_a, &slow).await;
        if runs.len() == 3 && runs[0]["state"] == "running" {
            running = runs[0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(running["state"], "running", "{label}: the third sync runs");
    let task = running["id"].as_str().unwrap().to_owned();
    let (survivor, survivor_base, dead) = match running["runner"].as_str().unwrap() {
        "replica-a" => {
            kill(a).await;
            (b, base_b.clone(), "replica-a")
        }
        _ => {
            kill(b).await;
            (a, base_a.clone(), "replica-b")
        }
    };
    // The survivor finds the run's process gone (its lock died with it): interrupted.
    let mut run = Value::Null;
    for _ in 0..1000 {
        run = call(&http, "GET", format!("{survivor_base}/tasks/{task}"), None)
            .await
            .1;
        if run["state"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(run["state"], "interrupted", "{label}: {run}");
    assert_eq!(run["runner"], dead, "{label}: {run}");
    assert!(run["finished_at"].is_string(), "{label}: {run}");

    // The next due sync of that account runs on the survivor, to its end.
    make_due(&store, std::slice::from_ref(&slow)).await;
    let runs = finished(&http, &survivor_base, &slow, 4).await;
    assert_eq!(runs.len(), 4, "{label}: {runs:?}");
    let last = &runs[0];
    assert_eq!(last["state"], "succeeded", "{label}: {last}");
    assert_ne!(last["runner"], dead, "{label}: {last}");
    assert_eq!(last["counters"]["stored"], SLOW_HOSTS, "{label}: {last}");
    // Nothing was released: every host of the account is active.
    let (status, hosts) = call(
        &http,
        "GET",
        format!("{survivor_base}/hosts?secret_id={slow}&released=true"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{hosts}");
    assert_eq!(hosts["total"], 0, "{label}: {hosts}");

    kill(survivor).await;
    store.close().await;
    common::drop_database(url, &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgres_run_each_due_sync_once_and_take_over_a_dead_ones() {
    if let Some(url) = common::postgres_url("the replicas test") {
        two_replicas_share_the_schedules(&url, "postgres").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_mariadb_run_each_due_sync_once_and_take_over_a_dead_ones() {
    if let Some(url) = common::mysql_url("the replicas test") {
        two_replicas_share_the_schedules(&url, "mysql").await;
    }
}
