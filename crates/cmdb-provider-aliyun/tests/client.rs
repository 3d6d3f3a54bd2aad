//! The ECS client and provider over HTTP: raw wiremock mocks for the exact requests, and
//! the signature-checking simulator for whole listings.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use cmdb_core::testing::{
    host_provider_conformance, host_provider_error_conformance, ProviderExpectation,
};
use cmdb_core::{ErrorKind, HostProvider, HostStatus};
use cmdb_http::{HttpConfig, RetryConfig};
use cmdb_provider_aliyun::{AliyunBuilder, AliyunHostProvider};
use cmdb_secret::Credentials;
use cmdb_testkit::aliyun::SimulatedAliyun;
use futures::StreamExt;
use serde_json::json;
use wiremock::matchers::{
    header, header_exists, method, path, query_param, query_param_is_missing,
};
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

fn for_sim(sim: &SimulatedAliyun) -> AliyunBuilder {
    builder(&sim.uri(), &sim.access_key_id(), &sim.access_key_secret())
}

fn page(ids: &[&str], next: &str, total: u64) -> serde_json::Value {
    let instances: Vec<_> = ids
        .iter()
        .map(|id| json!({"InstanceId": id, "InstanceName": format!("n-{id}"), "Status": "Running", "Memory": 2048, "Cpu": 1}))
        .collect();
    json!({"RequestId": format!("RID-{next}"), "TotalCount": total, "NextToken": next, "Instances": {"Instance": instances}})
}

async fn collect(provider: &AliyunHostProvider) -> Vec<cmdb_core::Result<cmdb_core::HostPage>> {
    provider.pages().collect().await
}

#[tokio::test(start_paused = true)]
async fn several_pages_send_exact_signed_requests() {
    let server = MockServer::start().await;
    let common = || {
        Mock::given(method("POST"))
            .and(path("/"))
            .and(query_param("RegionId", REGION))
            .and(query_param("MaxResults", "100"))
            .and(header("x-acs-action", "DescribeInstances"))
            .and(header("x-acs-version", "2014-05-26"))
            .and(header_exists("x-acs-date"))
            .and(header_exists("x-acs-signature-nonce"))
            .and(header(
                "x-acs-content-sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ))
            .and(header_exists("authorization"))
    };
    common()
        .and(query_param_is_missing("NextToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            &["i-1", "i-2"],
            "tok/2 +*",
            5,
        )))
        .expect(1)
        .mount(&server)
        .await;
    common()
        .and(query_param("NextToken", "tok/2 +*"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&["i-3", "i-4"], "tok-3", 5)))
        .expect(1)
        .mount(&server)
        .await;
    common()
        .and(query_param("NextToken", "tok-3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&["i-5"], "", 5)))
        .expect(1)
        .mount(&server)
        .await;

    let provider = builder(&server.uri(), "LTAI5tKey", "secret")
        .build()
        .unwrap();
    let pages = collect(&provider).await;
    let ids: Vec<String> = pages
        .into_iter()
        .flat_map(|p| p.unwrap().hosts)
        .map(|h| h.instance_id)
        .collect();
    assert_eq!(ids, ["i-1", "i-2", "i-3", "i-4", "i-5"]);

    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 3);
    let auth = received[0].headers["authorization"].to_str().unwrap();
    assert!(auth.starts_with("ACS3-HMAC-SHA256 Credential=LTAI5tKey,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature="), "{auth}");
    // The token travels RFC 3986-encoded, exactly as signed.
    assert!(
        received[1]
            .url
            .query()
            .unwrap()
            .contains("NextToken=tok%2F2%20%2B%2A"),
        "{:?}",
        received[1].url.query()
    );
    let nonces: std::collections::HashSet<_> = received
        .iter()
        .map(|r| {
            r.headers["x-acs-signature-nonce"]
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(nonces.len(), 3, "a fresh nonce per request");
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_with_a_fresh_signature() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("x-acs-retry-after", "1500")
                .set_body_json(json!({"RequestId": "RID-T", "HostId": "ecs.aliyuncs.com", "Code": "Throttling.User", "Message": "Request was denied due to user flow control.", "Recommend": ""})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&["i-1"], "", 1)))
        .expect(1)
        .mount(&server)
        .await;
    let provider = builder(&server.uri(), "ak", "sk").build().unwrap();
    let started = tokio::time::Instant::now();
    let pages = collect(&provider).await;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].as_ref().unwrap().hosts.len(), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "x-acs-retry-after honoured"
    );
    let stats = provider.client().stats();
    assert_eq!((stats.requests, stats.retries, stats.throttled), (2, 1, 1));
    let received = server.received_requests().await.unwrap();
    assert_ne!(
        received[0].headers["x-acs-signature-nonce"], received[1].headers["x-acs-signature-nonce"],
        "each attempt is signed afresh"
    );
}

