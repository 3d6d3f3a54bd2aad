//! Tasks kept in a SQL store and secrets changed and deleted, over real HTTP: a SQLite
//! file always, PostgreSQL and MySQL when `CMDB_TEST_POSTGRES_URL` / `CMDB_TEST_MYSQL_URL`
//! are set (each test in a schema of its own).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{SubsecRound, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use cmdb_api::Api;
use cmdb_core::{
    ErrorKind, HostProvider, HostStore, RunState, RunStore, RunTrigger, SyncRun, SyncScope, Vendor,
};
use cmdb_secret::Cipher;
use cmdb_store_sql::{SqlStore, SqlStoreBuilder};
use cmdb_sync::{ProviderContext, ProviderRegistry, SyncOptions, Syncer};
use cmdb_testkit::aliyun::{self, SimulatedAliyun};
use cmdb_testkit::FakeProvider;

const TOKEN: &str = "runs-test-token";

/// Hosts each fake region lists.
const HOSTS: u64 = 120;

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!(
        "{prefix}_{}_{nanos:x}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn sqlite(name: &str) -> SqlStoreBuilder {
    let dir = std::env::temp_dir().join("cmdb-api-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.db", unique(name)));
    SqlStore::builder(format!("sqlite://{}", path.display()))
}

/// A SQLite file, and PostgreSQL and MySQL when their variables are set.
fn databases(name: &str) -> Vec<(&'static str, SqlStoreBuilder)> {
    let mut out = vec![("sqlite", sqlite(name))];
    for (label, var) in [
        ("postgres", "CMDB_TEST_POSTGRES_URL"),
        ("mysql", "CMDB_TEST_MYSQL_URL"),
    ] {
        match std::env::var(var) {
            Ok(url) => out.push((label, SqlStore::builder(url).schema(unique(name)))),
            Err(_) => {
                // A skipped database must be visible: in CI, where it runs, it fails.
                assert!(std::env::var_os("CI").is_none(), "{var} must be set in CI");
                eprintln!("skipping {label} for {name}: {var} is not set");
            }
        }
    }
    out
}

/// Fake clouds: Alibaba Cloud and Tencent Cloud list [`HOSTS`] hosts in any region but
/// `cn-shanghai`, whose first page fails.
fn fake_clouds() -> ProviderRegistry {
    let factory = |ctx: ProviderContext| {
        let mut p = FakeProvider::new(ctx.vendor, ctx.region.clone(), HOSTS, 50);
        if ctx.region == "cn-shanghai" {
            p = p.with_failure_at(0, ErrorKind::Unavailable);
        }
        let p: Arc<dyn HostProvider> = Arc::new(p);
        Ok(p)
    };
    ProviderRegistry::new()
        .with(Vendor::Aliyun, factory)
        .with(Vendor::Tencent, factory)
}

struct Server {
    base: String,
    http: reqwest::Client,
    api: Api,
    store: Arc<SqlStore>,
    serving: tokio::task::JoinHandle<()>,
    /// Every answer's text.
    seen: std::sync::Mutex<Vec<String>>,
}

impl Server {
    /// The API over `store` (hosts, secrets and runs), started as a server starts.
    async fn start(store: Arc<SqlStore>, cipher: Arc<Cipher>, clouds: ProviderRegistry) -> Server {
        let syncer = Syncer::new(store.clone(), store.clone(), cipher, clouds)
            .with_options(SyncOptions::default().with_private_addresses(true));
        let api = Api::new(Arc::new(syncer), TOKEN)
            .unwrap()
            .with_run_store(store.clone());
        Server::serve(api, store).await
    }

    /// [`start`](Self::start) as the replica `runner`, looking for due syncs every
    /// 50 ms.
    async fn start_replica(
        store: Arc<SqlStore>,
        cipher: Arc<Cipher>,
        clouds: ProviderRegistry,
        runner: &str,
    ) -> Server {
        let syncer = Syncer::new(store.clone(), store.clone(), cipher, clouds)
            .with_options(SyncOptions::default().with_private_addresses(true));
        let api = Api::new(Arc::new(syncer), TOKEN)
            .unwrap()
            .with_run_store(store.clone())
            .with_runner(runner)
            .with_schedule_tick(std::time::Duration::from_millis(50));
        Server::serve(api, store).await
    }

