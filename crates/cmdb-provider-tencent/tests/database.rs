//! The CDB database provider over HTTP: raw wiremock mocks for the exact requests, and the
//! TC3-checking CDB simulator (`cmdb_testkit::tencent_cdb`) for whole listings.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use cmdb_core::{
    DatabaseEndpoint, DatabaseEngine, DatabasePage, DatabaseProvider, DatabaseStatus, ErrorKind,
    PayMode, Vendor,
};
use cmdb_provider_tencent::{TencentBuilder, TencentDatabaseProvider};
use cmdb_secret::Credentials;
use cmdb_testkit::tencent_cdb::{SimulatedTencentCdb, SECRET_ID, SECRET_KEY};
use futures::StreamExt;
use serde_json::json;
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const REGION: &str = "ap-guangzhou";

static IO: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
});

fn builder(uri: &str, secret_key: &str) -> TencentBuilder {
    TencentBuilder::new()
        .with_credentials(Credentials::new(SECRET_ID, secret_key))
        .with_region(REGION)
        .with_endpoint(uri)
        .with_io_runtime(IO.handle().clone())
        .with_jitter_seed(11)
}

fn for_sim(sim: &SimulatedTencentCdb) -> TencentBuilder {
    builder(&sim.uri(), SECRET_KEY)
}

async fn collect(provider: &TencentDatabaseProvider) -> Vec<cmdb_core::Result<DatabasePage>> {
    provider.pages().collect().await
}

fn ids(pages: &[cmdb_core::Result<DatabasePage>]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| &p.as_ref().unwrap().databases)
        .map(|d| d.instance_id.clone())
        .collect()
}

#[tokio::test]
async fn requests_are_signed_for_the_cdb_service() {
    let server = MockServer::start().await;
    let now = 1_709_164_800; // 2024-02-29T00:00:00Z
    let scope = format!("TC3-HMAC-SHA256 Credential={SECRET_ID}/2024-02-29/cdb/tc3_request, SignedHeaders=content-type;host, Signature=");
    for (offset, count) in [(0u64, 2u64), (2, 1)] {
        let scope = scope.clone();
        let items: Vec<_> = (offset..offset + count)
            .map(|i| json!({"InstanceId": format!("cdb-{i}"), "Status": 1}))
            .collect();
        Mock::given(method("POST"))
            .and(path("/"))
            .and(header("x-tc-action", "DescribeDBInstances"))
            .and(header("x-tc-version", "2017-03-20"))
            .and(header("x-tc-region", REGION))
            .and(header("x-tc-timestamp", now.to_string().as_str()))
            .and(body_string(format!(r#"{{"Offset":{offset},"Limit":2}}"#)))
            .and(move |r: &Request| {
                r.headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with(&scope) && v.len() == scope.len() + 64)
            })
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "Response": {"TotalCount": 3, "Items": items, "RequestId": "rid"}
            })))
            .expect(1)
            .mount(&server)
            .await;
    }
    let provider = builder(&server.uri(), "key")
        .with_clock(move || now)
        .with_database_page_size(2)
        .build_databases()
        .unwrap();
    let pages = collect(&provider).await;
    assert_eq!(ids(&pages), ["cdb-0", "cdb-1", "cdb-2"]);
}

#[tokio::test]
async fn every_instance_is_listed_once() {
    let sim = SimulatedTencentCdb::start(REGION, 2345).await;
    let provider = for_sim(&sim).build_databases().unwrap();
    assert_eq!(
        (provider.vendor(), provider.region()),
        (Vendor::Tencent, REGION)
    );
    let pages = collect(&provider).await;
    assert_eq!(pages.len(), 2, "2000 a page");
    for page in &pages {
        let page = page.as_ref().unwrap();
        assert_eq!(page.total, Some(2345));
        assert!(page.failed.is_empty(), "{:?}", page.failed);
        assert_eq!(page.moved, None);
    }
    let listed = ids(&pages);
    assert_eq!(listed.len(), 2345);
    assert_eq!(listed.iter().collect::<BTreeSet<_>>().len(), 2345);
    assert_eq!(listed, sim.instance_ids());
    assert_eq!(sim.listings(), 2);
}