#[tokio::test(start_paused = true)]
async fn auth_errors_fail_fast_naming_the_code() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "RequestId": "RID-A", "HostId": "ecs.aliyuncs.com", "Code": "InvalidAccessKeyId.NotFound",
            "Message": "Specified access key is not found.", "Recommend": "https://api.aliyun.com/troubleshoot?q=InvalidAccessKeyId.NotFound"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let provider = builder(&server.uri(), "ak", "sk").build().unwrap();
    let pages = collect(&provider).await;
    assert_eq!(pages.len(), 1);
    let e = pages.into_iter().next().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(!e.is_retryable());
    let v = e.vendor_error().unwrap();
    assert_eq!(v.code.as_deref(), Some("InvalidAccessKeyId.NotFound"));
    assert_eq!(v.request_id.as_deref(), Some("RID-A"));
    assert!(
        e.to_string().contains("check the secret's AccessKey ID"),
        "{e}"
    );
}

#[tokio::test(start_paused = true)]
async fn wrong_secret_is_a_signature_error_sent_once() {
    let sim = SimulatedAliyun::start(REGION, 5).await;
    let provider = builder(&sim.uri(), &sim.access_key_id(), "not-the-secret")
        .build()
        .unwrap();
    let pages = collect(&provider).await;
    let e = pages.into_iter().next().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("SignatureDoesNotMatch")
    );
    assert!(e.to_string().contains("AccessKey secret"), "{e}");
    assert!(!e.to_string().contains("not-the-secret"), "{e}");
    assert_eq!(sim.requests(), 1, "auth errors are never retried");
}

