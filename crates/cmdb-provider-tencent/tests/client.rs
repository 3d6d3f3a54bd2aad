//! The client and provider against one wiremock server per test: paging, signed headers,
//! errors in 200 bodies, retries, decoding, TotalCount changing mid-listing.

use std::sync::LazyLock;

use cmdb_core::{ErrorKind, HostProvider, HostStatus};
use cmdb_http::{HttpConfig, RetryConfig};
use cmdb_provider_tencent::{TencentBuilder, TencentHostProvider};
use cmdb_secret::Credentials;
use futures::StreamExt;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, body_string, header, header_exists, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET_ID: &str = "AKIDclienttest0000000000000000000001";
const SECRET_KEY: &str = "client-test-secret-key";
/// 2024-02-29T23:59:59Z, 07:59:59 on 1 March in UTC+8.
const NOW: i64 = 1_709_251_199;

/// I/O on a real-clock runtime, so tests may pause theirs (see `HttpClient::with_io_runtime`).
static IO: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
});

fn builder(server: &MockServer) -> TencentBuilder {
    TencentBuilder::new()
        .with_credentials(Credentials::new(SECRET_ID, SECRET_KEY))
        .with_region("ap-guangzhou")
        .with_endpoint(server.uri())
        .with_clock(|| NOW)
        .with_io_runtime(IO.handle().clone())
        .with_jitter_seed(7)
}

fn provider(server: &MockServer) -> TencentHostProvider {
    builder(server).build().unwrap()
}

fn instance(i: u64) -> Value {
    json!({
        "InstanceId": format!("ins-{i:05}"),
        "InstanceName": format!("主机-{i}"),
        "InstanceState": "RUNNING",
        "InstanceType": "S5.MEDIUM4",
        "CPU": 2,
        "Memory": 4,
        "Placement": {"Zone": "ap-guangzhou-3", "ProjectId": 0},
        "InstanceChargeType": "POSTPAID_BY_HOUR",
        "PrivateIpAddresses": [format!("10.0.{}.{}", i / 256, i % 256)],
        "PublicIpAddresses": null,
        "ExpiredTime": null,
        "CreatedTime": "2024-01-02T03:04:05Z",
        "RestrictState": "NORMAL"
    })
}

fn page(offset: u64, count: u64, total: u64) -> ResponseTemplate {
    let set: Vec<Value> = (offset..offset + count).map(instance).collect();
    ResponseTemplate::new(200).set_body_json(json!({
        "Response": {"TotalCount": total, "InstanceSet": set, "RequestId": format!("rid-{offset}")}
    }))
}

fn error(code: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "Response": {"Error": {"Code": code, "Message": format!("{code} happened")}, "RequestId": "rid-err"}
    }))
}

fn describe(offset: u64) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("x-tc-action", "DescribeInstances"))
        .and(body_json(json!({"Offset": offset, "Limit": 100})))
}

async fn collect(p: &TencentHostProvider) -> Vec<cmdb_core::Result<cmdb_core::HostPage>> {
    p.pages().collect().await
}

#[tokio::test]
async fn several_pages_are_listed_with_signed_headers() {
    let server = MockServer::start().await;
    let scope = format!("TC3-HMAC-SHA256 Credential={SECRET_ID}/2024-02-29/cvm/tc3_request, SignedHeaders=content-type;host, Signature=");
    for (offset, count) in [(0, 100), (100, 100), (200, 50)] {
        let scope = scope.clone();
        describe(offset)
            .and(header("content-type", "application/json; charset=utf-8"))
            .and(header("x-tc-version", "2017-03-12"))
            .and(header("x-tc-region", "ap-guangzhou"))
            .and(header("x-tc-timestamp", NOW.to_string().as_str()))
            // The exact bytes that were hashed: serialized once, compactly.
            .and(body_string(format!(r#"{{"Offset":{offset},"Limit":100}}"#)))
            .and(move |r: &Request| {
                r.headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with(&scope) && v.len() == scope.len() + 64)
            })
            .respond_with(page(offset, count, 250))
            .expect(1)
            .mount(&server)
            .await;
    }
    let pages = collect(&provider(&server)).await;
    assert_eq!(pages.len(), 3);
    let hosts: Vec<_> = pages
        .into_iter()
        .flat_map(|p| {
            let p = p.unwrap();
            assert_eq!(p.total, Some(250));
            p.hosts
        })
        .collect();
    assert_eq!(hosts.len(), 250);
    assert_eq!(hosts[0].instance_id, "ins-00000");
    assert_eq!(
        hosts[249].instance_id, "ins-00249",
        "yielded in offset order"
    );
    assert_eq!(hosts[7].memory_mib, Some(4096));
    assert_eq!(hosts[7].status, HostStatus::Running);
    assert!(hosts[7].public_ips.is_empty() && hosts[7].expire_at.is_none());
}

#[tokio::test]
async fn a_short_page_ends_the_listing_even_below_the_total() {
    let server = MockServer::start().await;
    describe(0)
        .respond_with(page(0, 30, 30))
        .expect(1)
        .mount(&server)
        .await;
    let pages = collect(&provider(&server)).await;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].as_ref().unwrap().hosts.len(), 30);

    // An empty region: one empty page with total 0.
    let server = MockServer::start().await;
    describe(0)
        .respond_with(page(0, 0, 0))
        .expect(1)
        .mount(&server)
        .await;
    let pages = collect(&provider(&server)).await;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].as_ref().unwrap().total, Some(0));
}