#[tokio::test]
async fn one_instance_maps_field_by_field() {
    let sim = SimulatedTencentCdb::start(REGION, 12).await;
    let provider = for_sim(&sim).build_databases().unwrap();
    let all: Vec<_> = collect(&provider)
        .await
        .into_iter()
        .flat_map(|p| p.unwrap().databases)
        .collect();
    let by_id = |i: u64| {
        all.iter()
            .find(|d| d.instance_id == sim.instance_id(i))
            .unwrap()
            .clone()
    };

    // Number 5: a pay-as-you-go read-only instance of number 4, being created, with a
    // public endpoint and no tags.
    let db = by_id(5);
    assert_eq!(db.vendor, Vendor::Tencent);
    assert_eq!(db.region, REGION);
    assert_eq!(db.name, "cdb-5");
    assert_eq!(db.zone.as_deref(), Some("ap-guangzhou-3"));
    assert_eq!(db.engine, DatabaseEngine::MySql);
    assert_eq!(db.engine_version.as_deref(), Some("8.0"));
    assert_eq!(db.status, DatabaseStatus::Creating);
    assert_eq!(db.raw_status, "0");
    assert_eq!(db.instance_class.as_deref(), Some("EXCLUSIVE"));
    assert_eq!(db.cpu, Some(2));
    assert_eq!(db.memory_mib, Some(4000));
    assert_eq!(db.storage_gb, Some(100));
    assert_eq!(db.storage_type.as_deref(), Some("LOCAL_SSD"));
    assert_eq!(
        db.endpoints,
        [
            DatabaseEndpoint::private("10.0.0.5", Some(3306)),
            DatabaseEndpoint::public("gz-cdb-00000005.sql.tencentcdb.com", Some(20_005)),
        ]
    );
    assert_eq!(db.vpc_id.as_deref(), Some("vpc-00000002"));
    assert_eq!(db.pay_mode, PayMode::Postpaid);
    // "2023-08-06 05:37:33" in China Standard Time.
    assert_eq!(db.created_at, Some("2023-08-05T21:37:33Z".parse().unwrap()));
    assert_eq!(db.expire_at, None, "the zero date is no expiry");
    assert!(db.tags.is_empty());
    assert_eq!(db.extra["role"], "readonly");
    assert_eq!(db.extra["InstanceType"], 3);
    assert_eq!(db.extra["primary_instance_id"], json!(sim.instance_id(4)));
    assert_eq!(db.extra["ProjectId"], 1_000_000);

    // Number 0: prepaid, running, private only, tagged.
    let db = by_id(0);
    assert_eq!(
        (db.status, db.raw_status.as_str()),
        (DatabaseStatus::Running, "1")
    );
    assert_eq!(db.pay_mode, PayMode::Prepaid);
    assert_eq!(db.expire_at, Some("2026-07-31T16:37:33Z".parse().unwrap()));
    assert_eq!(db.endpoints.len(), 1);
    assert_eq!(db.tags["env"], "sim");
    assert_eq!(db.tags["序号"], "0");
    assert_eq!(db.extra["role"], "primary");
    assert_eq!(by_id(2).status, DatabaseStatus::Isolating);
    assert_eq!(by_id(3).status, DatabaseStatus::Isolated);
}

#[tokio::test]
async fn an_instance_that_does_not_map_is_a_failed_record() {
    let sim = SimulatedTencentCdb::start(REGION, 20).await;
    let bad = sim.instance_id(7);
    assert!(sim.update_instance(&bad, |v| v["CreateTime"] = json!("yesterday")));
    let provider = for_sim(&sim).build_databases().unwrap();
    let pages = collect(&provider).await;
    assert_eq!(ids(&pages).len(), 19);
    let failed = &pages[0].as_ref().unwrap().failed;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].instance_id.as_deref(), Some(bad.as_str()));
    assert!(failed[0].reason.contains("CreateTime"), "{failed:?}");
}

