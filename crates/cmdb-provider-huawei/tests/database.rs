//! The RDS database provider over HTTP: raw wiremock mocks for the exact requests, and the
//! gateway-checking RDS simulator (`cmdb_testkit::huawei_rds`) for whole listings.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use cmdb_core::{
    DatabaseEndpoint, DatabaseEngine, DatabasePage, DatabaseProvider, DatabaseStatus, ErrorKind,
    PayMode, Vendor,
};
use cmdb_provider_huawei::{HuaweiBuilder, HuaweiDatabaseProvider};
use cmdb_secret::Credentials;
use cmdb_testkit::huawei::SimulatedHuawei;
use cmdb_testkit::huawei_rds::{SimulatedHuaweiRds, ACCESS_KEY, SECRET_KEY};
use futures::StreamExt;
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

static IO: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
});

const REGION: &str = "cn-north-4";

fn builder(uri: &str, ak: &str, sk: &str) -> HuaweiBuilder {
    HuaweiBuilder::new()
        .with_credentials(Credentials::new(ak, sk))
        .with_region(REGION)
        .with_endpoint(uri)
        .with_io_runtime(IO.handle().clone())
        .with_jitter_seed(7)
}

fn for_sim(sim: &SimulatedHuaweiRds) -> HuaweiBuilder {
    builder(&sim.uri(), ACCESS_KEY, SECRET_KEY).with_project_id(sim.project_id())
}

async fn collect(provider: &HuaweiDatabaseProvider) -> Vec<cmdb_core::Result<DatabasePage>> {
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
async fn requests_are_signed_gets_with_record_offsets() {
    let server = MockServer::start().await;
    let project = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
    let host = format!("127.0.0.1:{}", server.address().port());
    for (offset, count) in [(0u64, 2u64), (2, 1)] {
        let host = host.clone();
        let instances: Vec<_> = (offset..offset + count)
            .map(|i| json!({"id": format!("db-{i}"), "status": "ACTIVE", "cpu": "2", "mem": "4"}))
            .collect();
        Mock::given(method("GET"))
            .and(path(format!("/v3/{project}/instances")))
            .and(query_param("offset", offset.to_string()))
            .and(query_param("limit", "2"))
            .and(header("x-project-id", project))
            .and(move |r: &Request| {
                let auth = r
                    .headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                auth.starts_with("SDK-HMAC-SHA256 Access=AK-RDS, ")
                    && auth.contains("SignedHeaders=host;x-project-id;x-sdk-date,")
                    && r.headers.contains_key("x-sdk-date")
                    && r.headers.get("host").and_then(|v| v.to_str().ok()) == Some(host.as_str())
            })
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"instances": instances, "total_count": 3})),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let provider = builder(&server.uri(), "AK-RDS", "sk")
        .with_project_id(project)
        .with_database_page_size(2)
        .build_databases()
        .unwrap();
    let pages = collect(&provider).await;
    assert_eq!(ids(&pages), ["db-0", "db-1", "db-2"]);
    let first = pages[0].as_ref().unwrap();
    assert_eq!(
        (first.total, first.databases[0].memory_mib),
        (Some(3), Some(4096))
    );
}

#[tokio::test]
async fn every_instance_is_listed_once() {
    let sim = SimulatedHuaweiRds::start(REGION, 234).await;
    let provider = for_sim(&sim).build_databases().unwrap();
    assert_eq!(
        (provider.vendor(), provider.region()),
        (Vendor::Huawei, REGION)
    );
    let pages = collect(&provider).await;
    assert_eq!(pages.len(), 3, "100 a page");
    for page in &pages {
        let page = page.as_ref().unwrap();
        assert_eq!(page.total, Some(234));
        assert!(page.failed.is_empty(), "{:?}", page.failed);
        assert_eq!(page.moved, None);
    }
    let listed = ids(&pages);
    assert_eq!(listed.len(), 234);
    assert_eq!(listed.iter().collect::<BTreeSet<_>>().len(), 234);
    assert_eq!(listed, sim.instance_ids());
    assert_eq!(sim.listings(), 3);
}

