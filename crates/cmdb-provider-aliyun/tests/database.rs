//! The RDS database provider over HTTP: raw wiremock mocks for the exact requests, and the
//! signature-checking RDS simulator (`cmdb_testkit::aliyun_rds`) for whole listings.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use cmdb_core::{
    DatabaseEndpoint, DatabaseEngine, DatabasePage, DatabaseProvider, DatabaseStatus, ErrorKind,
    PayMode, Vendor,
};
use cmdb_provider_aliyun::{rds_endpoint_host, AliyunBuilder, AliyunDatabaseProvider};
use cmdb_secret::Credentials;
use cmdb_testkit::aliyun_rds::SimulatedAliyunRds;
use futures::StreamExt;
use serde_json::json;
use wiremock::matchers::{header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REGION: &str = "cn-hangzhou";

/// I/O runs here so that tests with a paused clock can talk to real sockets.
static IO: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("io runtime")
});

fn builder(uri: &str, key: &str, secret: &str) -> AliyunBuilder {
    AliyunBuilder::new()
        .with_credentials(Credentials::new(key, secret))
        .with_region(REGION)
        .with_endpoint(uri)
        .with_io_runtime(IO.handle().clone())
        .with_jitter_seed(7)
}

fn for_sim(sim: &SimulatedAliyunRds) -> AliyunBuilder {
    builder(&sim.uri(), &sim.access_key_id(), &sim.access_key_secret())
}

async fn collect(provider: &AliyunDatabaseProvider) -> Vec<cmdb_core::Result<DatabasePage>> {
    provider.pages().collect().await
}

fn ids(pages: &[cmdb_core::Result<DatabasePage>]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| &p.as_ref().unwrap().databases)
        .map(|d| d.instance_id.clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn requests_are_signed_rds_calls_following_next_token() {
    let server = MockServer::start().await;
    let common = || {
        Mock::given(method("POST"))
            .and(path("/"))
            .and(query_param("RegionId", REGION))
            .and(query_param("MaxResults", "100"))
            .and(header("x-acs-action", "DescribeDBInstances"))
            .and(header("x-acs-version", "2014-08-15"))
            .and(header_exists("x-acs-date"))
            .and(header_exists("x-acs-signature-nonce"))
            .and(header_exists("authorization"))
    };
    let answer = |ids: &[&str], next: &str| {
        let items: Vec<_> = ids
            .iter()
            .map(|id| json!({"DBInstanceId": id, "Engine": "MySQL", "DBInstanceStatus": "Running"}))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({
            "RequestId": "RID", "TotalRecordCount": 3, "PageRecordCount": ids.len(),
            "NextToken": next, "Items": {"DBInstance": items}
        }))
    };
    common()
        .and(wiremock::matchers::query_param_is_missing("NextToken"))
        .respond_with(answer(&["rm-1", "rm-2"], "t2"))
        .expect(1)
        .mount(&server)
        .await;
    common()
        .and(query_param("NextToken", "t2"))
        .respond_with(answer(&["rm-3"], ""))
        .expect(1)
        .mount(&server)
        .await;
    let provider = builder(&server.uri(), "LTAI5tKey", "secret")
        .build_databases()
        .unwrap();
    let pages = collect(&provider).await;
    assert_eq!(ids(&pages), ["rm-1", "rm-2", "rm-3"]);
    assert_eq!(pages[0].as_ref().unwrap().total, Some(3));
    let received = server.received_requests().await.unwrap();
    let auth = received[0].headers["authorization"].to_str().unwrap();
    assert!(auth.starts_with("ACS3-HMAC-SHA256 Credential=LTAI5tKey,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature="), "{auth}");
}

#[tokio::test(start_paused = true)]
async fn every_instance_is_listed_once() {
    let sim = SimulatedAliyunRds::start(REGION, 237).await;
    let provider = for_sim(&sim).build_databases().unwrap();
    assert_eq!(
        (provider.vendor(), provider.region()),
        (Vendor::Aliyun, REGION)
    );
    let pages = collect(&provider).await;
    assert_eq!(pages.len(), 3);
    for page in &pages {
        let page = page.as_ref().unwrap();
        assert_eq!(page.total, Some(237));
        assert!(page.failed.is_empty(), "{:?}", page.failed);
        assert_eq!(page.moved, None);
    }
    let listed = ids(&pages);
    assert_eq!(listed.len(), 237);
    assert_eq!(listed.iter().collect::<BTreeSet<_>>().len(), 237);
    assert_eq!(listed, sim.instance_ids());
    assert_eq!(sim.listings(), 3);
}