#[tokio::test(start_paused = true)]
async fn malformed_instances_are_failed_records_and_malformed_pages_decode_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(query_param_is_missing("NextToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "RequestId": "RID-M", "TotalCount": 1, "NextToken": "",
            "Instances": {"Instance": [{"InstanceId": "i-bad", "Cpu": "lots"}]}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let provider = builder(&server.uri(), "ak", "sk").build().unwrap();
    let page = collect(&provider)
        .await
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    assert!(page.hosts.is_empty());
    let failed = &page.failed[0];
    assert_eq!(failed.instance_id.as_deref(), Some("i-bad"));
    assert!(failed.reason.contains("`Cpu`"), "{failed:?}");

    for (body, field) in [
        (json!({"RequestId": "RID-N", "TotalCount": 0}), "Instances"),
        (
            json!({"RequestId": "RID-N", "TotalCount": "many", "Instances": {"Instance": []}}),
            "TotalCount",
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
        let provider = builder(&server.uri(), "ak", "sk").build().unwrap();
        let e = collect(&provider)
            .await
            .into_iter()
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert!(
            e.message().contains(field) && e.message().contains("RID-N"),
            "{e}"
        );
    }

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-acs-request-id", "RID-H")
                .set_body_string("<html>proxy</html>"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let provider = builder(&server.uri(), "ak", "sk").build().unwrap();
    let e = collect(&provider)
        .await
        .into_iter()
        .next()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(
        e.message().contains("RID-H") && e.message().contains("invalid JSON"),
        "{e}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_repeated_token_ends_the_listing_with_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(query_param_is_missing("NextToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&["i-1"], "same", 3)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(query_param("NextToken", "same"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&["i-2"], "same", 3)))
        .expect(1)
        .mount(&server)
        .await;
    let provider = builder(&server.uri(), "ak", "sk").build().unwrap();
    let pages = collect(&provider).await;
    assert_eq!(pages.len(), 3, "two pages, then the error, then the end");
    assert!(pages[0].is_ok() && pages[1].is_ok());
    let e = pages[2].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.message().contains("repeated"), "{e}");
}

/// An answer with the key twice is not followed at all: it is a decode error, and no
/// request is sent with either token.
#[tokio::test(start_paused = true)]
async fn an_answer_with_the_token_twice_is_a_decode_error() {
    let server = MockServer::start().await;
    let twice = r#"{"RequestId":"RID-2","NextToken":"first","TotalCount":2,
        "Instances":{"Instance":[{"InstanceId":"i-1","RegionId":"cn-hangzhou"}]},
        "NextToken":"second","PageSize":1,"Z":[]}"#;
    Mock::given(method("POST"))
        .and(query_param_is_missing("NextToken"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(twice, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(query_param("NextToken", "first"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&["i-x"], "", 2)))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(query_param("NextToken", "second"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&["i-2"], "", 2)))
        .expect(0)
        .mount(&server)
        .await;
    let provider = builder(&server.uri(), "ak", "sk").build().unwrap();
    let pages = collect(&provider).await;
    assert_eq!(pages.len(), 1);
    let e = pages[0].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.message().contains("duplicate field `NextToken`"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn an_empty_region_is_one_empty_page_not_an_error() {
    let sim = SimulatedAliyun::start(REGION, 0).await;
    let provider = for_sim(&sim).build().unwrap();
    let pages = collect(&provider).await;
    assert_eq!(pages.len(), 1);
    let p = pages[0].as_ref().unwrap();
    assert!(p.hosts.is_empty());
    assert_eq!(p.total, Some(0));
}

#[tokio::test(start_paused = true)]
async fn simulator_listing_passes_the_provider_conformance_suite() {
    let sim = SimulatedAliyun::start(REGION, 250).await;
    let provider = for_sim(&sim).build().unwrap();
    let client = provider.client().clone();
    let n = host_provider_conformance(
        Arc::new(provider),
        ProviderExpectation {
            hosts: Some(250),
            max_pages: 10,
            absent_ids: vec!["i-sim99999999".to_owned()],
        },
    )
    .await;
    assert_eq!(n, 250);
    assert_eq!(
        client.stats().requests,
        9,
        "3 pages of 100, listed twice, then the 250 ids and one absent id looked up, 100 a request"
    );
    assert_eq!(sim.requests(), 9);
    assert_eq!(sim.listings(), 6, "lookups are not listings");
}

#[tokio::test(start_paused = true)]
async fn simulated_hosts_map_with_their_quirks() {
    let sim = SimulatedAliyun::start(REGION, 40).await;
    let provider = for_sim(&sim).with_page_size(15).build().unwrap();
    let pages = collect(&provider).await;
    assert_eq!(pages.len(), 3);
    let hosts: Vec<_> = pages.into_iter().flat_map(|p| p.unwrap().hosts).collect();
    assert_eq!(hosts.len(), 40);
    let by_id = |i: u64| {
        hosts
            .iter()
            .find(|h| h.instance_id == sim.instance_id(i))
            .unwrap()
    };
    // Host 4 is classic: its private address comes from InnerIpAddress.
    assert_eq!(by_id(4).private_ips, vec!["10.80.0.4"]);
    // Host 6 lists its address only on its primary NIC.
    assert_eq!(by_id(6).private_ips, vec!["172.16.0.6"]);
    // Host 1 has an EIP and an empty public list; host 0 has an empty EIP object.
    assert_eq!(by_id(1).public_ips, vec!["47.96.0.1"]);
    assert_eq!(by_id(0).public_ips, vec!["121.40.0.0"]);
    assert_eq!(by_id(0).name, "网站-0");
    assert!(by_id(0).expire_at.is_none(), "2099 sentinel");
    assert!(by_id(2).expire_at.is_some(), "subscription expires");
    assert_eq!(by_id(2).status, HostStatus::Stopped);
    assert_eq!(by_id(7).pay_mode, cmdb_core::PayMode::Spot);
    assert_eq!(by_id(5).extra["OperationLocks"], json!(["financial"]));
    assert_eq!(by_id(3).gpu_count, Some(1));
}

#[tokio::test(start_paused = true)]
async fn throttling_and_server_errors_injected_still_complete() {
    let sim = SimulatedAliyun::start(REGION, 500).await;
    sim.throttle_every(2);
    sim.fail_next(1, 503);
    let provider = for_sim(&sim).build().unwrap();
    let pages = collect(&provider).await;
    assert!(pages.iter().all(|p| p.is_ok()), "{pages:?}");
    assert_eq!(
        pages
            .iter()
            .map(|p| p.as_ref().unwrap().hosts.len())
            .sum::<usize>(),
        500
    );
    let answers = sim.answers();
    assert!(
        answers.contains(&"Throttling.User".to_owned()),
        "{answers:?}"
    );
    assert!(
        answers.contains(&"ServiceUnavailable".to_owned()),
        "{answers:?}"
    );
    let stats = provider.client().stats();
    assert!(stats.throttled >= 2 && stats.retries >= 3, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn persistent_failures_pass_the_error_conformance_suite() {
    let sim = SimulatedAliyun::start(REGION, 150).await;
    let provider = for_sim(&sim)
        .with_http_config(
            HttpConfig::default().with_retry(RetryConfig::default().with_max_attempts(2)),
        )
        .build()
        .unwrap();
    // Page one succeeds, page two fails on both attempts (asked for while page one is
    // still being decoded).
    sim.fail_page(1, 2, 500);
    let mut stream = provider.pages();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.hosts.len(), 100);
    let e = stream.next().await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("InternalError")
    );
    assert!(stream.next().await.is_none());

    sim.fail_next(2, 503);
    let ok_pages = host_provider_error_conformance(Arc::new(provider)).await;
    assert_eq!(ok_pages, 0);
}

#[tokio::test(start_paused = true)]
async fn describe_regions_reports_endpoints() {
    let sim = SimulatedAliyun::start(REGION, 1).await;
    let client = for_sim(&sim).build_client().unwrap();
    let regions = client.describe_regions().await.unwrap();
    let mine = regions.iter().find(|r| r.region_id == REGION).unwrap();
    assert_eq!(
        mine.endpoint.as_deref(),
        Some("ecs.cn-hangzhou.aliyuncs.com")
    );
    assert!(regions.iter().any(|r| r.region_id == "cn-beijing"));
    // With an override, the override is the endpoint of every call.
    assert_eq!(
        client.endpoint().await.unwrap().to_string(),
        format!("{}/", sim.uri())
    );
}

#[tokio::test(start_paused = true)]
async fn signatures_are_timestamped_by_the_injected_clock() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-acs-date", "2023-11-14T22:13:20Z"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&["i-1"], "", 1)))
        .expect(1)
        .mount(&server)
        .await;
    let provider = builder(&server.uri(), "ak", "sk")
        .with_clock(|| 1_700_000_000)
        .build()
        .unwrap();
    let pages = collect(&provider).await;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].as_ref().unwrap().hosts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn temporary_credentials_send_their_token_signed_and_an_expired_one_fails_once() {
    let sim = SimulatedAliyun::start(REGION, 150).await;
    let token = "CAIS-simulated-sts-token";
    sim.set_security_token(Some(token));
    let sts = |token: Option<&str>| {
        let mut credentials = Credentials::new(sim.access_key_id(), sim.access_key_secret());
        if let Some(t) = token {
            credentials = credentials.with_session_token(t);
        }
        for_sim(&sim).with_credentials(credentials).build().unwrap()
    };

    let pages = collect(&sts(Some(token))).await;
    let hosts: usize = pages.iter().map(|p| p.as_ref().unwrap().hosts.len()).sum();
    assert_eq!(hosts, 150);

    // A permanent key's request (no token) is refused for a temporary key.
    let before = sim.requests();
    let e = collect(&sts(None)).await.remove(0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("InvalidSecurityToken.MismatchWithAccessKey")
    );
    assert_eq!(sim.requests() - before, 1, "not retried");

    sim.expire_security_token();
    let before = sim.requests();
    let e = collect(&sts(Some(token))).await.remove(0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable());
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("InvalidSecurityToken.Expired")
    );
    assert!(e.to_string().contains("STS security token"), "{e}");
    assert_eq!(
        sim.requests() - before,
        1,
        "an expired token is never retried"
    );
    assert!(!format!("{e:?}").contains(token));
}

/// `DescribeRegions` at an injected discovery endpoint: a key without
/// `ecs:DescribeRegions` falls back to the documented endpoint for good; a transient
/// failure falls back for one call and is asked again; an answer is remembered.
#[tokio::test(start_paused = true)]
async fn describe_regions_is_optional_and_its_transient_failures_are_not_remembered() {
    let documented = "https://ecs-cn-hangzhou.aliyuncs.com/";
    let forbidden = || {
        ResponseTemplate::new(403).set_body_json(json!({
            "RequestId": "RID-F", "Code": "Forbidden.RAM",
            "Message": "User not authorized to operate on the specified resource, or this API doesn't support RAM."
        }))
    };
    let discovery = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-acs-action", "DescribeRegions"))
        .respond_with(forbidden())
        .expect(1)
        .mount(&discovery)
        .await;
    let client = AliyunBuilder::new()
        .with_credentials(Credentials::new("ak", "sk"))
        .with_region(REGION)
        .with_regions_endpoint(discovery.uri())
        .with_io_runtime(IO.handle().clone())
        .build_client()
        .unwrap();
    assert_eq!(client.endpoint().await.unwrap().to_string(), documented);
    assert_eq!(client.endpoint().await.unwrap().to_string(), documented);
    discovery.verify().await;

    // Unavailable (past the retries), then an answer.
    let discovery = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-acs-action", "DescribeRegions"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({
            "RequestId": "RID-U", "Code": "ServiceUnavailable",
            "Message": "The request has failed due to a temporary failure of the server."
        })))
        .up_to_n_times(1)
        .mount(&discovery)
        .await;
    Mock::given(method("POST"))
        .and(header("x-acs-action", "DescribeRegions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "RequestId": "RID-R",
            "Regions": {"Region": [{"RegionId": REGION, "RegionEndpoint": "ecs.cn-hangzhou.aliyuncs.com", "LocalName": "华东1（杭州）"}]}
        })))
        .mount(&discovery)
        .await;
    let client = AliyunBuilder::new()
        .with_credentials(Credentials::new("ak", "sk"))
        .with_region(REGION)
        .with_regions_endpoint(discovery.uri())
        .with_http_config(HttpConfig::default().with_retry(RetryConfig::no_retry()))
        .with_io_runtime(IO.handle().clone())
        .build_client()
        .unwrap();
    assert_eq!(
        client.endpoint().await.unwrap().to_string(),
        documented,
        "a transient failure falls back for this call"
    );
    let reported = "https://ecs.cn-hangzhou.aliyuncs.com/";
    assert_eq!(client.endpoint().await.unwrap().to_string(), reported);
    assert_eq!(client.endpoint().await.unwrap().to_string(), reported);
    assert_eq!(
        discovery.received_requests().await.unwrap().len(),
        2,
        "asked again after the failure, not after the answer"
    );
}