#[tokio::test]
async fn the_project_id_is_the_one_iam_reports_for_the_region() {
    // The project id the ECS simulator's IAM answers for the region is the RDS
    // simulator's: resolve it as a provider without a configured project does.
    let iam = SimulatedHuawei::start(REGION, 0).await;
    iam.add_key(ACCESS_KEY, SECRET_KEY);
    let client = builder(&iam.uri(), ACCESS_KEY, SECRET_KEY)
        .build_client()
        .unwrap();
    let rds = SimulatedHuaweiRds::start(REGION, 12).await;
    let project_id = client.project_id().await.unwrap();
    assert_eq!(project_id, rds.project_id());
    let provider = builder(&rds.uri(), ACCESS_KEY, SECRET_KEY)
        .with_project_id(project_id)
        .build_databases()
        .unwrap();
    assert_eq!(ids(&collect(&provider).await).len(), 12);
}

#[tokio::test]
async fn one_instance_maps_field_by_field() {
    let sim = SimulatedHuaweiRds::start(REGION, 12).await;
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

    // Number 4: a pay-as-you-go read replica of number 3 (MariaDB), being modified.
    let db = by_id(4);
    assert_eq!(db.vendor, Vendor::Huawei);
    assert_eq!(db.region, REGION);
    assert_eq!(db.name, "订单库-4");
    assert_eq!(db.zone.as_deref(), Some("cn-north-4a"));
    assert_eq!(db.engine, DatabaseEngine::MariaDb);
    assert_eq!(db.engine_version.as_deref(), Some("10.5"));
    assert_eq!(db.status, DatabaseStatus::Modifying);
    assert_eq!(db.raw_status, "MODIFYING");
    assert_eq!(db.instance_class.as_deref(), Some("rds.mariadb.n1.large.2"));
    assert_eq!(db.cpu, Some(2));
    assert_eq!(db.memory_mib, Some(4 * 1024), "mem \"4\" GB");
    assert_eq!(db.storage_gb, Some(80));
    assert_eq!(db.storage_type.as_deref(), Some("CLOUDSSD"));
    assert_eq!(
        db.endpoints,
        [DatabaseEndpoint::private("192.168.0.4", Some(3306))]
    );
    assert_eq!(
        db.vpc_id.as_deref(),
        Some("00000001-1111-4000-8000-000000000001")
    );
    assert_eq!(db.pay_mode, PayMode::Postpaid);
    // "2024-03-05T12:33:49+0800".
    assert_eq!(db.created_at, Some("2024-03-05T04:33:49Z".parse().unwrap()));
    assert_eq!(db.expire_at, None);
    assert_eq!(db.tags.len(), 2);
    assert_eq!(db.tags["env"], "sim");
    assert_eq!(db.tags["序号"], "4");
    assert_eq!(db.extra["role"], "readonly");
    assert_eq!(db.extra["type"], "Replica");
    assert_eq!(db.extra["primary_instance_id"], json!(sim.instance_id(3)));
    assert_eq!(db.extra["time_zone"], "UTC+08:00");

    // Number 0: prepaid HA MySQL, running, with an expiry a year after its creation.
    let db = by_id(0);
    assert_eq!(db.engine, DatabaseEngine::MySql);
    assert_eq!(
        (db.status, db.pay_mode),
        (DatabaseStatus::Running, PayMode::Prepaid)
    );
    assert_eq!(db.expire_at, Some("2025-03-01T00:33:49Z".parse().unwrap()));
    assert_eq!(db.extra["role"], "primary");
    // Number 1: PostgreSQL with a public address, on port 5432.
    let db = by_id(1);
    assert_eq!(db.engine, DatabaseEngine::PostgreSql);
    assert_eq!(db.memory_mib, Some(8 * 1024));
    assert_eq!(
        db.endpoints,
        [
            DatabaseEndpoint::private("192.168.0.1", Some(5432)),
            DatabaseEndpoint::public("100.85.0.1", Some(5432)),
        ]
    );
    assert_eq!(by_id(3).tags.len(), 0);
}

#[tokio::test]
async fn every_documented_status_is_normalized() {
    let sim = SimulatedHuaweiRds::start(REGION, 13).await;
    let provider = for_sim(&sim).build_databases().unwrap();
    let pages = collect(&provider).await;
    let all: Vec<_> = pages
        .into_iter()
        .flat_map(|p| p.unwrap().databases)
        .collect();
    assert_eq!(all.len(), 13);
    for db in all {
        assert_ne!(db.status, DatabaseStatus::Unknown, "{}", db.raw_status);
    }
}