#[tokio::test(start_paused = true)]
async fn one_instance_maps_field_by_field() {
    let sim = SimulatedAliyunRds::start(REGION, 10).await;
    let provider = for_sim(&sim).build_databases().unwrap();
    let pages = collect(&provider).await;
    let all: Vec<_> = pages
        .into_iter()
        .flat_map(|p| p.unwrap().databases)
        .collect();
    let by_id = |i: u64| {
        all.iter()
            .find(|d| d.instance_id == sim.instance_id(i))
            .unwrap()
            .clone()
    };

    // Number 4: a pay-as-you-go read-only MariaDB instance of number 3, in a VPC.
    let db = by_id(4);
    assert_eq!(db.vendor, Vendor::Aliyun);
    assert_eq!(db.region, REGION);
    assert_eq!(db.name, "订单库-4");
    assert_eq!(db.zone.as_deref(), Some("cn-hangzhou-i"));
    assert_eq!(db.engine, DatabaseEngine::MariaDb);
    assert_eq!(db.engine_version.as_deref(), Some("10.3"));
    assert_eq!(db.status, DatabaseStatus::Modifying);
    assert_eq!(db.raw_status, "DBInstanceClassChanging");
    assert_eq!(db.instance_class.as_deref(), Some("mariadb.n2.medium.2c"));
    assert_eq!(db.cpu, Some(1));
    assert_eq!(db.memory_mib, Some(2048));
    assert_eq!(db.storage_gb, None, "the list has no storage size");
    assert_eq!(db.storage_type.as_deref(), Some("cloud_essd"));
    assert_eq!(
        db.endpoints,
        [DatabaseEndpoint::private(
            format!("{}.mariadb.rds.aliyuncs.com", sim.instance_id(4)),
            None
        )]
    );
    assert_eq!(db.vpc_id.as_deref(), Some("vpc-sim1"));
    assert_eq!(db.pay_mode, PayMode::Postpaid);
    assert_eq!(db.created_at, Some("2024-03-05T04:15:30Z".parse().unwrap()));
    assert_eq!(db.expire_at, None);
    assert!(db.tags.is_empty(), "the list has no tags");
    assert_eq!(db.extra["role"], "readonly");
    assert_eq!(db.extra["primary_instance_id"], json!(sim.instance_id(3)));
    assert_eq!(db.extra["DBInstanceType"], "Readonly");
    assert_eq!(db.extra["VSwitchId"], "vsw-sim4");

    // Number 3: its primary, which lists it; number 0: prepaid, with an expiry.
    assert_eq!(
        by_id(3).extra["read_only_instance_ids"],
        json!([sim.instance_id(4)])
    );
    assert_eq!(by_id(3).extra["role"], "primary");
    let prepaid = by_id(0);
    assert_eq!(prepaid.pay_mode, PayMode::Prepaid);
    assert_eq!(
        prepaid.expire_at,
        Some("2027-03-01T16:00:00Z".parse().unwrap())
    );
    assert_eq!(prepaid.status, DatabaseStatus::Running);
    // Number 2: an internet connection string is a public endpoint.
    let public = by_id(2);
    assert_eq!(public.engine, DatabaseEngine::SqlServer);
    assert_eq!(
        public.endpoints,
        [DatabaseEndpoint::public(
            format!("{}o.sqlserver.rds.aliyuncs.com", sim.instance_id(2)),
            None
        )]
    );
    // Number 9: classic network, no VPC.
    assert_eq!(by_id(9).vpc_id, None);
    assert_eq!(by_id(9).extra["InstanceNetworkType"], "Classic");
}