#[tokio::test]
async fn a_listing_that_moves_between_pages_is_flagged() {
    let sim = SimulatedTencentCdb::start(REGION, 250).await;
    let provider = for_sim(&sim)
        .with_database_page_size(100)
        .build_databases()
        .unwrap();
    let mut stream = provider.pages();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!((first.databases.len(), first.moved), (100, None));
    // Released after the first page: every later instance moves one place up, and
    // one of them is never listed.
    assert!(sim.remove_instance(&sim.instance_id(10)));
    let mut rest = Vec::new();
    while let Some(page) = stream.next().await {
        rest.push(page.unwrap());
    }
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0].moved, None);
    let moved = rest[1].moved.as_deref().expect("the last page is flagged");
    assert!(moved.contains("250") && moved.contains("249"), "{moved}");
    let skipped = sim.instance_id(100);
    assert!(
        rest.iter()
            .flat_map(|p| &p.databases)
            .all(|d| d.instance_id != skipped),
        "the instance that moved onto the first page is never listed"
    );
}

#[tokio::test]
async fn lookup_by_id_answers_only_the_live_instances() {
    let sim = SimulatedTencentCdb::start(REGION, 300).await;
    let wanted: Vec<String> = (0..150).map(|i| sim.instance_id(i)).collect();
    for i in [0, 99, 100] {
        assert!(sim.remove_instance(&sim.instance_id(i)));
    }
    let provider = for_sim(&sim).build_databases().unwrap();
    let pages: Vec<_> = provider.lookup(wanted.clone()).unwrap().collect().await;
    assert_eq!(pages.len(), 2, "100 ids a request");
    let found: BTreeSet<String> = ids(&pages).into_iter().collect();
    let live: BTreeSet<String> = wanted
        .into_iter()
        .filter(|id| sim.instance(id).is_some())
        .collect();
    assert_eq!(found.len(), 147);
    assert_eq!(found, live);
    assert_eq!((sim.lookups(), sim.listings()), (2, 0));
}

#[tokio::test]
async fn throttling_and_gateway_errors_are_retried_and_the_listing_completes() {
    let sim = SimulatedTencentCdb::start(REGION, 500).await;
    sim.throttle_every(2);
    sim.fail_next(1, 502);
    let provider = for_sim(&sim)
        .with_database_page_size(100)
        .build_databases()
        .unwrap();
    let pages = collect(&provider).await;
    assert!(pages.iter().all(|p| p.is_ok()), "{pages:?}");
    assert_eq!(ids(&pages).len(), 500);
    let stats = provider.client().http().stats();
    assert!(stats.throttled >= 2 && stats.retries >= 3, "{stats:?}");
}

#[tokio::test]
async fn a_wrong_key_is_unauthenticated_and_not_retried() {
    let sim = SimulatedTencentCdb::start(REGION, 5).await;
    let provider = builder(&sim.uri(), "not-the-key")
        .build_databases()
        .unwrap();
    let pages = collect(&provider).await;
    assert_eq!(pages.len(), 1);
    let e = pages.into_iter().next().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable());
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("AuthFailure.SignatureFailure")
    );
    assert_eq!(sim.requests(), 1, "never retried");
}

#[tokio::test]
async fn temporary_credentials_send_their_token() {
    let sim = SimulatedTencentCdb::start(REGION, 30).await;
    let token = "tc-simulated-cdb-sts-token";
    sim.set_session_token(Some(token));
    let with = |token: Option<&str>| {
        let mut credentials = Credentials::new(SECRET_ID, SECRET_KEY);
        if let Some(t) = token {
            credentials = credentials.with_session_token(t);
        }
        for_sim(&sim)
            .with_credentials(credentials)
            .build_databases()
            .unwrap()
    };
    assert_eq!(ids(&collect(&with(Some(token))).await).len(), 30);
    let before = sim.requests();
    let e = collect(&with(None)).await.remove(0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert_eq!(sim.requests() - before, 1, "not retried");
}
