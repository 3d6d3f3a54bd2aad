//! The API over real HTTP: the router on a random port, a reqwest client.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::watch;

use cmdb_api::{Api, PrometheusHandle};
use cmdb_core::{HostPage, HostProvider, HostStore, MemoryHostStore, Vendor};
use cmdb_secret::{Cipher, MemorySecretStore};
use cmdb_sync::{ProviderContext, ProviderRegistry, Syncer};
use cmdb_testkit::{FakeProvider, InstrumentedStore};

const TOKEN: &str = "test-token-0123456789";
const API_SECRET: &str = "very-secret-value-42";

struct Server {
    base: String,
    http: reqwest::Client,
    api: Api,
    listing: Arc<Mutex<(u64, Duration)>>,
    /// Open (`true`) by default; closed, every listing started waits before its first page.
    gate: watch::Sender<bool>,
    seen: Mutex<Vec<String>>,
}

/// A provider whose listing waits until its gate is open: a sync held open for as long as
/// a test needs, without timing.
#[derive(Debug)]
struct Gated {
    inner: FakeProvider,
    gate: watch::Receiver<bool>,
}

impl HostProvider for Gated {
    fn vendor(&self) -> Vendor {
        self.inner.vendor()
    }

    fn region(&self) -> &str {
        self.inner.region()
    }

    fn pages(&self) -> BoxStream<'static, cmdb_core::Result<HostPage>> {
        let mut gate = self.gate.clone();
        let pages = self.inner.pages();
        stream::once(async move {
            let _ = gate.wait_for(|open| *open).await;
            pages
        })
        .flatten()
        .boxed()
    }

    fn lookup(
        &self,
        instance_ids: Vec<String>,
    ) -> Option<BoxStream<'static, cmdb_core::Result<HostPage>>> {
        self.inner.lookup(instance_ids)
    }
}

/// Every log line written while it is the thread's subscriber (a current-thread test
/// runtime runs the server on the test's thread).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(self.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Server {
    async fn start() -> Server {
        Server::start_over(Arc::new(MemoryHostStore::new())).await
    }

    /// A server whose syncs store into `hosts`.
    async fn start_over(hosts: Arc<dyn HostStore>) -> Server {
        Server::start_with(hosts, cmdb_api::DEFAULT_MAX_RUNNING_SYNCS).await
    }

    /// A server whose syncs store into `hosts`, running at most `max_syncs` at once.
    async fn start_with(hosts: Arc<dyn HostStore>, max_syncs: usize) -> Server {
        Server::start_configured(hosts, max_syncs, None).await
    }

    /// A server serving `/metrics` from the test binary's Prometheus recorder.
    async fn start_with_metrics() -> Server {
        Server::start_configured(
            Arc::new(MemoryHostStore::new()),
            cmdb_api::DEFAULT_MAX_RUNNING_SYNCS,
            Some(prometheus()),
        )
        .await
    }

    async fn start_configured(
        hosts: Arc<dyn HostStore>,
        max_syncs: usize,
        metrics: Option<PrometheusHandle>,
    ) -> Server {
        let listing = Arc::new(Mutex::new((250u64, Duration::ZERO)));
        let gate = watch::channel(true).0;
        let registry = {
            let listing = Arc::clone(&listing);
            let gate = gate.clone();
            let factory = move |ctx: ProviderContext| {
                let (count, delay) = *listing.lock().unwrap();
                let mut p = FakeProvider::new(ctx.vendor, ctx.region, count, 100);
                if !delay.is_zero() {
                    p = p.with_delay(delay);
                }
                let p: Arc<dyn HostProvider> = Arc::new(Gated {
                    inner: p,
                    gate: gate.subscribe(),
                });
                Ok(p)
            };
            ProviderRegistry::new()
                .with(Vendor::Aliyun, factory.clone())
                .with(Vendor::Tencent, factory)
        };
        let syncer = Syncer::new(
            Arc::new(MemorySecretStore::new()),
            hosts,
            Arc::new(Cipher::new(Cipher::generate_key())),
            registry,
        );
        let mut api = Api::new(Arc::new(syncer), TOKEN)
            .unwrap()
            .with_body_limit(4096)
            .with_max_concurrent_syncs(max_syncs);
        if let Some(handle) = metrics {
            api = api.with_metrics(handle);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = api.router();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Server {
            base,
            http: reqwest::Client::new(),
            api,
            listing,
            gate,
            seen: Mutex::new(Vec::new()),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_with(method, path, body, Some(TOKEN)).await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        self.seen.lock().unwrap().push(text.clone());
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, value)
    }

    async fn raw(&self, path: &str, content_type: &str, body: String) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        self.seen.lock().unwrap().push(text.clone());
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn create_secret(&self, vendor: &str, api_key: &str) -> String {
        let (status, body) = self
            .call(Method::POST, "/secrets", Some(new_secret(vendor, api_key)))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    fn assert_secret_never_answered(&self) {
        for text in self.seen.lock().unwrap().iter() {
            assert!(
                !text.contains(API_SECRET),
                "an answer carried the API secret: {text}"
            );
        }
    }
}

/// The Prometheus recorder of this test binary, installed once: every test's metrics go
/// to it.
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            cmdb_api::prometheus_builder()
                .install_recorder()
                .expect("no other recorder in this test binary")
        })
        .clone()
}

