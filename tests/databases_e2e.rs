//! Database instances (RDS) over real HTTP: the API router on a random port over a
//! SQLite store, the built-in providers, and the three simulated RDS APIs. A binary of
//! its own: the metrics of `api_e2e` count that binary's syncs only.

mod common;

use std::sync::Arc;

use serde_json::{json, Value};

use cmdb::api::Api;
use cmdb::secret::Cipher;
use cmdb::store_sql::SqlStore;
use cmdb::sync::{ProviderRegistry, SyncOptions, Syncer};

const TOKEN: &str = "rds-e2e-token";

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value, String) {
    let (status, text) = common::api_call(http, TOKEN, method.as_str(), url, body).await;
    let value = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, value, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_instances_sync_through_the_api_like_hosts() {
    use cmdb_testkit::aliyun_rds::SimulatedAliyunRds;
    use cmdb_testkit::huawei_rds::{self, SimulatedHuaweiRds};
    use cmdb_testkit::tencent_cdb::SimulatedTencentCdb;

    let ali = SimulatedAliyunRds::start("cn-hangzhou", 45).await;
    let tc = SimulatedTencentCdb::start("ap-guangzhou", 30).await;
    let hw = SimulatedHuaweiRds::start("cn-north-4", 120).await;
    let store = Arc::new(SqlStore::connect("sqlite::memory:").await.unwrap());
    let syncer = Syncer::new(
        store.clone(),
        store.clone(),
        Arc::new(Cipher::new(Cipher::generate_key())),
        ProviderRegistry::with_builtin_providers(),
    )
    .with_options(SyncOptions::default().with_private_addresses(true))
    .with_database_store(store.clone());
    // The only recorder of this test binary.
    let metrics = cmdb::api::prometheus_builder().install_recorder().unwrap();
    let api = Api::new(Arc::new(syncer), TOKEN)
        .unwrap()
        .with_metrics(metrics);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = api.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let http = reqwest::Client::new();
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;

    let clouds = [
        (
            "aliyun",
            ali.access_key_id(),
            ali.access_key_secret(),
            ali.uri(),
            "cn-hangzhou",
            45,
        ),
        (
            "tencent",
            tc.secret_id(),
            tc.secret_key(),
            tc.uri(),
            "ap-guangzhou",
            30,
        ),
        (
            "huawei",
            huawei_rds::ACCESS_KEY.to_owned(),
            huawei_rds::SECRET_KEY.to_owned(),
            hw.uri(),
            "cn-north-4",
            120,
        ),
    ];
    for (vendor, key, secret, address, region, expected) in clouds {
        let (status, created, text) = call(
            &http,
            post.clone(),
            format!("{base}/secrets"),
            Some(json!({
                "vendor": vendor, "description": format!("{vendor} rds"), "api_key": key,
                "api_secret": secret, "allowed_regions": [region], "request_rate": 500,
                "address": address,
            })),
        )
        .await;
        assert_eq!(status, 201, "{text}");
        let id = created["id"].as_str().unwrap().to_owned();
        let sync = json!({"region": region, "resource_type": "rds", "details": "failed"});
        let (status, r, text) = call(
            &http,
            post.clone(),
            format!("{base}/secrets/{id}/sync"),
            Some(sync.clone()),
        )
        .await;
        assert_eq!(status, 200, "{vendor}: {text}");
        assert_eq!(
            (r["created"].as_u64(), r["complete"].as_bool()),
            (Some(expected), Some(true)),
            "{vendor}: {r}"
        );
        let (status, again, _) = call(
            &http,
            post.clone(),
            format!("{base}/secrets/{id}/sync"),
            Some(sync),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            again["unchanged"].as_u64(),
            Some(expected),
            "{vendor}: {again}"
        );
        // The whole account: its allowed regions, each its own run.
        let (status, all, text) = call(
            &http,
            post.clone(),
            format!("{base}/secrets/{id}/sync"),
            Some(json!({"region": "*", "resource_type": "rds", "details": "none"})),
        )
        .await;
        assert_eq!(status, 200, "{vendor}: {text}");
        assert_eq!(
            all["regions"].as_array().map(Vec::len),
            Some(1),
            "{vendor}: {all}"
        );
        assert_eq!(all["unchanged"].as_u64(), Some(expected), "{vendor}: {all}");

        let (status, list, text) = call(
            &http,
            get.clone(),
            format!("{base}/databases?vendor={vendor}&secret_id={id}&page_size=1000"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{text}");
        assert_eq!(list["total"].as_u64(), Some(expected), "{vendor}: {text}");
        let first = &list["items"][0];
        assert_eq!(first["region"], region, "{first}");
        assert!(
            first["engine"].is_string() && first["status"].is_string(),
            "{first}"
        );
        assert!(first["released_at"].is_null(), "{first}");
        let one = first["instance_id"].as_str().unwrap();
        let (status, got, _) = call(
            &http,
            get.clone(),
            format!("{base}/databases/{vendor}/{one}"),
            None,
        )
        .await;
        assert_eq!((status, &got), (200, first), "{vendor}");
        let (_, hosts, _) = call(&http, get.clone(), format!("{base}/hosts"), None).await;
        assert_eq!(hosts["total"], 0, "instances are not hosts: {hosts}");
        let (_, tasks, _) = call(
            &http,
            get.clone(),
            format!("{base}/tasks?secret_id={id}"),
            None,
        )
        .await;
        assert_eq!(tasks["items"][0]["resource_type"], "rds", "{tasks}");
        assert_eq!(
            tasks["items"][0]["parent_id"], tasks["items"][1]["id"],
            "{tasks}"
        );
    }

    // vSphere has no database instances: a clear 400 naming the field.
    let (_, created, _) = call(
        &http,
        post.clone(),
        format!("{base}/secrets"),
        Some(json!({
            "vendor": "vsphere", "description": "lab", "api_key": "administrator@vsphere.local",
            "api_secret": "not-a-password", "allowed_regions": ["*"],
            "address": "https://vcenter.example.com/sdk",
        })),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let (status, body, text) = call(
        &http,
        post,
        format!("{base}/secrets/{id}/sync"),
        Some(json!({"resource_type": "rds"})),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("vsphere has no database instances"),
        "{text}"
    );
    let (status, _, text) = call(
        &http,
        get.clone(),
        format!("{base}/databases/nowhere/x"),
        None,
    )
    .await;
    assert_eq!(status, 400, "an unknown vendor: {text}");

    // Metrics: database runs and instances, apart from hosts.
    let (status, text) =
        common::api_call(&http, TOKEN, "GET", format!("{base}/metrics"), None).await;
    assert_eq!(status, 200, "{text}");
    for line in [
        // Two syncs of the region, and its run in the whole-account sync.
        r#"cmdb_sync_runs_total{vendor="aliyun",resource_type="rds",trigger="api",outcome="succeeded"} 3"#,
        r#"cmdb_sync_databases_total{vendor="aliyun",outcome="created"} 45"#,
        r#"cmdb_sync_databases_total{vendor="huawei",outcome="unchanged"} 240"#,
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    assert!(
        !text.contains("cmdb_sync_hosts_total{"),
        "no host was synced:\n{text}"
    );
    let running: u64 = text
        .lines()
        .filter(|l| l.starts_with(r#"cmdb_databases{vendor="tencent""#))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        running, 30,
        "every stored Tencent instance, by status:\n{text}"
    );
}
