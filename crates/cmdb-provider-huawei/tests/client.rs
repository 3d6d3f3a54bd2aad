//! The Huawei client and provider over HTTP: wiremock for exact requests and answers,
//! [`SimulatedHuawei`] for whole listings, and a live test behind credentials.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use cmdb_core::testing::{
    host_provider_conformance, host_provider_error_conformance, ProviderExpectation,
};
use cmdb_core::{ErrorKind, HostProvider};
use cmdb_http::{HttpConfig, RetryConfig};
use cmdb_provider_huawei::HuaweiBuilder;
use cmdb_secret::Credentials;
use cmdb_testkit::huawei::{SimulatedHuawei, ACCESS_KEY, SECRET_KEY};
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// Runs the network I/O of paused-clock tests (see `HttpClient::with_io_runtime`).
static IO: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
});

const REGION: &str = "cn-north-4";
const PROJECT: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// A builder against `uri`; each test uses its own AK so the process-wide project cache
/// never carries over between tests.
fn builder(uri: &str, ak: &str) -> HuaweiBuilder {
    HuaweiBuilder::new()
        .with_credentials(Credentials::new(ak, "test-secret-key"))
        .with_region(REGION)
        .with_endpoint(uri)
        .with_io_runtime(IO.handle().clone())
        .with_jitter_seed(7)
}

fn server(id: &str) -> Value {
    json!({"id": id, "name": format!("vm-{id}"), "status": "ACTIVE",
           "flavor": {"id": "s6.small.1", "vcpus": "1", "ram": "1024"}})
}

fn page(ids: &[&str], count: u64) -> ResponseTemplate {
    let servers: Vec<Value> = ids.iter().map(|id| server(id)).collect();
    ResponseTemplate::new(200)
        .insert_header("X-Request-Id", "rid-page")
        .set_body_json(json!({"count": count, "servers": servers}))
}

fn projects(ids: &[&str]) -> ResponseTemplate {
    let projects: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "name": REGION}))
        .collect();
    ResponseTemplate::new(200).set_body_json(json!({"projects": projects}))
}

/// The signed headers and the Host of a request, checked against what was sent.
fn signed_as_sent(
    ak: &'static str,
    with_project: bool,
    server: &MockServer,
) -> impl Fn(&Request) -> bool {
    // The endpoint's port is not the scheme's default: it must be in the Host signed.
    let expected_host = format!("127.0.0.1:{}", server.address().port());
    move |req: &Request| {
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let host = req
            .headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let want = if with_project {
            "SignedHeaders=host;x-project-id;x-sdk-date,"
        } else {
            "SignedHeaders=host;x-sdk-date,"
        };
        auth.starts_with(&format!("SDK-HMAC-SHA256 Access={ak}, "))
            && auth.contains(want)
            && req.headers.contains_key("x-sdk-date")
            && host == expected_host
            && (with_project || !req.headers.contains_key("x-project-id"))
    }
}

#[tokio::test]
async fn several_pages_use_page_numbers_and_sign_what_is_sent() {
    let server = MockServer::start().await;
    let ak = "AK-SEVERAL-PAGES";
    Mock::given(method("GET"))
        .and(path("/v3/projects"))
        .and(query_param("name", REGION))
        .and(signed_as_sent(ak, false, &server))
        .respond_with(projects(&[PROJECT]))
        .expect(1)
        .mount(&server)
        .await;
    let detail = format!("/v1/{PROJECT}/cloudservers/detail");
    for (offset, ids) in [
        ("1", vec!["a", "b"]),
        ("2", vec!["c", "d"]),
        ("3", vec!["e"]),
    ] {
        Mock::given(method("GET"))
            .and(path(detail.as_str()))
            .and(query_param("offset", offset))
            .and(query_param("limit", "2"))
            .and(wiremock::matchers::header("x-project-id", PROJECT))
            .and(signed_as_sent(ak, true, &server))
            .respond_with(page(&ids, 5))
            .expect(1)
            .mount(&server)
            .await;
    }
    let provider = builder(&server.uri(), ak)
        .with_page_size(2)
        .build()
        .unwrap();
    let pages: Vec<_> = provider.pages().try_collect().await.unwrap();
    let ids: Vec<Vec<String>> = pages
        .iter()
        .map(|p| p.hosts.iter().map(|h| h.instance_id.clone()).collect())
        .collect();
    assert_eq!(ids, vec![vec!["a", "b"], vec!["c", "d"], vec!["e"]]);
    assert!(pages.iter().all(|p| p.total == Some(5)));
    assert_eq!(pages[0].hosts[0].cpu, Some(1));
}