#[tokio::test]
async fn the_listing_stops_at_total_count_without_an_extra_request() {
    let server = MockServer::start().await;
    describe(0)
        .respond_with(page(0, 100, 200))
        .expect(1)
        .mount(&server)
        .await;
    describe(100)
        .respond_with(page(100, 100, 200))
        .expect(1)
        .mount(&server)
        .await;
    let pages = collect(&provider(&server)).await;
    assert_eq!(pages.len(), 2);
    assert!(pages.iter().all(Result::is_ok));
    // Dropping the server verifies that Offset 200 was never asked for.
}

#[tokio::test(start_paused = true)]
async fn throttling_in_a_200_body_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    describe(0)
        .respond_with(error("RequestLimitExceeded.UinLimitExceeded"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    describe(0)
        .respond_with(page(0, 10, 10))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(&server);
    let pages = collect(&p).await;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].as_ref().unwrap().hosts.len(), 10);
    let stats = p.client().http().stats();
    assert_eq!((stats.requests, stats.retries, stats.throttled), (3, 2, 2));
}

#[tokio::test(start_paused = true)]
async fn internal_errors_and_gateway_5xx_are_retried() {
    let server = MockServer::start().await;
    describe(0)
        .respond_with(error("InternalError"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    describe(0)
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    describe(0)
        .respond_with(error("ServiceUnavailable"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    describe(0)
        .respond_with(page(0, 3, 3))
        .expect(1)
        .mount(&server)
        .await;
    let pages = collect(&provider(&server)).await;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].as_ref().unwrap().hosts.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn retries_give_up_after_the_configured_attempts() {
    let server = MockServer::start().await;
    describe(0)
        .respond_with(error("RequestLimitExceeded"))
        .expect(3)
        .mount(&server)
        .await;
    let p = builder(&server)
        .with_http_config(
            HttpConfig::default().with_retry(RetryConfig::default().with_max_attempts(3)),
        )
        .build()
        .unwrap();
    let pages = collect(&p).await;
    assert_eq!(pages.len(), 1);
    let e = pages[0].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("RequestLimitExceeded")
    );
}

#[tokio::test]
async fn auth_errors_are_not_retried_and_say_what_to_check() {
    for (code, kind, hint) in [
        (
            "AuthFailure.SignatureFailure",
            ErrorKind::Unauthenticated,
            "api_secret",
        ),
        (
            "AuthFailure.SignatureExpire",
            ErrorKind::Unauthenticated,
            "clock",
        ),
        (
            "AuthFailure.SecretIdNotFound",
            ErrorKind::Unauthenticated,
            "api_key",
        ),
        ("UnauthorizedOperation", ErrorKind::PermissionDenied, "CAM"),
    ] {
        let server = MockServer::start().await;
        describe(0)
            .respond_with(error(code))
            .expect(1)
            .mount(&server)
            .await;
        let p = provider(&server);
        let pages = collect(&p).await;
        assert_eq!(pages.len(), 1, "{code}");
        let e = pages[0].as_ref().unwrap_err();
        assert_eq!(e.kind(), kind, "{code}");
        assert!(e.to_string().contains(hint), "{code}: {e}");
        let v = e.vendor_error().unwrap();
        assert_eq!(v.code.as_deref(), Some(code));
        assert_eq!(v.request_id.as_deref(), Some("rid-err"));
        assert_eq!(v.http_status, Some(200));
        assert!(!e.to_string().contains(SECRET_KEY));
        assert_eq!(p.client().http().stats().retries, 0, "{code}");
    }
}

#[tokio::test]
async fn malformed_bodies_are_decode_errors_naming_the_field() {
    let cases = [
        (
            json!({"Response": {"TotalCount": "many", "InstanceSet": []}}),
            "TotalCount",
        ),
        (json!({"Response": {"TotalCount": 1}}), "InstanceSet"),
        (json!({"NotResponse": {}}), "Response"),
    ];
    for (body, field) in cases {
        let server = MockServer::start().await;
        describe(0)
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
        let pages = collect(&provider(&server)).await;
        assert_eq!(pages.len(), 1);
        let e = pages[0].as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode, "{field}: {e}");
        assert!(e.message().contains(field), "{field}: {e}");
    }
    // An instance that does not fit: a failed record naming it, the page goes on.
    for (body, id, field) in [
        (
            json!({"Response": {"TotalCount": 2, "RequestId": "rid-bad", "InstanceSet": [{"InstanceId": "ins-x", "Memory": "4GB"}, {"InstanceId": "ins-ok"}]}}),
            "ins-x",
            "field `Memory`",
        ),
        (
            json!({"Response": {"TotalCount": 2, "InstanceSet": [{"InstanceId": "ins-y", "CreatedTime": "yesterday"}, {"InstanceId": "ins-ok"}]}}),
            "ins-y",
            "CreatedTime",
        ),
    ] {
        let server = MockServer::start().await;
        describe(0)
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
        let pages = collect(&provider(&server)).await;
        let page = pages[0].as_ref().unwrap();
        assert_eq!(page.hosts[0].instance_id, "ins-ok");
        assert_eq!(page.failed[0].instance_id.as_deref(), Some(id));
        assert!(page.failed[0].reason.contains(field), "{:?}", page.failed);
    }
    // Not JSON at all.
    let server = MockServer::start().await;
    describe(0)
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>portal</html>"))
        .expect(1)
        .mount(&server)
        .await;
    let pages = collect(&provider(&server)).await;
    assert_eq!(pages[0].as_ref().unwrap_err().kind(), ErrorKind::Decode);
}

#[tokio::test]
async fn total_count_changing_mid_listing_marks_the_listing_as_moved() {
    let server = MockServer::start().await;
    describe(0)
        .respond_with(page(0, 100, 250))
        .expect(1)
        .mount(&server)
        .await;
    // An instance was created after the first page: TotalCount grew.
    describe(100)
        .respond_with(page(100, 100, 251))
        .expect(1)
        .mount(&server)
        .await;
    describe(200)
        .respond_with(page(200, 51, 251))
        .expect(1)
        .mount(&server)
        .await;
    let p = builder(&server).with_concurrency(1).build().unwrap();
    let pages: Vec<_> = collect(&p).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(pages.len(), 3, "the listing goes on to its end");
    assert!(pages[..2].iter().all(|p| p.moved.is_none()));
    // The last page says the listing moved, so the syncer confirms by id before it
    // releases anything.
    let moved = pages[2].moved.as_deref().unwrap();
    assert!(moved.contains("250") && moved.contains("251"), "{moved}");
}

#[tokio::test]
async fn describe_regions_is_signed_for_the_region_service() {
    let server = MockServer::start().await;
    let scope = format!("Credential={SECRET_ID}/2024-02-29/region/tc3_request,");
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("x-tc-action", "DescribeRegions"))
        .and(header("x-tc-version", "2022-06-27"))
        .and(body_string(r#"{"Product":"cvm"}"#))
        .and(move |r: &Request| {
            !r.headers.contains_key("x-tc-region")
                && r.headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains(&scope))
        })
        .and(header_exists("x-tc-timestamp"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "Response": {
                "TotalCount": 2,
                "RegionSet": [
                    {"Region": "ap-guangzhou", "RegionName": "华南地区(广州)", "RegionState": "AVAILABLE"},
                    {"Region": "ap-shanghai-fsi", "RegionName": "华东地区(上海金融)", "RegionState": "AVAILABLE"}
                ],
                "RequestId": "rid-regions"
            }
        })))
        .expect(1)
        .mount(&server)
        .await;
    let regions = builder(&server)
        .build_client()
        .unwrap()
        .describe_regions()
        .await
        .unwrap();
    assert_eq!(regions.len(), 2);
    assert_eq!(regions[1].region, "ap-shanghai-fsi");
    assert_eq!(regions[0].name.as_deref(), Some("华南地区(广州)"));
    assert_eq!(regions[0].state.as_deref(), Some("AVAILABLE"));
}

#[tokio::test]
async fn the_provider_leaves_out_regions_reported_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-tc-action", "DescribeRegions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "Response": {
                "TotalCount": 3,
                "RegionSet": [
                    {"Region": "ap-guangzhou", "RegionName": "华南地区(广州)", "RegionState": "AVAILABLE"},
                    {"Region": "ap-chengdu", "RegionName": "西南地区(成都)", "RegionState": "UNAVAILABLE"},
                    {"Region": "ap-tokyo", "RegionName": "亚太东北(东京)", "RegionState": "AVAILABLE"}
                ],
                "RequestId": "rid-regions"
            }
        })))
        .expect(1)
        .mount(&server)
        .await;
    let provider = builder(&server).build().unwrap();
    let regions = provider.regions().unwrap().await.unwrap();
    assert_eq!(regions, ["ap-guangzhou", "ap-tokyo"]);
}

#[tokio::test]
async fn limits_above_100_are_refused_before_sending() {
    let server = MockServer::start().await;
    let client = builder(&server).build_client().unwrap();
    let e = client.describe_instances(0, 101).await.unwrap_err();
    assert_eq!(e.field(), Some("limit"));
    assert!(server.received_requests().await.unwrap().is_empty());
}