fn new_secret(vendor: &str, api_key: &str) -> Value {
    json!({
        "vendor": vendor,
        "description": "team account",
        "api_key": api_key,
        "api_secret": API_SECRET,
        "allowed_regions": ["cn-hangzhou", "cn-beijing"],
        "request_rate": 50
    })
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn token_is_required_everywhere_but_healthz() {
    let s = Server::start().await;
    let (status, body) = s.call_with(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    for path in [
        "/secrets",
        "/hosts",
        "/tasks",
        "/openapi.json",
        "/secrets/x",
        "/metrics",
    ] {
        let (status, body) = s.call_with(Method::GET, path, None, None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
        let (status, body) = s.call_with(Method::GET, path, None, Some("wrong")).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
        assert!(
            !body.to_string().contains("wrong"),
            "the token is not echoed"
        );
    }
    let (status, _) = s.call(Method::GET, "/secrets", None).await;
    assert_eq!(status, StatusCode::OK);
    // Built without a recorder, the server has no metrics to answer.
    let (status, body) = s.call(Method::GET, "/metrics", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn secrets_are_created_listed_masked_and_deleted() {
    let s = Server::start().await;
    let (status, body) = s
        .call(
            Method::POST,
            "/secrets",
            Some(new_secret("aliyun", "LTAI5tAbCdEfGh12")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["api_secret"], "******");
    assert_eq!(body["api_key"], "LTAI****Gh12");
    assert_eq!(body["request_rate"], 50);
    let id = body["id"].as_str().unwrap().to_owned();

    let (status, body) = s.call(Method::GET, &format!("/secrets/{id}"), None).await;
    assert_eq!(
        (status, body["api_key"].as_str()),
        (StatusCode::OK, Some("LTAI****Gh12"))
    );
    s.create_secret("tencent", "AKIDzzzzzzzzzzzzzzzz").await;
    let (_, list) = s
        .call(Method::GET, "/secrets?page_size=1&page_number=2", None)
        .await;
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, found) = s.call(Method::GET, "/secrets?keywords=tencent", None).await;
    assert_eq!(found["total"], 1);

    let (status, body) = s
        .call(
            Method::POST,
            "/secrets",
            Some(new_secret("aliyun", "LTAI5tAbCdEfGh12")),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");

    let (status, _) = s
        .call(Method::DELETE, &format!("/secrets/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s.call(Method::GET, &format!("/secrets/{id}"), None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s
        .call(Method::DELETE, &format!("/secrets/{id}"), None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    s.assert_secret_never_answered();
}

#[tokio::test]
async fn a_session_token_is_taken_and_never_answered() {
    const SESSION_TOKEN: &str = "CAIS-session-token-value-7d2e";
    let s = Server::start().await;
    let mut sts = new_secret("aliyun", "STS.NUgYrLnoCSts01");
    sts["session_token"] = json!(SESSION_TOKEN);
    let (status, body) = s.call(Method::POST, "/secrets", Some(sts)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["session_token_set"], true, "{body}");
    assert!(body.get("session_token").is_none(), "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let (_, body) = s.call(Method::GET, &format!("/secrets/{id}"), None).await;
    assert_eq!(body["session_token_set"], true, "{body}");
    let plain = s.create_secret("tencent", "AKIDnoSessionToken01").await;
    let (_, body) = s
        .call(Method::GET, &format!("/secrets/{plain}"), None)
        .await;
    assert_eq!(body["session_token_set"], false, "{body}");
    let (_, list) = s.call(Method::GET, "/secrets", None).await;
    assert_eq!(list["total"], 2, "{list}");

    // The secret syncs (the fake provider ignores credentials: this is the decryption).
    let (status, body) = s
        .call(
            Method::POST,
            &format!("/secrets/{id}/sync"),
            Some(json!({"region": "cn-hangzhou"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Refused: for vSphere, with a control character; the error names the field only.
    let mut vsphere = new_secret("vsphere", "administrator@vsphere.local");
    vsphere["address"] = json!("https://vcenter.example.com/sdk");
    vsphere["session_token"] = json!(SESSION_TOKEN);
    let mut broken = new_secret("huawei", "HWAKbrokenToken01");
    broken["session_token"] = json!(format!("{SESSION_TOKEN}\r\nX-Injected: 1"));
    for bad in [vsphere, broken] {
        let (status, body) = s.call(Method::POST, "/secrets", Some(bad)).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_input");
        assert!(
            body["message"].as_str().unwrap().contains("session_token"),
            "{body}"
        );
    }
    // A blank token is no token, for vSphere too.
    let mut blank = new_secret("vsphere", "blank@vsphere.local");
    blank["address"] = json!("https://vcenter.example.com/sdk");
    blank["session_token"] = json!("  ");
    let (status, body) = s.call(Method::POST, "/secrets", Some(blank)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["session_token_set"], false, "{body}");

    for text in s.seen.lock().unwrap().iter() {
        assert!(
            !text.contains("session-token-value"),
            "an answer carried the session token: {text}"
        );
    }
    s.assert_secret_never_answered();
}

#[tokio::test]
async fn bad_secret_input_gets_the_documented_errors() {
    let s = Server::start().await;
    let mut long = new_secret("aliyun", "k1");
    long["description"] = json!("x".repeat(101));
    let (status, body) = s.call(Method::POST, "/secrets", Some(long)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_input");
    assert!(
        body["message"].as_str().unwrap().contains("description"),
        "{body}"
    );

    let mut scheme = new_secret("aliyun", "k2");
    scheme["address"] = json!("file:///etc/passwd");
    let (status, body) = s.call(Method::POST, "/secrets", Some(scheme)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_input");
    assert!(
        body["message"].as_str().unwrap().contains("address"),
        "{body}"
    );

    // Cloud metadata and link-local literals are refused when the secret is stored, not
    // only when a sync would connect.
    for (n, address) in [
        "http://100.100.100.200/",
        "http://[fd00:ec2::254]/",
        "http://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]:8443/sdk",
        "http://0.0.0.0:80/",
    ]
    .iter()
    .enumerate()
    {
        let mut metadata = new_secret("vsphere", &format!("meta{n}"));
        metadata["address"] = json!(address);
        let (status, body) = s.call(Method::POST, "/secrets", Some(metadata)).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_input");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("address"), "{address}: {body}");
    }

    let mut rate = new_secret("aliyun", "k3");
    rate["request_rate"] = json!(1_000_000);
    let (status, body) = s.call(Method::POST, "/secrets", Some(rate)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_input");

    let mut unknown = new_secret("aliyun", "k4");
    unknown["colour"] = json!("blue");
    let (status, body) = s.call(Method::POST, "/secrets", Some(unknown)).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert!(
        body["message"].as_str().unwrap().contains("colour"),
        "{body}"
    );

    let (status, body) = s
        .call(Method::POST, "/secrets", Some(new_secret("azure", "k5")))
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );

    let (status, body) = s
        .raw("/secrets", "application/json", "{not json".into())
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    let (status, _) = s.raw("/secrets", "text/plain", "{}".into()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = format!("{{\"description\": \"{}\"}}", "x".repeat(10_000));
    let (status, _) = s.raw("/secrets", "application/json", huge.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // A sync reads its body as bytes: past the limit, axum answers in plain text, as the
    // document says.
    let (status, body) = s.raw("/secrets/x/sync", "application/json", huge).await;
    assert_eq!((status, body), (StatusCode::PAYLOAD_TOO_LARGE, Value::Null));
    s.assert_secret_never_answered();
}

#[tokio::test]
async fn sync_then_query_hosts() {
    let s = Server::start().await;
    let id = s.create_secret("aliyun", "LTAI5tSync000001").await;

    let (status, r) = s
        .call(
            Method::POST,
            &format!("/secrets/{id}/sync"),
            Some(json!({"region": "cn-hangzhou"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(
        (r["total_succeed"].as_u64(), r["created"].as_u64()),
        (Some(250), Some(250))
    );
    assert_eq!(r["complete"], true);
    assert_eq!(r["details"].as_array().unwrap().len(), 250);

    // The same options as query parameters.
    let (status, r) = s
        .call(
            Method::POST,
            &format!("/secrets/{id}/sync?region=cn-hangzhou&details=none"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["unchanged"], 250);
    assert!(r["details"].as_array().unwrap().is_empty());

    let (status, hosts) = s
        .call(
            Method::GET,
            "/hosts?vendor=aliyun&region=cn-hangzhou&status=RUNNING&page_size=100&page_number=3",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hosts["total"], 250);
    assert_eq!(hosts["items"].as_array().unwrap().len(), 50);
    let first = &hosts["items"][0];
    for field in [
        "vendor",
        "instance_id",
        "secret_id",
        "region",
        "status",
        "first_seen_at",
        "last_seen_at",
        "released_at",
        "memory_mib",
    ] {
        assert!(
            first.get(field).is_some(),
            "host field {field} missing: {first}"
        );
    }
    let instance = first["instance_id"].as_str().unwrap();
    let (status, one) = s
        .call(Method::GET, &format!("/hosts/aliyun/{instance}"), None)
        .await;
    assert_eq!(
        (status, one["instance_id"].as_str()),
        (StatusCode::OK, Some(instance))
    );
    let (_, found) = s
        .call(Method::GET, "/hosts?keywords=host-12&released=false", None)
        .await;
    assert_eq!(found["total"], 11, "host-12 and host-120..129");
    let (_, none) = s
        .call(Method::GET, "/hosts?keywords=%27%20OR%201%3D1%20--", None)
        .await;
    assert_eq!(none["total"], 0, "filters are data");

    let (status, body) = s.call(Method::GET, "/hosts/aliyun/nope", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s.call(Method::GET, "/hosts/azure/x", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_input");
    let (status, body) = s.call(Method::GET, "/hosts?page_size=0", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_input");
    let (status, body) = s.call(Method::GET, "/hosts?page_size=5000", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_input");
    let (status, body) = s.call(Method::GET, "/hosts?vendr=aliyun", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_input");
    s.assert_secret_never_answered();
}

#[tokio::test]
async fn sync_errors_have_their_statuses() {
    let s = Server::start().await;
    let id = s.create_secret("aliyun", "LTAI5tErrs000001").await;
    let sync = |path: String, body: Value| {
        let s = &s;
        async move { s.call(Method::POST, &path, Some(body)).await }
    };
    let (status, body) = sync(
        "/secrets/nope/sync".into(),
        json!({"region": "cn-hangzhou"}),
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = sync(
        format!("/secrets/{id}/sync"),
        json!({"region": "us-west-1"}),
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "permission_denied");
    // No region is the whole account: of an unknown secret, not found too.
    let (status, body) = sync("/secrets/nope/sync".into(), json!({})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = sync("/secrets/nope/sync".into(), json!({"region": "*"})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = sync(
        format!("/secrets/{id}/sync"),
        json!({"region": "cn-hangzhou/../x"}),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_input");
    let (status, body) = sync(
        format!("/secrets/{id}/sync"),
        json!({"region": "cn-hangzhou", "resource_type": "rds"}),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_input");
    let (status, body) = sync(
        format!("/secrets/{id}/sync"),
        json!({"region": "cn-hangzhou", "wiat": false}),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
}

#[tokio::test]
async fn background_sync_is_polled_to_completion() {
    let s = Server::start().await;
    let id = s.create_secret("aliyun", "LTAI5tTask000001").await;
    s.listing.lock().unwrap().1 = Duration::from_millis(20);
    let (status, started) = s
        .call(
            Method::POST,
            &format!("/secrets/{id}/sync"),
            Some(json!({"region": "cn-beijing", "wait": false})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let task_id = started["task_id"].as_str().unwrap().to_owned();
    assert_eq!(started["location"], format!("/tasks/{task_id}"));

    let mut last = Value::Null;
    for _ in 0..500 {
        let (status, task) = s
            .call(Method::GET, &format!("/tasks/{task_id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        if task["finished_at"].is_string() {
            last = task;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(last["state"], "succeeded", "{last}");
    assert_eq!(last["counters"]["stored"], 250);
    assert_eq!(last["counters"]["expected_total"], 250);
    assert_eq!(last["counters"]["created"], 250);
    assert_eq!(last["region"], "cn-beijing");
    assert_eq!(last["trigger"], "api");
    assert_eq!(last["resource_type"], "host");
    assert!(last["started_at"].is_string(), "{last}");

    let (_, tasks) = s
        .call(Method::GET, &format!("/tasks?secret_id={id}"), None)
        .await;
    assert_eq!(tasks["total"], 1);
    let (_, none) = s.call(Method::GET, "/tasks?secret_id=other", None).await;
    assert_eq!(none["total"], 0);
    let (status, body) = s.call(Method::GET, "/tasks/unknown", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn concurrent_sync_of_one_scope_is_a_conflict() {
    let s = Server::start().await;
    let id = s.create_secret("aliyun", "LTAI5tConc000001").await;
    s.listing.lock().unwrap().1 = Duration::from_millis(100);
    let path = format!("/secrets/{id}/sync");
    let body = json!({"region": "cn-hangzhou", "details": "none"});
    let (a, b) = tokio::join!(
        s.call(Method::POST, &path, Some(body.clone())),
        s.call(Method::POST, &path, Some(body.clone()))
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{a:?} {b:?}"
    );
    let conflict = if a.0 == StatusCode::CONFLICT {
        a.1
    } else {
        b.1
    };
    assert_eq!(conflict["code"], "conflict");
}

#[tokio::test]
async fn shutdown_stops_running_syncs_and_their_tasks_say_so() {
    let s = Server::start().await;
    let id = s.create_secret("aliyun", "LTAI5tStop000001").await;
    *s.listing.lock().unwrap() = (100_000, Duration::from_millis(20));
    let (status, started) = s
        .call(
            Method::POST,
            &format!("/secrets/{id}/sync"),
            Some(json!({"region": "cn-hangzhou", "wait": false})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let task_id = started["task_id"].as_str().unwrap();
    s.api.shutdown().await;
    let (_, task) = s
        .call(Method::GET, &format!("/tasks/{task_id}"), None)
        .await;
    assert!(task["finished_at"].is_string(), "{task}");
    assert!(
        task["error"]["message"]
            .as_str()
            .unwrap()
            .contains("shutdown"),
        "{task}"
    );
    assert_eq!(task["state"], "interrupted", "{task}");
    assert!(task["counters"]["stored"].as_u64().unwrap() < 100_000);
}

#[tokio::test]
async fn shutdown_stops_a_sync_of_every_region_and_each_region_task_says_so() {
    let s = Server::start().await;
    let id = s.create_secret("aliyun", "LTAI5tStopAll001").await;
    *s.listing.lock().unwrap() = (100_000, Duration::from_millis(20));
    let (status, started) = s
        .call(
            Method::POST,
            &format!("/secrets/{id}/sync"),
            Some(json!({"region": "*", "wait": false})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let task_id = started["task_id"].as_str().unwrap().to_owned();
    // Both regions running, with live counters summed into their task's.
    let regions = loop {
        let (_, list) = s
            .call(Method::GET, &format!("/tasks?parent_id={task_id}"), None)
            .await;
        let running = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["state"] == "running" && r["counters"]["stored"].as_u64() > Some(0))
            .count();
        if running == 2 {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let (_, parent) = s
        .call(Method::GET, &format!("/tasks/{task_id}"), None)
        .await;
    assert_eq!(parent["state"], "running", "{parent}");
    assert!(
        parent["counters"]["stored"].as_u64().unwrap() > 0,
        "live: {parent}"
    );

    tokio::time::timeout(Duration::from_secs(30), s.api.shutdown())
        .await
        .expect("shutdown waits for the region tasks and ends");
    for run in regions["items"].as_array().unwrap() {
        let (_, task) = s
            .call(
                Method::GET,
                &format!("/tasks/{}", run["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(task["state"], "interrupted", "{task}");
        assert!(task["finished_at"].is_string(), "{task}");
        assert!(task["counters"]["stored"].as_u64().unwrap() > 0, "{task}");
    }
    let (_, parent) = s
        .call(Method::GET, &format!("/tasks/{task_id}"), None)
        .await;
    assert_eq!(parent["state"], "interrupted", "{parent}");
}

#[tokio::test]
async fn every_documented_route_is_served_and_nothing_else() {
    let s = Server::start().await;
    let (status, doc) = s.call(Method::GET, "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let mut documented = 0;
    let mut routed = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let ops = ops.as_object().unwrap();
        let concrete = path
            .replace("{id}", "x")
            .replace("{vendor}", "aliyun")
            .replace("{instance_id}", "x");
        documented += ops.len();
        for m in &methods {
            let request = (m == Method::POST).then(|| json!({}));
            let (status, body) = s.call(m.clone(), &concrete, request.clone()).await;
            let served =
                status != StatusCode::METHOD_NOT_ALLOWED && body["message"] != "no such route";
            let op = &ops.get(&m.as_str().to_lowercase());
            assert_eq!(served, op.is_some(), "{m} {path}: {status} {body}");
            let Some(op) = op else { continue };
            routed += 1;
            // Documented as needing the token exactly when the router asks for it.
            let (status, _) = s.call_with(m.clone(), &concrete, request, None).await;
            let secured = op["security"] == json!([{"bearer": []}]);
            assert_eq!(status == StatusCode::UNAUTHORIZED, secured, "{m} {path}");
        }
    }
    assert_eq!((documented, routed), (15, 15));
    let (status, body) = s.call(Method::GET, "/nowhere", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn the_bearer_scheme_matches_in_any_case_and_the_token_is_trimmed_alike() {
    let s = Server::start().await;
    for header in [
        format!("Bearer {TOKEN}"),
        format!("bearer {TOKEN}"),
        format!("BEARER  {TOKEN} "),
    ] {
        let status = s
            .http
            .get(format!("{}/secrets", s.base))
            .header("authorization", header.as_str())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK, "{header}");
    }
    for header in [
        format!("Basic {TOKEN}"),
        TOKEN.to_owned(),
        "Bearer".to_owned(),
    ] {
        let status = s
            .http
            .get(format!("{}/secrets", s.base))
            .header("authorization", header.as_str())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{header}");
    }
}

#[test]
fn an_empty_token_is_refused_at_start_up() {
    let syncer = || {
        Arc::new(Syncer::new(
            Arc::new(MemorySecretStore::new()),
            Arc::new(MemoryHostStore::new()),
            Arc::new(Cipher::new(Cipher::generate_key())),
            ProviderRegistry::new(),
        ))
    };
    for token in ["", "   "] {
        let e = Api::new(syncer(), token).unwrap_err();
        assert_eq!(e.field(), Some("token"), "{e}");
    }
}

#[tokio::test]
async fn a_500_names_a_request_id_and_carries_no_store_text() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let store = InstrumentedStore::new(MemoryHostStore::new()).with_failure_on_upsert(1);
    let s = Server::start_over(Arc::new(store)).await;
    let id = s.create_secret("aliyun", "LTAI5tFailingStore1").await;
    let (status, body) = s
        .call(
            Method::POST,
            &format!("/secrets/{id}/sync"),
            Some(json!({"region": "cn-hangzhou"})),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let request_id = body["request_id"].as_str().expect("a request id");
    assert_eq!(
        body["message"].as_str(),
        Some(format!("internal error (request id {request_id})").as_str())
    );
    assert!(!body.to_string().contains("injected failure"), "{body}");
    // The details are in the log, under the id the answer names.
    let logged = logs.text();
    assert!(
        logged.lines().any(|l| l.contains("ERROR")
            && l.contains(request_id)
            && l.contains("injected failure of upsert 1")),
        "{logged}"
    );
    // The failed task says no more.
    let (_, tasks) = s.call(Method::GET, "/tasks", None).await;
    assert!(!tasks.to_string().contains("injected failure"), "{tasks}");
}

#[tokio::test]
async fn a_store_failure_mid_run_is_answered_and_kept_without_its_text() {
    let logs = Logs::default();
    let _guard = logs.capture();
    // 20 pages: at most 5 go into one upsert, so the second upsert fails after pages
    // were stored, and the run ends partial with a store error.
    let store = InstrumentedStore::new(MemoryHostStore::new()).with_failure_on_upsert(2);
    let s = Server::start_over(Arc::new(store)).await;
    s.listing.lock().unwrap().0 = 2000;
    let id = s.create_secret("aliyun", "LTAI5tPartialStore1").await;
    let (status, answer) = s
        .call(
            Method::POST,
            &format!("/secrets/{id}/sync"),
            Some(json!({"region": "cn-hangzhou", "details": "none"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["complete"], false, "{answer}");
    let error = &answer["error"];
    assert_eq!(error["kind"], "store", "{answer}");
    let request_id = error["request_id"].as_str().expect("a request id");
    assert_eq!(
        error["message"].as_str(),
        Some(format!("internal error (request id {request_id})").as_str())
    );
    let (_, tasks) = s.call(Method::GET, "/tasks", None).await;
    assert_eq!(tasks["items"][0]["error"], *error, "{tasks}");
    assert_eq!(tasks["items"][0]["state"], "partial", "{tasks}");
    for text in [answer.to_string(), tasks.to_string()] {
        assert!(!text.contains("injected failure"), "{text}");
    }
    let logged = logs.text();
    assert!(
        logged
            .lines()
            .any(|l| l.contains(request_id) && l.contains("injected failure of upsert 2")),
        "{logged}"
    );
}

/// Polls task `id` until it has finished; its view.
async fn finished(s: &Server, id: &str) -> Value {
    for _ in 0..1000 {
        let (status, task) = s.call(Method::GET, &format!("/tasks/{id}"), None).await;
        assert_eq!(status, StatusCode::OK);
        if task["finished_at"].is_string() {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {id} did not finish");
}

#[tokio::test]
async fn syncs_past_the_cap_get_429_with_retry_after() {
    let s = Server::start_with(Arc::new(MemoryHostStore::new()), 2).await;
    let first = s.create_secret("aliyun", "LTAI5tCapFirst01").await;
    let second = s.create_secret("tencent", "AKIDCapSecond001").await;
    // A sync of an unknown secret takes a slot only while it is checked.
    let (status, body) = s
        .call(
            Method::POST,
            "/secrets/no-such-secret/sync",
            Some(json!({"region": "cn-hangzhou"})),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // Two syncs held open at their first page take both slots.
    s.gate.send_replace(false);
    let mut held = Vec::new();
    for region in ["cn-beijing", "cn-hangzhou"] {
        let (status, started) = s
            .call(
                Method::POST,
                &format!("/secrets/{first}/sync"),
                Some(json!({"region": region, "wait": false})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");
        held.push(started["task_id"].as_str().unwrap().to_owned());
    }
    for wait in [true, false] {
        let response = s
            .http
            .post(format!("{}/secrets/{second}/sync", s.base))
            .bearer_auth(TOKEN)
            .json(&json!({"region": "cn-hangzhou", "wait": wait}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "5");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "rate_limited", "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("2 syncs are running"),
            "{body}"
        );
    }
    let (_, tasks) = s.call(Method::GET, "/tasks", None).await;
    assert_eq!(tasks["total"], 2, "a refused sync leaves no task: {tasks}");

    s.gate.send_replace(true);
    for task in &held {
        let view = finished(&s, task).await;
        assert_eq!(view["state"], "succeeded", "{view}");
    }
    let (status, body) = s
        .call(
            Method::POST,
            &format!("/secrets/{second}/sync"),
            Some(json!({"region": "cn-hangzhou"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a slot is free again: {body}");
}

#[tokio::test]
async fn a_waiting_client_that_leaves_gets_no_answer_and_the_task_keeps_counters_only() {
    let s = Server::start().await;
    let id = s.create_secret("aliyun", "LTAI5tLeaver0001").await;
    s.gate.send_replace(false);
    let request = s
        .http
        .post(format!("{}/secrets/{id}/sync", s.base))
        .bearer_auth(TOKEN)
        .json(&json!({"region": "cn-hangzhou"}))
        .timeout(Duration::from_millis(200))
        .send();
    assert!(request.await.unwrap_err().is_timeout());
    s.gate.send_replace(true);
    let (_, tasks) = s.call(Method::GET, "/tasks", None).await;
    let view = finished(&s, tasks["items"][0]["id"].as_str().unwrap()).await;
    assert_eq!(view["counters"]["created"], 250, "the run went on: {view}");
    assert_eq!(view["failed_details"], json!([]), "{view}");
}

#[tokio::test]
async fn finished_tasks_keep_no_per_host_successes_and_are_listed_by_page() {
    let s = Server::start().await;
    let id = s.create_secret("aliyun", "LTAI5tTrimmed001").await;
    let mut task_ids = Vec::new();
    for region in ["cn-beijing", "cn-hangzhou"] {
        let (status, answer) = s
            .call(
                Method::POST,
                &format!("/secrets/{id}/sync"),
                Some(json!({"region": region})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        // The waiting request gets every detail, as the original API answered.
        assert_eq!(answer["details"].as_array().unwrap().len(), 250);
    }
    let (_, page) = s.call(Method::GET, "/tasks?page_size=1", None).await;
    assert_eq!(page["total"], 2);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    task_ids.push(items[0]["id"].as_str().unwrap().to_owned());
    let (_, page) = s
        .call(Method::GET, "/tasks?page_size=1&page_number=2", None)
        .await;
    task_ids.push(page["items"][0]["id"].as_str().unwrap().to_owned());
    assert_ne!(task_ids[0], task_ids[1]);
    for task in &task_ids {
        let (_, view) = s.call(Method::GET, &format!("/tasks/{task}"), None).await;
        assert_eq!(view["counters"]["created"], 250, "{view}");
        assert_eq!(
            view["failed_details"].as_array().unwrap().len(),
            0,
            "a finished task keeps failed details only"
        );
    }
    let (status, body) = s.call(Method::GET, "/tasks?page_size=0", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_input");
}

#[tokio::test]
async fn metrics_answer_prometheus_text_with_the_runs_and_the_stored_hosts() {
    let s = Server::start_with_metrics().await;
    let url = format!("{}/metrics", s.base);
    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the token is required"
    );

    let api_key = "LTAI5tMetrics0001";
    let id = s.create_secret("aliyun", api_key).await;
    let (status, r) = s
        .call(
            Method::POST,
            &format!("/secrets/{id}/sync"),
            Some(json!({"region": "cn-beijing", "details": "none"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["created"], 250);

    let r = s.http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    for expected in [
        "# TYPE cmdb_sync_runs_total counter",
        r#"cmdb_sync_runs_total{vendor="aliyun",resource_type="host",trigger="api",outcome="succeeded"} "#,
        "# TYPE cmdb_sync_run_duration_seconds histogram",
        r#"cmdb_sync_run_duration_seconds_bucket{vendor="aliyun",resource_type="host",le="1"} "#,
        r#"cmdb_sync_hosts_total{vendor="aliyun",outcome="created"} "#,
        &format!(
            r#"cmdb_sync_last_success_timestamp_seconds{{secret_id="{id}",vendor="aliyun",region="cn-beijing",resource_type="host"}} "#
        ),
        "# HELP cmdb_hosts Active stored hosts by vendor and status",
        "# TYPE cmdb_hosts gauge",
        // This server's store, counted at the scrape.
        r#"cmdb_hosts{vendor="aliyun",status="RUNNING"} 250"#,
        r#"cmdb_hosts{vendor="aliyun",status="STOPPED"} 0"#,
        r#"cmdb_hosts{vendor="huawei",status="RUNNING"} 0"#,
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    let at: f64 = text
        .lines()
        .find(|l| l.starts_with("cmdb_sync_last_success_timestamp_seconds") && l.contains(&id))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (at - chrono::Utc::now().timestamp() as f64).abs() < 600.0,
        "{at}"
    );
    // No label carries a credential, nor the token.
    for forbidden in [API_SECRET, api_key, TOKEN] {
        assert!(!text.contains(forbidden), "{forbidden:?} in:\n{text}");
    }
}

#[tokio::test]
async fn a_secret_whose_sync_runs_here_cannot_be_deleted_until_it_ends() {
    let s = Server::start().await;
    let id = s.create_secret("aliyun", "LTAI5tBusyDelete1").await;
    s.gate.send_replace(false);
    let (status, started) = s
        .call(
            Method::POST,
            &format!("/secrets/{id}/sync"),
            Some(json!({"region": "cn-hangzhou", "wait": false})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let task = started["task_id"].as_str().unwrap().to_owned();
    let (status, body) = s
        .call(Method::DELETE, &format!("/secrets/{id}"), None)
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    assert!(body["message"].as_str().unwrap().contains(&task), "{body}");
    let (status, _) = s.call(Method::GET, &format!("/secrets/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "still there");

    s.gate.send_replace(true);
    let view = finished(&s, &task).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    let (status, _) = s
        .call(Method::DELETE, &format!("/secrets/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Its hosts and its task stay.
    let (_, hosts) = s
        .call(Method::GET, &format!("/hosts?secret_id={id}"), None)
        .await;
    assert_eq!(hosts["total"], 250, "{hosts}");
    let (status, _) = s.call(Method::GET, &format!("/tasks/{task}"), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_sync_of_every_region_runs_each_allowed_region_and_answers_a_summary_per_region() {
    let s = Server::start().await;
    let id = s.create_secret("aliyun", "LTAI5tWholeAcct01").await;
    let (status, r) = s
        .call(
            Method::POST,
            &format!("/secrets/{id}/sync"),
            Some(json!({"region": "*", "details": "none"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(
        (r["created"].as_u64(), r["complete"].as_bool()),
        (Some(500), Some(true))
    );
    let regions: Vec<(&str, u64)> = r["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["region"].as_str().unwrap(),
                g["created"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(regions, [("cn-hangzhou", 250), ("cn-beijing", 250)]);

    // No region: the whole account too, for a vendor with regions; in the background.
    let (status, r) = s
        .call(
            Method::POST,
            &format!("/secrets/{id}/sync"),
            Some(json!({"wait": false, "details": "none"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{r}");
    let task = r["task_id"].as_str().unwrap().to_owned();
    let done = loop {
        let (status, t) = s.call(Method::GET, &format!("/tasks/{task}"), None).await;
        assert_eq!(status, StatusCode::OK, "{t}");
        if t["state"] != "running" {
            break t;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["region"], "*", "{done}");
    assert_eq!(done["counters"]["unchanged"], 500, "{done}");
    let (status, list) = s
        .call(
            Method::GET,
            &format!("/tasks?secret_id={id}&region=*"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 2, "{list}");

    // Each region is a task of its own, whose parent is the whole-account task.
    let (status, regions) = s
        .call(Method::GET, &format!("/tasks?parent_id={task}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{regions}");
    assert_eq!(regions["total"], 2, "{regions}");
    let mut names = Vec::new();
    for run in regions["items"].as_array().unwrap() {
        assert_eq!(run["parent_id"], task.as_str(), "{run}");
        assert_eq!(run["state"], "succeeded", "{run}");
        assert_eq!(run["trigger"], "api", "{run}");
        assert_eq!(run["counters"]["unchanged"], 250, "{run}");
        assert_eq!(run["counters"]["pages"], 3, "{run}");
        assert!(
            run["runner"].as_str().is_some_and(|r| r.contains(':')),
            "{run}"
        );
        names.push(run["region"].as_str().unwrap().to_owned());
    }
    names.sort();
    assert_eq!(names, ["cn-beijing", "cn-hangzhou"]);
    let (_, all) = s
        .call(Method::GET, &format!("/tasks?secret_id={id}"), None)
        .await;
    assert_eq!(
        all["total"], 6,
        "two whole-account tasks of two regions each: {all}"
    );
}