#[tokio::test]
async fn a_short_first_page_ends_the_listing() {
    let server = MockServer::start().await;
    Mock::given(path("/v3/projects"))
        .respond_with(projects(&[PROJECT]))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(format!("/v1/{PROJECT}/cloudservers/detail")))
        .and(query_param("offset", "1"))
        .and(query_param("limit", "200"))
        .respond_with(page(&["only"], 1))
        .expect(1)
        .mount(&server)
        .await;
    let provider = builder(&server.uri(), "AK-SHORT").build().unwrap();
    let pages: Vec<_> = provider.pages().try_collect().await.unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].hosts[0].instance_id, "only");
}

#[tokio::test]
async fn iam_lookup_with_zero_one_and_two_projects() {
    // None.
    let server = MockServer::start().await;
    Mock::given(path("/v3/projects"))
        .respond_with(projects(&[]))
        .expect(1)
        .mount(&server)
        .await;
    let e = builder(&server.uri(), "AK-IAM-0")
        .build_client()
        .unwrap()
        .project_id()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(
        e.message().contains("no project named \"cn-north-4\""),
        "{e}"
    );

    // Two.
    let server = MockServer::start().await;
    Mock::given(path("/v3/projects"))
        .respond_with(projects(&["p-one", "p-two"]))
        .expect(1)
        .mount(&server)
        .await;
    let e = builder(&server.uri(), "AK-IAM-2")
        .build()
        .unwrap()
        .pages()
        .next()
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.message().contains("2 projects") && e.message().contains("p-one, p-two"),
        "{e}"
    );

    // One, looked up once per endpoint, AK and region, then cached.
    let server = MockServer::start().await;
    Mock::given(path("/v3/projects"))
        .respond_with(projects(&[PROJECT]))
        .expect(1)
        .mount(&server)
        .await;
    let first = builder(&server.uri(), "AK-IAM-1").build_client().unwrap();
    assert_eq!(first.project_id().await.unwrap(), PROJECT);
    let second = builder(&server.uri(), "AK-IAM-1").build_client().unwrap();
    assert_eq!(second.project_id().await.unwrap(), PROJECT);
    // A configured project id needs no lookup at all.
    let configured = builder(&server.uri(), "AK-IAM-X")
        .with_project_id("given")
        .build_client()
        .unwrap();
    assert_eq!(configured.project_id().await.unwrap(), "given");
}

#[tokio::test(start_paused = true)]
async fn throttled_then_success() {
    let server = MockServer::start().await;
    Mock::given(path("/v3/projects"))
        .respond_with(projects(&[PROJECT]))
        .expect(1)
        .mount(&server)
        .await;
    let detail = format!("/v1/{PROJECT}/cloudservers/detail");
    Mock::given(path(detail.as_str()))
        .respond_with(ResponseTemplate::new(429).set_body_json(
            json!({"error_code": "APIGW.0308", "error_msg": "throttled", "request_id": "rid-429"}),
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(detail.as_str()))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(detail.as_str()))
        .respond_with(page(&["x"], 1))
        .expect(1)
        .mount(&server)
        .await;
    let provider = builder(&server.uri(), "AK-THROTTLE").build().unwrap();
    let pages: Vec<_> = provider.pages().try_collect().await.unwrap();
    assert_eq!(pages[0].hosts.len(), 1);
    let stats = provider.client().http().stats();
    assert_eq!((stats.requests, stats.retries, stats.throttled), (4, 2, 1));
}

#[tokio::test]
async fn auth_errors_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/v3/projects"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("X-Request-Id", "rid-header")
                .set_body_json(json!({
                    "error_code": "APIGW.0301",
                    "error_msg": "Incorrect IAM authentication information: verify aksk signature fail",
                    "request_id": "rid-401"
                })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let provider = builder(&server.uri(), "AK-AUTH").build().unwrap();
    let mut pages = provider.pages();
    let e = pages.next().await.unwrap().unwrap_err();
    assert!(pages.next().await.is_none());
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(!e.is_retryable());
    let v = e.vendor_error().unwrap();
    assert_eq!(v.code.as_deref(), Some("APIGW.0301"));
    assert_eq!(v.request_id.as_deref(), Some("rid-401"));
    assert!(e.message().contains("five minutes"), "{e}");
    assert!(!format!("{e:?}").contains("test-secret-key"));
}

