//! The whole product over real HTTP: the API router on a random port over a SQLite store,
//! the built-in providers, and the four simulated clouds.

use std::sync::Arc;

use serde_json::{json, Value};

use cmdb::api::Api;
use cmdb::secret::Cipher;
use cmdb::store_sql::SqlStore;
use cmdb::sync::{ProviderRegistry, SyncOptions, Syncer};
use cmdb_testkit::aliyun::{self, SimulatedAliyun};
use cmdb_testkit::huawei::{self, SimulatedHuawei};
use cmdb_testkit::tencent::{self, SimulatedTencent};
use cmdb_testkit::vsphere::SimulatedVsphere;

const TOKEN: &str = "e2e-token";

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value, String) {
    let mut req = http.request(method, url).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, value, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_vendor_syncs_through_the_api_into_sqlite() {
    let ali = SimulatedAliyun::start("cn-hangzhou", 230).await;
    let tc = SimulatedTencent::start(180).await;
    let hw = SimulatedHuawei::start("cn-north-4", 260).await;
    let vc = SimulatedVsphere::start(&[("dc-a", 40), ("dc-b", 25)]).await;

    let store = Arc::new(SqlStore::connect("sqlite::memory:").await.unwrap());
    let syncer = Syncer::new(
        store.clone(),
        store.clone(),
        Arc::new(Cipher::new(Cipher::generate_key())),
        ProviderRegistry::with_builtin_providers(),
    )
    .with_options(SyncOptions::default().with_private_addresses(true));
    // The only recorder of this test binary (the other tests run the server's binary).
    let metrics = cmdb::api::prometheus_builder().install_recorder().unwrap();
    let api = Api::new(Arc::new(syncer), TOKEN)
        .unwrap()
        .with_metrics(metrics);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = api.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let http = reqwest::Client::new();

    let clouds = [
        (
            "aliyun",
            aliyun::DEFAULT_ACCESS_KEY_ID,
            aliyun::DEFAULT_ACCESS_KEY_SECRET,
            ali.uri(),
            "cn-hangzhou",
            230,
        ),
        (
            "tencent",
            tencent::SECRET_ID,
            tencent::SECRET_KEY,
            tc.uri(),
            tencent::REGION,
            180,
        ),
        (
            "huawei",
            huawei::ACCESS_KEY,
            huawei::SECRET_KEY,
            hw.uri(),
            "cn-north-4",
            260,
        ),
        (
            "vsphere",
            SimulatedVsphere::USER,
            SimulatedVsphere::PASSWORD,
            vc.uri(),
            "",
            65,
        ),
    ];
    let mut answers = String::new();
    for (vendor, key, secret, address, region, expected) in clouds {
        let (status, created, text) = call(
            &http,
            reqwest::Method::POST,
            format!("{base}/secrets"),
            Some(json!({
                "vendor": vendor, "description": format!("{vendor} e2e"), "api_key": key,
                "api_secret": secret, "allowed_regions": ["*"], "request_rate": 500,
                "address": address,
                // The simulated vCenter listens on plain http on 127.0.0.1.
                "allow_insecure_http": vendor == "vsphere",
            })),
        )
        .await;
        assert_eq!(status, 201, "{text}");
        answers.push_str(&text);
        let id = created["id"].as_str().unwrap().to_owned();

        let (status, r, text) = call(
            &http,
            reqwest::Method::POST,
            format!("{base}/secrets/{id}/sync"),
            Some(json!({"region": region, "details": "failed"})),
        )
        .await;
        assert_eq!(status, 200, "{vendor}: {text}");
        answers.push_str(&text);
        assert_eq!(r["complete"], true, "{vendor}: {text}");
        assert_eq!(r["created"], expected, "{vendor}: {text}");
        assert_eq!(r["total_failed"], 0, "{vendor}: {text}");

        let (status, hosts, text) = call(
            &http,
            reqwest::Method::GET,
            format!("{base}/hosts?vendor={vendor}&secret_id={id}&page_size=1000"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        answers.push_str(&text);
        assert_eq!(hosts["total"], expected, "{vendor}");
        let first = &hosts["items"][0];
        assert_eq!(first["secret_id"], id.as_str());
        let path = format!(
            "{base}/hosts/{vendor}/{}",
            first["instance_id"].as_str().unwrap()
        );
        let (status, one, _) = call(&http, reqwest::Method::GET, path, None).await;
        assert_eq!((status, &one["instance_id"]), (200, &first["instance_id"]));
    }

    // A vendor that now rejects the key answers 502 with the vendor's code, and nothing
    // is released.
    ali.set_credentials(aliyun::DEFAULT_ACCESS_KEY_ID, "rotated-elsewhere");
    let (_, list, _) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/secrets?keywords=aliyun"),
        None,
    )
    .await;
    let ali_id = list["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, err, text) = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/secrets/{ali_id}/sync"),
        Some(json!({"region": "cn-hangzhou"})),
    )
    .await;
    assert_eq!(status, 502, "{text}");
    assert_eq!(err["code"], "unauthenticated");
    let (_, active, _) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/hosts?vendor=aliyun&released=false"),
        None,
    )
    .await;
    assert_eq!(active["total"], 230, "a failed sync releases nothing");

    // The metrics of all this, as Prometheus scrapes them.
    let (status, _, text) =
        call(&http, reqwest::Method::GET, format!("{base}/metrics"), None).await;
    assert_eq!(status, 200, "{text}");
    let vcenter = vc.uri().trim_start_matches("http://").to_owned();
    let listed = [
        ("aliyun", "DescribeInstances", "cn-hangzhou"),
        ("tencent", "DescribeInstances", tencent::REGION),
        ("huawei", "ListServersDetails", "cn-north-4"),
        ("vsphere", "RetrievePropertiesEx", vcenter.as_str()),
    ];
    for (vendor, action, region) in listed {
        let count = format!(
            r#"cmdb_vendor_request_duration_seconds_count{{vendor="{vendor}",action="{action}",region="{region}",status_class="2xx"}} "#
        );
        assert!(text.contains(&count), "no {count:?} in:\n{text}");
        let runs = format!(
            r#"cmdb_sync_runs_total{{vendor="{vendor}",resource_type="host",trigger="api",outcome="succeeded"}} 1"#
        );
        assert!(text.contains(&runs), "no {runs:?} in:\n{text}");
    }
    for expected in [
        r#"cmdb_sync_runs_total{vendor="aliyun",resource_type="host",trigger="api",outcome="failed"} 1"#,
        r#"cmdb_vendor_request_duration_seconds_count{vendor="aliyun",action="DescribeInstances",region="cn-hangzhou",status_class="4xx"} 1"#,
        r#"cmdb_sync_hosts_total{vendor="huawei",outcome="created"} 260"#,
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    // The stored hosts, counted at the scrape, add up to each vendor's.
    for (vendor, expected) in [
        ("aliyun", 230),
        ("tencent", 180),
        ("huawei", 260),
        ("vsphere", 65),
    ] {
        let prefix = format!(r#"cmdb_hosts{{vendor="{vendor}","#);
        let total: f64 = text
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert_eq!(total, f64::from(expected), "{vendor}:\n{text}");
    }
    for key in [
        aliyun::DEFAULT_ACCESS_KEY_ID,
        tencent::SECRET_ID,
        huawei::ACCESS_KEY,
        SimulatedVsphere::USER,
    ] {
        assert!(!text.contains(key), "a metric carries the API key {key}");
    }
    // The secrets are looked for in every answer below.
    answers.push_str(&text);

    for secret in [
        aliyun::DEFAULT_ACCESS_KEY_SECRET,
        tencent::SECRET_KEY,
        huawei::SECRET_KEY,
        SimulatedVsphere::PASSWORD,
    ] {
        assert!(!answers.contains(secret), "an answer carried an API secret");
    }
}

/// The `server` example binary `cargo test` builds next to this test's own binary.
fn server_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().unwrap().parent().unwrap();
    let bin = target
        .join("examples")
        .join(format!("server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is built by `cargo test` (or `cargo build --example server --features full`)",
        bin.display()
    );
    bin
}

/// The server example with `env` (over an in-memory database), its output piped.
fn server_command(env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(server_binary());
    command
        .env_clear()
        .env("CMDB_DATABASE_URL", "sqlite::memory:")
        .env("CMDB_LISTEN", "127.0.0.1:0")
        .env(
            "CMDB_ENCRYPT_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Starts the server example with `env`; the process, its base URL, read from its
/// `listening` log line, and its output up to that line.
async fn start_server(env: &[(&str, &str)]) -> (tokio::process::Child, String, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = server_command(env).spawn().expect("the server starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let address = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if let Some(at) = line.find("address=") {
                return line[at + "address=".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_owned();
            }
        }
        panic!("the server exited before listening: {seen}");
    })
    .await
    .expect("the server listens within a minute");
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{address}"), seen)
}

#[tokio::test]
async fn the_server_example_refuses_to_start_without_a_token() {
    for (env, says) in [
        (vec![], "CMDB_API_ALLOW_UNAUTHENTICATED=true"),
        (
            vec![("CMDB_API_TOKEN", "   ")],
            "CMDB_API_TOKEN is set but blank",
        ),
        (
            vec![("CMDB_API_ALLOW_UNAUTHENTICATED", "false")],
            "CMDB_API_TOKEN is not set",
        ),
        (
            vec![("CMDB_API_ALLOW_UNAUTHENTICATED", "yes please")],
            "must be true or false",
        ),
    ] {
        let out = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            server_command(&env).output(),
        )
        .await
        .expect("the server exits at once")
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{env:?} started: {stdout}");
        assert!(stderr.contains(says), "{env:?}: {stderr}");
        assert!(!stdout.contains("listening"), "{env:?}: {stdout}");
    }
}

#[tokio::test]
async fn the_server_example_serves_with_its_token_or_unauthenticated_only_when_told() {
    let http = reqwest::Client::new();
    let (mut server, base, output) = start_server(&[("CMDB_API_TOKEN", "example-token")]).await;
    assert!(!output.contains("WITHOUT AUTHENTICATION"), "{output}");
    let status = |r: reqwest::Response| r.status().as_u16();
    let get = |auth: Option<&str>| {
        let mut r = http.get(format!("{base}/secrets"));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    assert_eq!(status(get(None).await.unwrap()), 401);
    assert_eq!(status(get(Some("Bearer wrong")).await.unwrap()), 401);
    assert_eq!(
        status(get(Some("bearer example-token")).await.unwrap()),
        200
    );
    assert_eq!(
        status(get(Some("BEARER example-token")).await.unwrap()),
        200
    );
    let metrics = http
        .get(format!("{base}/metrics"))
        .bearer_auth("example-token")
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"cmdb_hosts{vendor="aliyun",status="RUNNING"} 0"#),
        "{text}"
    );
    server.start_kill().unwrap();
    let _ = server.wait().await;

    let (mut server, base, output) =
        start_server(&[("CMDB_API_ALLOW_UNAUTHENTICATED", "true")]).await;
    assert!(output.contains("WITHOUT AUTHENTICATION"), "{output}");
    let r = http.get(format!("{base}/secrets")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    server.start_kill().unwrap();
    let _ = server.wait().await;
}