    async fn serve(api: Api, store: Arc<SqlStore>) -> Server {
        api.start().await.expect("start");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = api.router();
        let serving = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Server {
            base,
            http: reqwest::Client::new(),
            api,
            store,
            serving,
            seen: std::sync::Mutex::default(),
        }
    }

    /// Stops serving, as a server that shuts down.
    async fn stop(self) {
        self.api.shutdown().await;
        self.serving.abort();
        let _ = self.serving.await;
        self.store.close().await;
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.unwrap();
        self.seen.lock().unwrap().push(text.clone());
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, headers, value)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, _, value) = self.send(method, path, body).await;
        (status, value)
    }

    async fn create_secret(&self, body: Value) -> String {
        let (status, headers, created) = self.send(Method::POST, "/secrets", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(headers["location"], format!("/secrets/{id}").as_str());
        id
    }

    async fn sync(&self, id: &str, region: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            &format!("/secrets/{id}/sync"),
            Some(json!({"region": region, "details": "failed"})),
        )
        .await
    }

    async fn tasks(&self, query: &str) -> Value {
        let (status, list) = self
            .call(Method::GET, &format!("/tasks{query}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {list}");
        list
    }

    async fn finished(&self, task: &str) -> Value {
        for _ in 0..2000 {
            let (status, run) = self
                .call(Method::GET, &format!("/tasks/{task}"), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{run}");
            if run["finished_at"].is_string() {
                return run;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("task {task} did not finish");
    }
}

fn fake_secret(vendor: &str, key: &str) -> Value {
    json!({
        "vendor": vendor, "description": "fake cloud", "api_key": key,
        "api_secret": "fake-secret-value", "allowed_regions": ["*"],
    })
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_outlive_a_restart_and_are_filtered_and_paged() {
    for (label, builder) in databases("tasks_restart") {
        let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
        let store = Arc::new(builder.clone().connect().await.expect(label));
        let s = Server::start(store, cipher.clone(), fake_clouds()).await;
        let ali = s
            .create_secret(fake_secret("aliyun", "LTAI5tRestart001"))
            .await;
        let tc = s
            .create_secret(fake_secret("tencent", "AKIDrestart00001"))
            .await;
        for (id, region) in [
            (&ali, "cn-hangzhou"),
            (&ali, "cn-beijing"),
            (&tc, "cn-hangzhou"),
        ] {
            let (status, answer) = s.sync(id, region).await;
            assert_eq!(status, StatusCode::OK, "{label}: {answer}");
            assert_eq!(answer["created"], HOSTS, "{label}: {answer}");
        }
        let (status, answer) = s.sync(&ali, "cn-shanghai").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{label}: {answer}");
        // In the background: 202 with the task's address in `Location`.
        let (status, headers, started) = s
            .send(
                Method::POST,
                &format!("/secrets/{ali}/sync?region=cn-hangzhou&wait=false"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{label}: {started}");
        let last = started["task_id"].as_str().unwrap().to_owned();
        assert_eq!(headers["location"], format!("/tasks/{last}").as_str());
        assert_eq!(started["location"], format!("/tasks/{last}"));
        assert_eq!(started["state"], "running", "{label}: {started}");
        let run = s.finished(&last).await;
        assert_eq!(run["state"], "succeeded", "{label}: {run}");
        let before = s.tasks("").await;
        s.stop().await;

        // A new server over the same database: the same tasks, in the same order.
        let store = Arc::new(builder.connect().await.expect(label));
        let s = Server::start(store, cipher, fake_clouds()).await;
        let after = s.tasks("").await;
        assert_eq!(after, before, "{label}: the tasks outlive the restart");
        assert_eq!(after["total"], 5, "{label}: {after}");
        let order = ids(&after);
        assert_eq!(order[0], last, "{label}: most recent first");
        let run = &after["items"][0];
        assert_eq!(run["secret_id"], ali.as_str());
        assert_eq!(run["vendor"], "aliyun");
        assert_eq!(run["region"], "cn-hangzhou");
        assert_eq!(run["trigger"], "api");
        assert_eq!(run["counters"]["unchanged"], HOSTS, "{label}: {run}");
        assert_eq!(run["counters"]["pages"], 3, "{label}: {run}");
        assert!(run["error"].is_null(), "{label}: {run}");
        let (status, one) = s.call(Method::GET, &format!("/tasks/{last}"), None).await;
        assert_eq!((status, &one), (StatusCode::OK, run), "{label}");

        let total = |list: Value| list["total"].as_u64().unwrap();
        assert_eq!(
            total(s.tasks(&format!("?secret_id={ali}")).await),
            4,
            "{label}"
        );
        assert_eq!(
            total(s.tasks(&format!("?secret_id={tc}")).await),
            1,
            "{label}"
        );
        assert_eq!(total(s.tasks("?region=cn-hangzhou").await), 3, "{label}");
        assert_eq!(total(s.tasks("?state=succeeded").await), 4, "{label}");
        let failed = s.tasks("?state=failed").await;
        assert_eq!(total(failed.clone()), 1, "{label}: {failed}");
        let failed = &failed["items"][0];
        assert_eq!(failed["region"], "cn-shanghai");
        assert_eq!(failed["error"]["kind"], "unavailable", "{label}: {failed}");
        assert_eq!(failed["counters"]["stored"], 0, "{label}: {failed}");
        assert_eq!(
            total(
                s.tasks(&format!(
                    "?secret_id={ali}&region=cn-hangzhou&state=succeeded"
                ))
                .await
            ),
            2,
            "{label}: filters combine"
        );
        assert_eq!(total(s.tasks("?state=interrupted").await), 0, "{label}");

        let mut paged = Vec::new();
        for (page, size) in [(1, 2), (2, 2), (3, 1), (4, 0)] {
            let list = s.tasks(&format!("?page_size=2&page_number={page}")).await;
            assert_eq!(list["total"], 5, "{label}");
            assert_eq!(list["items"].as_array().unwrap().len(), size, "{label}");
            paged.extend(ids(&list));
        }
        assert_eq!(paged, order, "{label}: the pages follow the order");
        for bad in [
            "?page_size=0",
            "?page_number=0",
            "?state=sleeping",
            "?colour=blue",
        ] {
            let (status, body) = s.call(Method::GET, &format!("/tasks{bad}"), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{label} {bad}: {body}");
            assert_eq!(body["code"], "invalid_input");
        }
        let (status, _) = s.call(Method::GET, "/tasks/no-such-task", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        s.stop().await;
    }
}

/// A running run of `scope` as a process that died would have left it: in the store,
/// its lock not held.
fn running_run(scope: &SyncScope) -> SyncRun {
    let now = Utc::now().trunc_subsecs(6);
    let mut counters = cmdb_core::RunCounters::new();
    counters.pages = 4;
    counters.stored = 400;
    SyncRun::new(uuid(), scope, RunTrigger::Api, now)
        .with_state(RunState::Running)
        .with_started_at(Some(now))
        .with_counters(counters)
}

fn uuid() -> String {
    unique("run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_process_is_gone_is_interrupted_and_a_live_one_blocks_deleting_its_secret() {
    for (label, builder) in databases("tasks_interrupted") {
        let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
        let store = Arc::new(builder.clone().connect().await.expect(label));
        // Left by a process that died before this server started: marked at start.
        let before_start = running_run(&SyncScope::hosts("dead", Vendor::Aliyun, "cn-hangzhou"));
        store.insert_run(&before_start).await.unwrap();
        let s = Server::start(store.clone(), cipher, fake_clouds()).await;
        let got = store.get_run(&before_start.id).await.unwrap().unwrap();
        assert_eq!(got.state, RunState::Interrupted, "{label}: marked at start");

        // Left by a process that died while this one served: marked when read.
        let dead = running_run(&SyncScope::hosts("dead", Vendor::Aliyun, "cn-beijing"));
        store.insert_run(&dead).await.unwrap();
        let (status, run) = s
            .call(Method::GET, &format!("/tasks/{}", dead.id), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{label}: {run}");
        assert_eq!(run["state"], "interrupted", "{label}: {run}");
        assert_eq!(
            run["counters"]["stored"], 400,
            "{label}: the counters are kept"
        );
        assert!(run["finished_at"].is_string(), "{label}: {run}");
        assert!(
            run["error"]["message"]
                .as_str()
                .unwrap()
                .contains("stopped before it ended"),
            "{label}: {run}"
        );
        let stored = store.get_run(&dead.id).await.unwrap().unwrap();
        assert_eq!(stored.state, RunState::Interrupted, "{label}: and kept so");

        // Running in another server, which holds its scope's lock: still running, and
        // its secret cannot be deleted.
        let id = s
            .create_secret(fake_secret("aliyun", "LTAI5tReplica0001"))
            .await;
        let scope = SyncScope::hosts(id.clone(), Vendor::Aliyun, "cn-hangzhou");
        let lease = store
            .try_lock_scope(&scope)
            .await
            .unwrap()
            .expect("the lock is free");
        let elsewhere = running_run(&scope);
        store.insert_run(&elsewhere).await.unwrap();
        let list = s.tasks(&format!("?secret_id={id}&state=running")).await;
        assert_eq!(list["total"], 1, "{label}: {list}");
        let (status, body) = s
            .call(Method::DELETE, &format!("/secrets/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{label}: {body}");
        assert_eq!(body["code"], "conflict");
        assert!(
            body["message"].as_str().unwrap().contains(&elsewhere.id),
            "{label}: {body}"
        );
        // The other server stops without recording the end: the run is interrupted, and
        // the secret can go.
        drop(lease);
        let (status, body) = s
            .call(Method::DELETE, &format!("/secrets/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{label}: {body}");
        let (_, run) = s
            .call(Method::GET, &format!("/tasks/{}", elsewhere.id), None)
            .await;
        assert_eq!(run["state"], "interrupted", "{label}: {run}");
        let list = s.tasks("?state=interrupted").await;
        assert_eq!(list["total"], 3, "{label}: {list}");
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_secret_keeps_its_hosts_unless_asked_to_release_them() {
    let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
    let store = Arc::new(sqlite("delete").connect().await.unwrap());
    let s = Server::start(store, cipher, fake_clouds()).await;
    let kept = s
        .create_secret(fake_secret("aliyun", "LTAI5tKeptHosts01"))
        .await;
    let released = s
        .create_secret(fake_secret("tencent", "AKIDreleasedHost1"))
        .await;
    for (id, region) in [
        (&kept, "cn-hangzhou"),
        (&released, "cn-hangzhou"),
        (&released, "cn-beijing"),
    ] {
        let (status, answer) = s.sync(id, region).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let hosts = |query: String| {
        let s = &s;
        async move {
            let (status, list) = s.call(Method::GET, &format!("/hosts?{query}"), None).await;
            assert_eq!(status, StatusCode::OK, "{list}");
            list["total"].as_u64().unwrap()
        }
    };

    let (status, _) = s
        .call(Method::DELETE, &format!("/secrets/{kept}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.call(Method::GET, &format!("/secrets/{kept}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        hosts(format!("secret_id={kept}&released=false")).await,
        HOSTS,
        "the hosts of a deleted secret are kept, found by its id"
    );
    assert_eq!(s.tasks(&format!("?secret_id={kept}")).await["total"], 1);

    for bad in ["release_hosts=maybe", "colour=blue"] {
        let (status, body) = s
            .call(Method::DELETE, &format!("/secrets/{released}?{bad}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, body) = s
        .call(
            Method::DELETE,
            &format!("/secrets/{released}?release_hosts=true"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        hosts(format!("secret_id={released}&released=false")).await,
        0
    );
    assert_eq!(
        hosts(format!("secret_id={released}&released=true")).await,
        2 * HOSTS,
        "every active host of the secret, in each region, is released"
    );
    assert_eq!(
        hosts(format!("secret_id={kept}&released=false")).await,
        HOSTS,
        "another secret's hosts are untouched"
    );
    let (status, body) = s
        .call(
            Method::DELETE,
            &format!("/secrets/{released}?release_hosts=true"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patched_secret_is_sealed_again_answered_masked_and_syncs_from_its_new_address() {
    const SECOND_KEY: &str = "LTAI5tSecondKey0002";
    const SECOND_SECRET: &str = "second-simulated-secret";
    let first = SimulatedAliyun::start("cn-hangzhou", 30).await;
    let second = SimulatedAliyun::start("cn-hangzhou", 45).await;
    second.set_credentials(SECOND_KEY, SECOND_SECRET);
    let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
    let store = Arc::new(sqlite("patch").connect().await.unwrap());
    let s = Server::start(
        store.clone(),
        cipher.clone(),
        ProviderRegistry::with_builtin_providers(),
    )
    .await;
    let id = s
        .create_secret(json!({
            "vendor": "aliyun", "description": "first account",
            "api_key": aliyun::DEFAULT_ACCESS_KEY_ID,
            "api_secret": aliyun::DEFAULT_ACCESS_KEY_SECRET,
            "allowed_regions": ["cn-hangzhou"], "address": first.uri(),
        }))
        .await;
    let (status, answer) = s.sync(&id, "cn-hangzhou").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["created"], 30, "{answer}");
    let path = format!("/secrets/{id}");

    // Refused: unknown fields (422), invalid values (400), a key without its secret.
    let (status, body) = s
        .call(Method::PATCH, &path, Some(json!({"colour": "blue"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("colour"),
        "{body}"
    );
    for (patch, field) in [
        (json!({"request_rate": 0}), "request_rate"),
        (json!({"address": "http://169.254.169.254/"}), "address"),
        (json!({"address": "file:///etc/passwd"}), "address"),
        (json!({"allowed_regions": []}), "allowed_regions"),
        (json!({"api_key": SECOND_KEY}), "api_secret"),
    ] {
        let (status, body) = s.call(Method::PATCH, &path, Some(patch.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{patch}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(field),
            "{patch}: {body}"
        );
    }
    let (status, _) = s
        .call(Method::PATCH, "/secrets/no-such-secret", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let other = s
        .create_secret(json!({
            "vendor": "aliyun", "description": "holds the second key", "api_key": SECOND_KEY,
            "api_secret": "x", "allowed_regions": ["*"],
        }))
        .await;
    let (status, body) = s
        .call(
            Method::PATCH,
            &path,
            Some(json!({"api_key": SECOND_KEY, "api_secret": SECOND_SECRET})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a key another secret has: {body}"
    );
    let (status, _) = s
        .call(Method::DELETE, &format!("/secrets/{other}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // The address alone: the credentials are sealed again for it and reach it (the
    // second cloud knows another key: a vendor's 502, not a crypto 500).
    let (status, masked) = s
        .call(Method::PATCH, &path, Some(json!({"address": second.uri()})))
        .await;
    assert_eq!(status, StatusCode::OK, "{masked}");
    assert_eq!(masked["address"], second.uri());
    assert_eq!(masked["api_secret"], "******");
    let (status, answer) = s.sync(&id, "cn-hangzhou").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
    assert_eq!(answer["code"], "unauthenticated", "{answer}");

    // The credentials, the description and the rate: the sync works again.
    let (status, masked) = s
        .call(
            Method::PATCH,
            &path,
            Some(json!({
                "api_key": SECOND_KEY, "api_secret": SECOND_SECRET,
                "description": "second account", "request_rate": 40,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{masked}");
    assert_eq!(masked["api_key"], "LTAI****0002");
    assert_eq!(masked["api_secret"], "******");
    assert_eq!(masked["description"], "second account");
    assert_eq!(masked["request_rate"], 40);
    assert_eq!(masked["id"], id.as_str());
    let (_, shown) = s.call(Method::GET, &path, None).await;
    assert_eq!(shown, masked, "the change is stored");
    let (status, answer) = s.sync(&id, "cn-hangzhou").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (
            answer["total_succeed"].as_u64(),
            answer["complete"].as_bool()
        ),
        (Some(45), Some(true)),
        "{answer}"
    );
    // The stored row decrypts under its new binding, to the new credentials.
    let stored = cmdb_secret::SecretStore::get(&*store, &id).await.unwrap();
    let creds = cipher.decrypt_credentials(&stored).unwrap();
    assert_eq!(
        (creds.api_key(), creds.api_secret()),
        (SECOND_KEY, SECOND_SECRET)
    );

    for text in s.seen.lock().unwrap().iter() {
        assert!(
            !text.contains(SECOND_SECRET) && !text.contains(aliyun::DEFAULT_ACCESS_KEY_SECRET),
            "an answer carried an API secret: {text}"
        );
    }
    s.stop().await;
}

/// The scheduled tasks of `secret`, once `count` of them have finished.
async fn scheduled(s: &Server, secret: &str, count: usize) -> Vec<Value> {
    for _ in 0..2000 {
        let list = s
            .tasks(&format!("?secret_id={secret}&region=*&page_size=100"))
            .await;
        let runs: Vec<Value> = list["items"].as_array().unwrap().to_vec();
        if runs.iter().filter(|r| r["finished_at"].is_string()).count() >= count {
            return runs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{count} scheduled syncs of {secret} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_run_each_due_sync_once_and_a_failing_schedule_backs_off() {
    use cmdb_secret::SecretStore;

    for (label, builder) in databases("schedules") {
        let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
        // Two replicas: their own pools, processes-alike, over one database.
        let a = Arc::new(builder.clone().connect().await.expect(label));
        let b = Arc::new(builder.clone().connect().await.expect(label));
        let sa = Server::start_replica(a.clone(), cipher.clone(), fake_clouds(), "replica-a").await;
        let sb = Server::start_replica(b, cipher, fake_clouds(), "replica-b").await;

        let mut healthy = Vec::new();
        for i in 0..4 {
            let mut body = fake_secret("aliyun", &format!("LTAI5tSchedule{i:03}"));
            body["allowed_regions"] = json!(["cn-hangzhou", "cn-beijing"]);
            body["sync_interval"] = json!("1m");
            let server = if i % 2 == 0 { &sa } else { &sb };
            healthy.push(server.create_secret(body).await);
        }
        let mut body = fake_secret("tencent", "AKIDscheduleFail01");
        body["allowed_regions"] = json!(["cn-shanghai"]);
        body["sync_interval"] = json!("1m");
        let failing = sa.create_secret(body).await;

        // Round one: new schedules are due at once; each runs once, on either replica.
        for id in healthy.iter().chain([&failing]) {
            let runs = scheduled(&sb, id, 1).await;
            assert_eq!(runs.len(), 1, "{label}: one run per due sync: {runs:?}");
            let run = &runs[0];
            assert_eq!(run["trigger"], "schedule", "{label}: {run}");
            assert_eq!(run["region"], "*", "{label}: every region: {run}");
            assert!(
                ["replica-a", "replica-b"].contains(&run["runner"].as_str().unwrap()),
                "{label}: {run}"
            );
        }
        for id in &healthy {
            let run = &scheduled(&sa, id, 1).await[0];
            assert_eq!(run["state"], "succeeded", "{label}: {run}");
            assert_eq!(run["counters"]["stored"], 2 * HOSTS, "{label}: {run}");
            let (_, secret) = sa.call(Method::GET, &format!("/secrets/{id}"), None).await;
            assert_eq!(secret["sync_interval"], "1m", "{label}: {secret}");
            assert_eq!(secret["sync_failures"], 0, "{label}: {secret}");
            let next: chrono::DateTime<Utc> =
                serde_json::from_value(secret["next_sync_at"].clone()).unwrap();
            assert!(
                next > Utc::now() + chrono::Duration::seconds(45),
                "{label}: the next is an interval on: {secret}"
            );
        }
        let run = &scheduled(&sa, &failing, 1).await[0];
        assert_eq!(run["state"], "partial", "{label}: the region failed: {run}");
        // Its one region is a task of its own, failed, with the vendor's error.
        let regions = sb
            .tasks(&format!("?parent_id={}", run["id"].as_str().unwrap()))
            .await;
        assert_eq!(regions["total"], 1, "{label}: {regions}");
        let region = &regions["items"][0];
        assert_eq!(
            (region["region"].as_str(), region["state"].as_str()),
            (Some("cn-shanghai"), Some("failed")),
            "{label}: {region}"
        );
        assert_eq!(region["error"]["kind"], "unavailable", "{label}: {region}");
        assert_eq!(region["trigger"], "schedule", "{label}: {region}");
        // The failure is recorded once the run's end is.
        let mut secret = Value::Null;
        for _ in 0..500 {
            secret = sa
                .call(Method::GET, &format!("/secrets/{failing}"), None)
                .await
                .1;
            if secret["sync_failures"] == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(secret["sync_failures"], 1, "{label}: {secret}");
        let next: chrono::DateTime<Utc> =
            serde_json::from_value(secret["next_sync_at"].clone()).unwrap();
        assert!(
            next > Utc::now() + chrono::Duration::seconds(100),
            "{label}: backed off to two intervals: {secret}"
        );

        // Round two: a minute passes for the healthy ones (their due time moved back).
        for id in &healthy {
            let current = SecretStore::get(&*a, id)
                .await
                .unwrap()
                .next_sync_at
                .unwrap();
            let past = Utc::now().trunc_subsecs(6) - chrono::Duration::seconds(1);
            assert!(a.claim_sync(id, current, past).await.unwrap(), "{label}");
        }
        for id in &healthy {
            let runs = scheduled(&sa, id, 2).await;
            assert_eq!(
                runs.len(),
                2,
                "{label}: one more run per due sync: {runs:?}"
            );
            assert_eq!(runs[0]["counters"]["unchanged"], 2 * HOSTS, "{label}");
        }
        assert_eq!(
            scheduled(&sb, &failing, 1).await.len(),
            1,
            "{label}: the failing schedule waits its back-off"
        );
        // Nothing is due now, on either replica.
        let due = a.due_syncs(Utc::now(), 100).await.unwrap();
        assert!(
            due.iter()
                .all(|d| !healthy.contains(&d.secret_id) && d.secret_id != failing),
            "{label}: {due:?}"
        );

        // A schedule removed is never due; a changed one answers its new interval.
        let (status, changed) = sa
            .call(
                Method::PATCH,
                &format!("/secrets/{}", healthy[0]),
                Some(json!({"sync_interval": "2h"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{label}: {changed}");
        assert_eq!(changed["sync_interval"], "2h", "{label}: {changed}");
        let (status, removed) = sa
            .call(
                Method::PATCH,
                &format!("/secrets/{}", healthy[1]),
                Some(json!({"sync_interval": null})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{label}: {removed}");
        assert!(removed["sync_interval"].is_null(), "{label}: {removed}");
        assert!(removed["next_sync_at"].is_null(), "{label}: {removed}");
        let (status, body) = sa
            .call(
                Method::POST,
                "/secrets",
                Some({
                    let mut body = fake_secret("aliyun", "LTAI5tTooOften001");
                    body["sync_interval"] = json!("10s");
                    body
                }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{label}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("sync_interval: must be"),
            "{label}: {body}"
        );
        sa.stop().await;
        sb.stop().await;
    }
}
