//! Crash consistency: the `server` example process killed with SIGKILL in the middle of
//! a sync, restarted over the same database and synced again. The database must be
//! consistent (every host once, none half-written, none released) and the second sync
//! complete. SQLite always; PostgreSQL when `CMDB_TEST_POSTGRES_URL` is set.

#![cfg(unix)]

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use tokio::process::Child;

use cmdb_testkit::aliyun::{self, SimulatedAliyun};

const TOKEN: &str = "crash-test-token";
const HOSTS: u64 = 3000;
/// A fixed key (base64 of 32 bytes), so the restarted server decrypts the secret.
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Starts the server on a free port over `database_url`.
async fn start_server(database_url: &str) -> (Child, String) {
    common::start_server(database_url, TOKEN, KEY_B64, &[]).await
}

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

/// Every host listed through the API: (total reported, ids seen, ids unique).
async fn hosts(http: &reqwest::Client, base: &str) -> (u64, usize, usize) {
    let mut ids = Vec::new();
    let mut total = 0;
    for page in 1..=100 {
        let (status, v) = call(
            http,
            "GET",
            format!("{base}/hosts?vendor=aliyun&page_size=100&page_number={page}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{v}");
        total = v["total"].as_u64().expect("total");
        let items = v["items"]
            .as_array()
            .or_else(|| v["hosts"].as_array())
            .expect("items");
        if items.is_empty() {
            break;
        }
        for h in items {
            // A half-written row would miss fields every stored host has.
            assert!(h["name"].as_str().is_some_and(|n| !n.is_empty()), "{h}");
            assert!(h["released_at"].is_null(), "nothing released: {h}");
            ids.push(h["instance_id"].as_str().unwrap().to_owned());
        }
    }
    let seen = ids.len();
    ids.sort();
    ids.dedup();
    (total, seen, ids.len())
}

async fn kill_mid_sync_then_recover(database_url: &str) {
    let sim = SimulatedAliyun::start("cn-hangzhou", HOSTS).await;
    // 30 pages of 100, 30 ms each: the kill lands mid-run.
    sim.set_latency(Some(Duration::from_millis(30)));
    let http = reqwest::Client::new();

    let (mut server, base) = start_server(database_url).await;
    let (status, created) = call(&http, "POST", format!("{base}/secrets"), Some(json!({
        "vendor": "aliyun", "description": "crash test", "api_key": aliyun::DEFAULT_ACCESS_KEY_ID,
        "api_secret": aliyun::DEFAULT_ACCESS_KEY_SECRET, "allowed_regions": ["*"],
        "request_rate": 1000, "address": sim.uri(),
    }))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, task) = call(
        &http,
        "POST",
        format!("{base}/secrets/{id}/sync?region=cn-hangzhou&wait=false"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{task}");
    let task_id = task["id"]
        .as_str()
        .or_else(|| task["task_id"].as_str())
        .expect("task id")
        .to_owned();
    let mut stored = 0;
    for _ in 0..2000 {
        let (_, t) = call(&http, "GET", format!("{base}/tasks/{task_id}"), None).await;
        stored = t["counters"]["stored"].as_u64().unwrap_or(0);
        if stored >= 500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        (500..HOSTS).contains(&stored),
        "killed mid-run, after {stored} hosts"
    );
    server.start_kill().expect("SIGKILL");
    let status = server.wait().await.unwrap();
    assert!(!status.success(), "killed: {status:?}");

    // Restarted over the same database: what was stored is there once, nothing released.
    let (mut server, base) = start_server(database_url).await;
    // The killed server's task is kept, marked interrupted (its lock died with it).
    let (status, t) = call(&http, "GET", format!("{base}/tasks/{task_id}"), None).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["state"], "interrupted", "{t}");
    assert!(t["finished_at"].is_string(), "{t}");
    let (total, seen, unique) = hosts(&http, &base).await;
    assert_eq!(seen as u64, total, "every counted host is listed");
    assert_eq!(unique, seen, "no host twice");
    assert!(
        (500..HOSTS).contains(&total),
        "the pages committed before the kill: {total}"
    );

    // The second sync completes (the dead process's scope lock does not block it).
    sim.set_latency(None);
    let (status, r) = call(
        &http,
        "POST",
        format!("{base}/secrets/{id}/sync"),
        Some(json!({"region": "cn-hangzhou", "details": "failed"})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["complete"], true, "{r}");
    assert_eq!(r["total_succeed"], HOSTS, "{r}");
    assert_eq!(r["total_failed"], 0, "{r}");
    assert_eq!(
        r["created"].as_u64().unwrap()
            + r["unchanged"].as_u64().unwrap()
            + r["updated"].as_u64().unwrap(),
        HOSTS,
        "{r}"
    );
    assert_eq!(
        r["created"].as_u64().unwrap(),
        HOSTS - total,
        "only the missing hosts are new: {r}"
    );
    let (total, seen, unique) = hosts(&http, &base).await;
    assert_eq!((total, seen as u64, unique as u64), (HOSTS, HOSTS, HOSTS));
    server.start_kill().unwrap();
    let _ = server.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_sync_into_sqlite_restarts_consistent_and_completes() {
    let path = common::sqlite_path("crash");
    kill_mid_sync_then_recover(&format!("sqlite://{}", path.display())).await;
    let _ = std::fs::remove_file(&path);
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_sync_into_postgres_restarts_consistent_and_completes() {
    let Some(url) = common::postgres_url("the crash test") else {
        return;
    };
    // A database of the test's own: the server takes only a URL.
    let name = common::unique("cmdb_crash").to_lowercase();
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let base = url.split('?').next().unwrap();
    let db_url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
    kill_mid_sync_then_recover(&db_url).await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}