#[tokio::test]
async fn an_instance_that_does_not_map_is_a_failed_record() {
    let sim = SimulatedHuaweiRds::start(REGION, 20).await;
    let bad = sim.instance_id(6);
    assert!(sim.update_instance(&bad, |v| v["mem"] = json!("lots")));
    let provider = for_sim(&sim).build_databases().unwrap();
    let pages = collect(&provider).await;
    assert_eq!(ids(&pages).len(), 19);
    let failed = &pages[0].as_ref().unwrap().failed;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].instance_id.as_deref(), Some(bad.as_str()));
    assert!(failed[0].reason.contains("mem"), "{failed:?}");
}

#[tokio::test]
async fn a_listing_that_moves_between_pages_is_flagged() {
    let sim = SimulatedHuaweiRds::start(REGION, 250).await;
    let provider = for_sim(&sim).build_databases().unwrap();
    let mut stream = provider.pages();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!((first.databases.len(), first.moved), (100, None));
    // Released after the first page: every later instance moves one place up.
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
    assert!(rest
        .iter()
        .flat_map(|p| &p.databases)
        .all(|d| d.instance_id != skipped));
}

#[tokio::test]
async fn lookup_by_id_answers_only_the_live_instances() {
    let sim = SimulatedHuaweiRds::start(REGION, 40).await;
    let wanted: Vec<String> = (0..10).map(|i| sim.instance_id(i)).collect();
    for i in [2, 5, 9] {
        assert!(sim.remove_instance(&sim.instance_id(i)));
    }
    let provider = for_sim(&sim).build_databases().unwrap();
    let pages: Vec<_> = provider.lookup(wanted.clone()).unwrap().collect().await;
    assert_eq!(pages.len(), 10, "one request per id");
    let found: BTreeSet<String> = ids(&pages).into_iter().collect();
    let live: BTreeSet<String> = wanted
        .into_iter()
        .filter(|id| sim.instance(id).is_some())
        .collect();
    assert_eq!(found.len(), 7);
    assert_eq!(found, live);
    assert_eq!((sim.lookups(), sim.listings()), (10, 0));
    // An id that would be a fuzzy match is refused before any request.
    let e = provider
        .lookup(vec!["*5eed".to_owned()])
        .unwrap()
        .collect::<Vec<_>>()
        .await
        .remove(0)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(sim.lookups(), 10);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_and_the_listing_completes() {
    let sim = SimulatedHuaweiRds::start(REGION, 300).await;
    sim.throttle_every(2);
    sim.fail_next(1, 503);
    let provider = for_sim(&sim).build_databases().unwrap();
    let pages = collect(&provider).await;
    assert!(pages.iter().all(|p| p.is_ok()), "{pages:?}");
    assert_eq!(ids(&pages).len(), 300);
    let stats = provider.client().http().stats();
    assert!(stats.throttled >= 2 && stats.retries >= 3, "{stats:?}");
}

#[tokio::test]
async fn a_wrong_key_is_unauthenticated_and_not_retried() {
    let sim = SimulatedHuaweiRds::start(REGION, 5).await;
    let provider = builder(&sim.uri(), ACCESS_KEY, "not-the-secret")
        .with_project_id(sim.project_id())
        .build_databases()
        .unwrap();
    let pages = collect(&provider).await;
    assert_eq!(pages.len(), 1);
    let e = pages.into_iter().next().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable());
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("APIGW.0301")
    );
    assert_eq!(sim.auth_failures(ACCESS_KEY), 1, "never retried");
    assert!(!sim.is_locked(ACCESS_KEY));
}

#[tokio::test]
async fn temporary_credentials_send_their_token() {
    let sim = SimulatedHuaweiRds::start(REGION, 30).await;
    let token = "hw-simulated-rds-sts-token";
    sim.set_security_token(ACCESS_KEY, Some(token));
    let with = |token: Option<&str>| {
        let mut credentials = Credentials::new(ACCESS_KEY, SECRET_KEY);
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

#[test]
fn rds_calls_go_to_the_regional_rds_host() {
    let client = HuaweiBuilder::new()
        .with_credentials(Credentials::new("ak", "sk"))
        .with_region("ap-southeast-1")
        .build_client()
        .unwrap();
    assert_eq!(
        client.rds_endpoint().to_string(),
        "https://rds.ap-southeast-1.myhuaweicloud.com/"
    );
    for size in [0, 101] {
        let e = HuaweiBuilder::new()
            .with_credentials(Credentials::new("ak", "sk"))
            .with_region(REGION)
            .with_database_page_size(size)
            .build_databases()
            .unwrap_err();
        assert_eq!(e.field(), Some("page_size"));
    }
}