#[tokio::test(start_paused = true)]
async fn the_provider_lists_the_regions_describe_regions_reports() {
    let sim = SimulatedAliyun::start(REGION, 3).await;
    let provider = for_sim(&sim).build().unwrap();
    let regions = provider
        .regions()
        .expect("Alibaba Cloud lists regions")
        .await
        .unwrap();
    assert_eq!(regions, [REGION, "cn-beijing", "ap-southeast-1"]);
    assert_eq!(sim.requests(), 1, "one DescribeRegions request");

    let wrong = builder(&sim.uri(), &sim.access_key_id(), "not-the-secret")
        .build()
        .unwrap();
    let e = wrong.regions().unwrap().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
}

#[tokio::test(start_paused = true)]
async fn listed_regions_keep_the_vendor_order_without_duplicates() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-acs-action", "DescribeRegions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "RequestId": "RID-R",
            "Regions": {"Region": [
                {"RegionId": "cn-qingdao", "RegionEndpoint": "ecs.cn-qingdao.aliyuncs.com", "LocalName": "华北1（青岛）", "Status": "available"},
                {"RegionId": "cn-hangzhou", "RegionEndpoint": "ecs-cn-hangzhou.aliyuncs.com", "LocalName": "华东1（杭州）", "Status": "soldOut"},
                {"RegionId": "cn-qingdao", "RegionEndpoint": "ecs.cn-qingdao.aliyuncs.com", "LocalName": "华北1（青岛）", "Status": "available"}
            ]}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let provider = builder(&server.uri(), "ak", "sk").build().unwrap();
    let regions = provider.regions().unwrap().await.unwrap();
    assert_eq!(
        regions,
        ["cn-qingdao", "cn-hangzhou"],
        "a sold-out region may still hold instances"
    );
}