#[tokio::test]
async fn malformed_bodies_are_decode_errors() {
    let server = MockServer::start().await;
    let client = builder(&server.uri(), "AK-MALFORMED")
        .build_client()
        .unwrap();
    let detail = format!("/v1/{PROJECT}/cloudservers/detail");
    Mock::given(path(detail.as_str()))
        .and(query_param("offset", "1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"count": 1, "servers": "nope"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(detail.as_str()))
        .and(query_param("offset", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>gateway</html>"))
        .expect(1)
        .mount(&server)
        .await;
    for page in [1, 2] {
        let e = client
            .list_servers_details(PROJECT, page, 10)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    }
    // A limit above the API's bound is refused before any request.
    let e = client
        .list_servers_details(PROJECT, 1, 1001)
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("limit"));
}

#[tokio::test]
async fn service_errors_keep_code_message_and_request_id() {
    let server = MockServer::start().await;
    Mock::given(path(format!("/v1/{PROJECT}/cloudservers/detail")))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("X-Request-Id", "rid-ecs")
                .set_body_json(
                    json!({"error": {"code": "Ecs.0005", "message": "Invalid parameter"}}),
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server.uri(), "AK-ECS-ERR").build_client().unwrap();
    let e = client
        .list_servers_details(PROJECT, 1, 10)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let v = e.vendor_error().unwrap();
    assert_eq!(
        (
            v.code.as_deref(),
            v.message.as_deref(),
            v.request_id.as_deref(),
            v.http_status
        ),
        (
            Some("Ecs.0005"),
            Some("Invalid parameter"),
            Some("rid-ecs"),
            Some(400)
        )
    );
}

/// A 404 answer of ShowServer with this ECS or gateway error.
fn not_found(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(body)
}

#[tokio::test]
async fn lookup_shows_each_server_and_only_ecs_0114_means_gone() {
    let server_mock = MockServer::start().await;
    let base = format!("/v1/{PROJECT}/cloudservers");
    Mock::given(method("GET"))
        .and(path(format!("{base}/s-1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"server": server("s-1")})))
        .expect(1)
        .mount(&server_mock)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{base}/s-2")))
        .respond_with(not_found(json!({"error": {
            "code": "Ecs.0114", "message": "Instance[s-2] could not be found."}})))
        .expect(1)
        .mount(&server_mock)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{base}/s-3")))
        .respond_with(not_found(json!({
            "error_code": "APIGW.0101",
            "error_msg": "The API does not exist or has not been published in the environment"})))
        .mount(&server_mock)
        .await;
    let provider = builder(&server_mock.uri(), "AK-LOOKUP")
        .with_project_id(PROJECT)
        .build()
        .unwrap();

    let pages: Vec<_> = provider
        .lookup(vec!["s-1".into(), "s-2".into()])
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let found: Vec<&str> = pages
        .iter()
        .flat_map(|p| &p.hosts)
        .map(|h| h.instance_id.as_str())
        .collect();
    assert_eq!(found, ["s-1"], "s-2 is gone");

    // A gateway 404 (a wrong endpoint or path) proves nothing: the lookup fails, and the
    // stream ends there.
    let results: Vec<_> = provider
        .lookup(vec!["s-3".into(), "s-1".into()])
        .unwrap()
        .collect()
        .await;
    assert_eq!(results.len(), 1, "{results:?}");
    let e = results[0].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("APIGW.0101")
    );

    // An id that is no server id is refused before any request.
    let results: Vec<_> = provider
        .lookup(vec!["../detail".into()])
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        results[0].as_ref().unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

fn sim_builder(sim: &SimulatedHuawei) -> HuaweiBuilder {
    HuaweiBuilder::new()
        .with_credentials(Credentials::new(ACCESS_KEY, SECRET_KEY))
        .with_region(REGION)
        .with_endpoint(sim.uri())
        .with_io_runtime(IO.handle().clone())
        .with_jitter_seed(11)
}

#[tokio::test]
async fn the_provider_passes_conformance_against_the_simulator() {
    let sim = SimulatedHuawei::start(REGION, 450).await;
    let provider: Arc<dyn HostProvider> = Arc::new(sim_builder(&sim).build().unwrap());
    let listed = host_provider_conformance(
        provider,
        ProviderExpectation {
            hosts: Some(450),
            max_pages: 10,
            absent_ids: vec!["00000000-5e4c-4d00-9a00-ffffffffffff".to_owned()],
        },
    )
    .await;
    assert_eq!(listed, 450);
    // The lookup: one ShowServer per id, the 250 listed ones found and the absent one.
    assert_eq!(sim.stats().show_server_requests, 251);
    let stats = sim.stats();
    // Two listings of pages 1, 2 and 3 of 200.
    let mut pages = stats.pages.clone();
    pages.sort();
    assert_eq!(
        pages,
        vec![(1, 200), (1, 200), (2, 200), (2, 200), (3, 200), (3, 200)]
    );
    assert_eq!(sim.auth_failures(ACCESS_KEY), 0);
}

#[tokio::test]
async fn the_provider_lists_the_region_projects_of_the_account() {
    let sim = SimulatedHuawei::start(REGION, 5).await;
    sim.add_region("ap-southeast-1", 3);
    sim.add_region("cn-east-3", 0);
    sim.add_sub_project(REGION, "sub");
    let provider = sim_builder(&sim).build().unwrap();
    let regions = provider
        .regions()
        .expect("Huawei Cloud lists regions")
        .await
        .unwrap();
    // IAM also lists `MOS` and the sub-project `cn-north-4_sub`: neither is a region.
    assert_eq!(regions, ["ap-southeast-1", "cn-east-3", "cn-north-4"]);
    assert_eq!(sim.stats().iam_requests, 1, "one unfiltered project list");
    // Each region then lists its own servers through its own project.
    let other = sim_builder(&sim)
        .with_region("ap-southeast-1")
        .build()
        .unwrap();
    let pages: Vec<_> = other.pages().try_collect().await.unwrap();
    assert_eq!(pages.iter().map(|p| p.hosts.len()).sum::<usize>(), 3);
}

#[tokio::test]
async fn region_names_skip_mos_and_sub_projects_as_iam_answers_them() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3/projects"))
        .and(|r: &Request| r.url.query().is_none())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "links": {"self": "https://iam.myhuaweicloud.com/v3/projects", "previous": null, "next": null},
            "projects": [
                {"id": "p-mos", "name": "MOS", "enabled": true, "is_domain": false},
                {"id": "p-n4", "name": "cn-north-4", "enabled": true, "is_domain": false},
                {"id": "p-n4-dev", "name": "cn-north-4_dev", "enabled": true, "is_domain": false},
                {"id": "p-af", "name": "af-south-1", "enabled": true, "is_domain": false},
                {"id": "", "name": "cn-east-2"},
                {"id": "p-nameless", "name": null}
            ]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server.uri(), "AK-REGIONS").build_client().unwrap();
    let regions = client.region_names().await.unwrap();
    assert_eq!(regions, ["cn-north-4", "af-south-1"]);
}

#[tokio::test]
async fn concurrent_pages_are_yielded_in_order_and_mapped() {
    let sim = SimulatedHuawei::start(REGION, 95).await;
    sim.set_latency(Some(Duration::from_millis(20)));
    let provider = sim_builder(&sim)
        .with_page_size(10)
        .with_concurrency(4)
        .build()
        .unwrap();
    let pages: Vec<_> = provider.pages().try_collect().await.unwrap();
    assert_eq!(pages.len(), 10);
    let ids: Vec<String> = pages
        .iter()
        .flat_map(|p| p.hosts.iter().map(|h| h.instance_id.clone()))
        .collect();
    assert_eq!(ids, sim.server_ids(REGION));
    let first = &pages[0].hosts[0];
    assert_eq!(first.name, "测试服务器-0");
    assert!(first.cpu.is_some() && first.memory_mib.is_some());
    assert!(!first.public_ips.is_empty() && !first.private_ips.is_empty());
    assert_eq!(first.tags.get("backup").map(String::as_str), Some(""));
    assert_eq!(sim.stats().pages.len(), 10);
}

#[tokio::test(start_paused = true)]
async fn throttling_and_server_errors_from_the_simulator_are_survived() {
    let sim = SimulatedHuawei::start(REGION, 120).await;
    sim.throttle_every(Some(3));
    sim.fail_next(&[503]);
    let provider = sim_builder(&sim).with_page_size(25).build().unwrap();
    let hosts: usize = provider
        .pages()
        .map_ok(|p| p.hosts.len())
        .try_fold(0, |a, b| async move { Ok(a + b) })
        .await
        .unwrap();
    assert_eq!(hosts, 120);
    let stats = sim.stats();
    assert!(stats.throttled >= 2, "{stats:?}");
    assert_eq!(stats.injected_failures, 1);
}

#[tokio::test]
async fn a_wrong_key_fails_once_per_listing_and_the_simulator_locks_it_after_five() {
    let sim = SimulatedHuawei::start(REGION, 3).await;
    let provider: Arc<dyn HostProvider> = Arc::new(
        sim_builder(&sim)
            .with_credentials(Credentials::new(ACCESS_KEY, "wrong-secret"))
            .with_http_config(HttpConfig::default().with_retry(RetryConfig::default()))
            .build()
            .unwrap(),
    );
    for attempt in 1..=5 {
        assert_eq!(
            host_provider_error_conformance(Arc::clone(&provider)).await,
            0
        );
        assert_eq!(sim.auth_failures(ACCESS_KEY), attempt);
    }
    assert!(sim.is_locked(ACCESS_KEY));
    // Locked: the right key is refused too, until the lock ends.
    let good = sim_builder(&sim).build().unwrap();
    let e = good.pages().next().await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(e.message().contains("locked"), "{e}");
}

#[tokio::test]
async fn live_lists_servers_when_credentials_are_set() {
    let vars = [
        "HUAWEICLOUD_SDK_AK",
        "HUAWEICLOUD_SDK_SK",
        "CMDB_LIVE_REGION",
    ];
    let missing: Vec<&str> = vars
        .iter()
        .copied()
        .filter(|v| std::env::var(v).map_or(true, |v| v.is_empty()))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "skipping the live Huawei Cloud test: {} not set",
            missing.join(", ")
        );
        return;
    }
    let region = std::env::var("CMDB_LIVE_REGION").unwrap();
    let provider: Arc<dyn HostProvider> = Arc::new(
        HuaweiBuilder::from_env()
            .with_region(region)
            .build()
            .unwrap(),
    );
    let listed = host_provider_conformance(
        provider,
        ProviderExpectation {
            hosts: None,
            max_pages: 10_000,
            ..ProviderExpectation::default()
        },
    )
    .await;
    eprintln!("live Huawei Cloud listing: {listed} servers");
}

#[tokio::test]
async fn temporary_credentials_send_their_token_signed_and_an_expired_one_fails_once() {
    let sim = SimulatedHuawei::start(REGION, 120).await;
    let token = "hw-simulated-security-token";
    sim.set_security_token(ACCESS_KEY, Some(token));
    let sts = |token: Option<&str>| {
        let mut credentials = Credentials::new(ACCESS_KEY, SECRET_KEY);
        if let Some(t) = token {
            credentials = credentials.with_session_token(t);
        }
        // The project id is given: the listing is then the only request.
        sim_builder(&sim)
            .with_credentials(credentials)
            .with_project_id(sim.project_id(REGION).unwrap())
            .build()
            .unwrap()
    };
    let pages: Vec<_> = sts(Some(token)).pages().try_collect().await.unwrap();
    assert_eq!(pages.iter().map(|p| p.hosts.len()).sum::<usize>(), 120);

    for (credentials, expired) in [(None, false), (Some(token), true)] {
        if expired {
            sim.expire_security_token(ACCESS_KEY);
        }
        let before = sim.stats().requests;
        let e = sts(credentials).pages().next().await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
        assert!(!e.is_retryable());
        assert_eq!(
            e.vendor_error().unwrap().code.as_deref(),
            Some("APIGW.0301")
        );
        assert!(e.message().contains("security token"), "{e}");
        assert!(!format!("{e:?}").contains(token));
        assert_eq!(sim.stats().requests - before, 1, "never retried");
    }
}