#[tokio::test(start_paused = true)]
async fn every_documented_status_is_normalized() {
    let sim = SimulatedAliyunRds::start(REGION, 16).await;
    let provider = for_sim(&sim).build_databases().unwrap();
    let pages = collect(&provider).await;
    let statuses: Vec<(String, DatabaseStatus)> = pages
        .into_iter()
        .flat_map(|p| p.unwrap().databases)
        .map(|d| (d.raw_status, d.status))
        .collect();
    assert_eq!(statuses.len(), 16);
    for (raw, status) in statuses {
        assert_ne!(status, DatabaseStatus::Unknown, "{raw}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_instance_that_does_not_map_is_a_failed_record() {
    let sim = SimulatedAliyunRds::start(REGION, 20).await;
    let bad = sim.instance_id(5);
    assert!(sim.update_instance(&bad, |v| v["DBInstanceCPU"] = json!("two")));
    let provider = for_sim(&sim).build_databases().unwrap();
    let pages = collect(&provider).await;
    assert_eq!(ids(&pages).len(), 19);
    let failed: Vec<_> = pages
        .iter()
        .flat_map(|p| p.as_ref().unwrap().failed.clone())
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].instance_id.as_deref(), Some(bad.as_str()));
    assert!(failed[0].reason.contains("DBInstanceCPU"), "{failed:?}");
}

#[tokio::test(start_paused = true)]
async fn lookup_by_id_answers_only_the_live_instances() {
    let sim = SimulatedAliyunRds::start(REGION, 250).await;
    let wanted: Vec<String> = (0..150).map(|i| sim.instance_id(i)).collect();
    for i in [3, 120, 149] {
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

#[tokio::test(start_paused = true)]
async fn throttling_and_server_errors_are_retried_and_the_listing_completes() {
    let sim = SimulatedAliyunRds::start(REGION, 300).await;
    sim.throttle_every(2);
    sim.fail_next(1, 503);
    let provider = for_sim(&sim).build_databases().unwrap();
    let pages = collect(&provider).await;
    assert!(pages.iter().all(|p| p.is_ok()), "{pages:?}");
    assert_eq!(ids(&pages).len(), 300);
    let stats = provider.client().stats();
    assert!(stats.throttled >= 2 && stats.retries >= 3, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn a_wrong_secret_is_unauthenticated_and_not_retried() {
    let sim = SimulatedAliyunRds::start(REGION, 5).await;
    let provider = builder(&sim.uri(), &sim.access_key_id(), "not-the-secret")
        .build_databases()
        .unwrap();
    let pages = collect(&provider).await;
    assert_eq!(pages.len(), 1);
    let e = pages.into_iter().next().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable());
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("SignatureDoesNotMatch")
    );
    assert_eq!(sim.requests(), 1, "never retried");
}

#[tokio::test(start_paused = true)]
async fn temporary_credentials_send_their_token() {
    let sim = SimulatedAliyunRds::start(REGION, 120).await;
    let token = "CAIS-simulated-rds-sts-token";
    sim.set_security_token(Some(token));
    let with = |token: Option<&str>| {
        let mut credentials = Credentials::new(sim.access_key_id(), sim.access_key_secret());
        if let Some(t) = token {
            credentials = credentials.with_session_token(t);
        }
        for_sim(&sim)
            .with_credentials(credentials)
            .build_databases()
            .unwrap()
    };
    assert_eq!(ids(&collect(&with(Some(token))).await).len(), 120);
    let before = sim.requests();
    let e = collect(&with(None)).await.remove(0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert_eq!(sim.requests() - before, 1, "not retried");
}

#[test]
fn rds_endpoints_follow_the_sdk_map() {
    for central in [
        "cn-hangzhou",
        "cn-shanghai",
        "cn-beijing",
        "cn-shenzhen",
        "cn-qingdao",
        "cn-hongkong",
        "ap-southeast-1",
        "us-west-1",
        "us-east-1",
        "cn-shanghai-finance-1",
    ] {
        assert_eq!(rds_endpoint_host(central), "rds.aliyuncs.com", "{central}");
    }
    for regional in [
        "cn-zhangjiakou",
        "cn-huhehaote",
        "cn-chengdu",
        "ap-northeast-1",
        "ap-southeast-5",
        "eu-central-1",
        "me-east-1",
    ] {
        assert_eq!(
            rds_endpoint_host(regional),
            format!("rds.{regional}.aliyuncs.com")
        );
    }
    let client = AliyunBuilder::new()
        .with_credentials(Credentials::new("ak", "sk"))
        .with_region("eu-central-1")
        .build_client()
        .unwrap();
    assert_eq!(
        client.rds_endpoint().to_string(),
        "https://rds.eu-central-1.aliyuncs.com/"
    );
    let e = AliyunBuilder::new()
        .with_credentials(Credentials::new("ak", "sk"))
        .with_region(REGION)
        .with_database_page_size(101)
        .build_databases()
        .unwrap_err();
    assert_eq!(e.field(), Some("page_size"));
}
