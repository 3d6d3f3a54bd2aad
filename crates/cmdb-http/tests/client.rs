//! `HttpClient` against wiremock servers: retries, hints, budgets, classification, limits.
//!
//! Tests that would sleep run on a paused clock, with the client's I/O on a separate
//! real-time runtime (`with_io_runtime`), so reqwest's own timers never see the paused
//! clock; waits are measured in virtual time and take no real time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use cmdb_core::{Error, ErrorKind, Vendor, VendorError};
use cmdb_http::{
    AddressPolicy, DefaultClassifier, ErrorClassifier, HttpClient, HttpConfig, RateLimiter,
    RawResponse, RetryConfig,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use reqwest::Method;
use tokio::time::Instant;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

static IO: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("I/O runtime")
});

fn config() -> HttpConfig {
    HttpConfig::default()
}

fn client(config: HttpConfig) -> HttpClient {
    client_with(config, DefaultClassifier::new(Some(Vendor::Huawei)))
}

fn client_with(config: HttpConfig, classifier: impl ErrorClassifier) -> HttpClient {
    HttpClient::new(config, Some(Vendor::Huawei), classifier)
        .unwrap()
        .with_jitter_seed(42)
        .with_io_runtime(IO.handle().clone())
}

/// A `build` closure for `GET <server>/v1/servers`, counting its calls.
fn get(
    server: &MockServer,
    calls: &Arc<AtomicUsize>,
) -> impl FnMut() -> cmdb_core::Result<reqwest::Request> {
    let url: url::Url = format!("{}/v1/servers?limit=10", server.uri())
        .parse()
        .unwrap();
    let calls = calls.clone();
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(reqwest::Request::new(Method::GET, url.clone()))
    }
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string(r#"{"servers":[]}"#)
}

#[tokio::test(start_paused = true)]
async fn two_503_then_200_succeeds_on_the_third_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/servers"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/servers"))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;

    let http = client(config());
    let calls = Arc::new(AtomicUsize::new(0));
    let response = http.send("Test", get(&server, &calls)).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, r#"{"servers":[]}"#);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let stats = http.stats();
    assert_eq!((stats.requests, stats.retries, stats.throttled), (3, 2, 0));
    // Clones share the counters.
    assert_eq!(http.clone().stats(), stats);
}

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_are_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;

    let http = client(config());
    let calls = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    http.send("Test", get(&server, &calls)).await.unwrap();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(7), "{waited:?}");
    assert!(
        waited < Duration::from_secs(8),
        "the hint replaces the backoff: {waited:?}"
    );
    let stats = http.stats();
    assert_eq!((stats.requests, stats.retries, stats.throttled), (2, 1, 1));
}

/// Alibaba answers throttling with HTTP 400 and a `Throttling.*` code, so its classifier,
/// not the status, makes it retryable; `x-acs-retry-after` is in milliseconds.
#[derive(Debug)]
struct AliyunLike;

impl ErrorClassifier for AliyunLike {
    fn classify(&self, response: &RawResponse) -> Option<Error> {
        if response.is_success() {
            return None;
        }
        let body: serde_json::Value = response.json().ok()?;
        let code = body["Code"].as_str().unwrap_or_default().to_owned();
        let (kind, retryable) = if code.starts_with("Throttling") {
            (ErrorKind::RateLimited, true)
        } else {
            cmdb_http::classify_status(Some(Vendor::Aliyun), response.status.as_u16())
        };
        Some(Error::vendor(
            kind,
            retryable,
            VendorError {
                vendor: Some(Vendor::Aliyun),
                http_status: Some(response.status.as_u16()),
                code: Some(code),
                message: body["Message"].as_str().map(str::to_owned),
                request_id: body["RequestId"].as_str().map(str::to_owned),
            },
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn x_acs_retry_after_milliseconds_are_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("x-acs-retry-after", "2500")
                .set_body_string(
                    r#"{"Code":"Throttling.User","Message":"flow control","RequestId":"R1"}"#,
                ),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;

    let http = client_with(config(), AliyunLike);
    let calls = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    http.send("Test", get(&server, &calls)).await.unwrap();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(2500), "{waited:?}");
    assert!(waited < Duration::from_millis(2600), "{waited:?}");
    assert_eq!(http.stats().throttled, 1);
}

#[tokio::test(start_paused = true)]
async fn attempts_are_bounded_and_counted_in_the_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_string("internal"))
        .expect(6)
        .mount(&server)
        .await;

    let http = client(config());
    let calls = Arc::new(AtomicUsize::new(0));
    let error = http.send("Test", get(&server, &calls)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.message().contains("after 6 attempts"), "{error}");
    assert!(
        !error.message().contains("limit=10"),
        "no query in messages: {error}"
    );
    assert_eq!(error.vendor_error().unwrap().http_status, Some(500));
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    assert_eq!(http.stats().retries, 5);
}

#[tokio::test(start_paused = true)]
async fn a_hint_past_the_time_budget_is_not_waited() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "600"))
        .expect(1)
        .mount(&server)
        .await;

    let http = client(
        config().with_retry(RetryConfig::default().with_max_elapsed(Duration::from_secs(60))),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let error = http.send("Test", get(&server, &calls)).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.message().contains("after 1 attempt"), "{error}");
    assert!(error.message().contains("budget"), "{error}");
    assert_eq!(http.stats().retries, 0);
}

#[tokio::test(start_paused = true)]
async fn the_total_time_is_bounded_by_the_budget() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "4"))
        .expect(3)
        .mount(&server)
        .await;

    // 10 s of budget: waits of 4 s at 0 s and 4 s, then a third would end at 12 s.
    let retry = RetryConfig::default()
        .with_max_attempts(100)
        .with_max_elapsed(Duration::from_secs(10));
    let http = client(config().with_retry(retry));
    let calls = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let error = http.send("Test", get(&server, &calls)).await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(8) && elapsed <= Duration::from_secs(10),
        "{elapsed:?}"
    );
    assert!(error.message().contains("after 3 attempts"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_401_is_never_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("X-Request-Id", "RID-401")
                .set_body_string(r#"{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information"}"#),
        )
        .expect(1)
        .mount(&server)
        .await;

    let http = client(config());
    let calls = Arc::new(AtomicUsize::new(0));
    let error = http.send("Test", get(&server, &calls)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthenticated);
    assert_eq!(
        error.vendor_error().unwrap().request_id.as_deref(),
        Some("RID-401")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(http.stats().retries, 0);
}

/// Tencent-style: every error comes with HTTP 200, in `Response.Error`.
#[derive(Debug)]
struct TencentLike {
    /// Marks auth errors retryable, to show that the client refuses anyway.
    auth_retryable: bool,
}

impl ErrorClassifier for TencentLike {
    fn classify(&self, response: &RawResponse) -> Option<Error> {
        let body: serde_json::Value = match response.json() {
            Ok(body) => body,
            Err(e) => return Some(e),
        };
        let error = body["Response"].get("Error")?;
        let code = error["Code"].as_str().unwrap_or_default().to_owned();
        let (kind, retryable) = match code.as_str() {
            c if c.starts_with("RequestLimitExceeded") => (ErrorKind::RateLimited, true),
            c if c.starts_with("AuthFailure") => (ErrorKind::Unauthenticated, self.auth_retryable),
            "InternalError" => (ErrorKind::Unavailable, true),
            _ => (ErrorKind::InvalidInput, false),
        };
        Some(Error::vendor(
            kind,
            retryable,
            VendorError {
                vendor: Some(Vendor::Tencent),
                http_status: Some(response.status.as_u16()),
                code: Some(code),
                message: error["Message"].as_str().map(str::to_owned),
                request_id: body["Response"]["RequestId"].as_str().map(str::to_owned),
            },
        ))
    }
}

fn tencent_error(code: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string(format!(
        r#"{{"Response":{{"Error":{{"Code":"{code}","Message":"m"}},"RequestId":"req-{code}"}}}}"#
    ))
}

fn tencent_ok() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_string(r#"{"Response":{"TotalCount":0,"InstanceSet":[],"RequestId":"ok"}}"#)
}

#[tokio::test(start_paused = true)]
async fn an_auth_error_in_a_200_body_is_never_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(tencent_error("AuthFailure.SignatureFailure"))
        .expect(1)
        .mount(&server)
        .await;

    let http = client_with(
        config(),
        TencentLike {
            auth_retryable: true,
        },
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let error = http.send("Test", get(&server, &calls)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthenticated);
    assert_eq!(
        error.vendor_error().unwrap().code.as_deref(),
        Some("AuthFailure.SignatureFailure")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_retryable_error_in_a_200_body_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(tencent_error("RequestLimitExceeded"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(tencent_ok())
        .expect(1)
        .mount(&server)
        .await;

    let http = client_with(
        config(),
        TencentLike {
            auth_retryable: false,
        },
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let response = http.send("Test", get(&server, &calls)).await.unwrap();
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["Response"]["RequestId"], "ok");
    let stats = http.stats();
    assert_eq!((stats.requests, stats.retries, stats.throttled), (2, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_in_a_200_body_is_returned_typed_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(tencent_error("InvalidParameterValue"))
        .expect(1)
        .mount(&server)
        .await;

    let http = client_with(
        config(),
        TencentLike {
            auth_retryable: false,
        },
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let error = http.send("Test", get(&server, &calls)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    let v = error.vendor_error().unwrap();
    assert_eq!(v.vendor, Some(Vendor::Tencent));
    assert_eq!(v.http_status, Some(200));
    assert_eq!(v.code.as_deref(), Some("InvalidParameterValue"));
    assert_eq!(v.request_id.as_deref(), Some("req-InvalidParameterValue"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_non_retryable_error_after_retries_says_which_attempt() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403))
        .expect(1)
        .mount(&server)
        .await;

    let http = client(config());
    let calls = Arc::new(AtomicUsize::new(0));
    let error = http.send("Test", get(&server, &calls)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert!(error.message().contains("attempt 2"), "{error}");
}

/// Real time: the server holds the answer for 2 s, the client waits 200 ms.
#[tokio::test]
async fn a_request_timeout_is_a_timeout_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok().set_delay(Duration::from_secs(2)))
        .expect(1)
        .mount(&server)
        .await;

    let http = HttpClient::new(
        config()
            .with_request_timeout(Duration::from_millis(200))
            .with_retry(RetryConfig::no_retry()),
        None,
        DefaultClassifier::default(),
    )
    .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let error = http.send("Test", get(&server, &calls)).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.is_retryable());
    assert!(error.message().contains("after 1 attempt"), "{error}");
    assert!(
        !error.message().contains("limit=10"),
        "no query in messages: {error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_unavailable_and_retried() {
    // A port nobody listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url: url::Url = format!("http://127.0.0.1:{port}/v1/servers?token=SECRET")
        .parse()
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let http = client(config().with_retry(RetryConfig::default().with_max_attempts(3)));
    let error = http
        .send("Test", move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(reqwest::Request::new(Method::GET, url.clone()))
        })
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.message().contains("connection failed"), "{error}");
    assert!(error.message().contains("after 3 attempts"), "{error}");
    assert!(!error.to_string().contains("SECRET"), "{error}");
    assert!(!format!("{error:?}").contains("SECRET"), "{error:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn build_runs_once_per_attempt_so_each_attempt_is_signed_afresh() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("x-nonce", "3"))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;

    let http = client(config());
    let url: url::Url = format!("{}/v1/servers", server.uri()).parse().unwrap();
    let mut nonce = 0;
    http.send("Test", || {
        nonce += 1;
        let mut request = reqwest::Request::new(Method::GET, url.clone());
        request
            .headers_mut()
            .insert("x-nonce", nonce.to_string().parse().unwrap());
        request.headers_mut().insert(
            http::header::AUTHORIZATION,
            cmdb_http::sensitive_header_value(&format!("SDK-HMAC-SHA256 Signature={nonce}"))?,
        );
        Ok(request)
    })
    .await
    .unwrap();
    assert_eq!(nonce, 3);
    let nonces: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.headers["x-nonce"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(nonces, ["1", "2", "3"]);
}

#[tokio::test(start_paused = true)]
async fn a_build_error_is_returned_without_sending() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok())
        .expect(0)
        .mount(&server)
        .await;
    let http = client(config());
    let error = http
        .send("Test", || {
            Err(Error::invalid_field("region", "is required"))
        })
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("region"));
    assert_eq!(http.stats().requests, 0);
}

#[tokio::test(start_paused = true)]
async fn a_shared_limiter_spaces_the_requests_of_every_client() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok())
        .expect(6)
        .mount(&server)
        .await;

    // 5 requests a second for the secret, shared by two clients (e.g. two regions).
    let limiter = Arc::new(RateLimiter::per_second(5));
    let a = client(config()).with_limiter(limiter.clone());
    let b = client(config()).with_limiter(limiter);
    let calls = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let run = |http: HttpClient| {
        let mut build = get(&server, &calls);
        async move {
            for _ in 0..3 {
                http.send("Test", &mut build).await.unwrap();
            }
        }
    };
    tokio::join!(run(a), run(b));
    let elapsed = start.elapsed();
    // Six requests at 5/s: the last one goes out 5 intervals after the first.
    assert!(elapsed >= Duration::from_millis(1000), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1100), "{elapsed:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 6);
}

#[tokio::test(start_paused = true)]
async fn the_in_flight_cap_holds_across_clones() {
    let server = MockServer::start().await;
    // Real time on the server side: each answer takes 100 ms.
    Mock::given(method("GET"))
        .respond_with(ok().set_delay(Duration::from_millis(100)))
        .expect(4)
        .mount(&server)
        .await;

    let http = client(config().with_max_in_flight(1));
    let calls = Arc::new(AtomicUsize::new(0));
    let real = std::time::Instant::now();
    let sends: Vec<_> = (0..4)
        .map(|_| {
            let http = http.clone();
            let build = get(&server, &calls);
            async move { http.send("Test", build).await }
        })
        .collect();
    for result in futures::future::join_all(sends).await {
        result.unwrap();
    }
    // One at a time: four answers of 100 ms each, in sequence.
    assert!(
        real.elapsed() >= Duration::from_millis(400),
        "{:?}",
        real.elapsed()
    );
}

#[tokio::test]
async fn refused_addresses_get_no_request_whether_literal_or_resolved() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok())
        .expect(0)
        .mount(&server)
        .await;
    let port = server.address().port();
    let public_only = HttpConfig::default().with_addresses(AddressPolicy::public_only());
    let refusing = client(public_only.with_retry(RetryConfig::default().with_max_attempts(3)));
    for base in [
        format!("http://127.0.0.1:{port}"),
        // A name: refused on the address it resolves to, at connect time.
        format!("http://localhost:{port}"),
    ] {
        let url: url::Url = format!("{base}/v1/servers").parse().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let e = refusing
            .send("Test", move || {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(reqwest::Request::new(Method::GET, url.clone()))
            })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{base}: {e}");
        assert!(!e.is_retryable(), "{e}");
        assert!(e.to_string().contains("loopback"), "{e}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a refusal is not retried");
    }

    // The metadata address is refused even where private addresses are allowed.
    let lab = client(
        HttpConfig::default().with_addresses(AddressPolicy::public_only().with_private(true)),
    );
    let e = lab
        .send("Test", || {
            Ok(reqwest::Request::new(
                Method::GET,
                "http://100.100.100.200/latest/meta-data/".parse().unwrap(),
            ))
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("metadata"), "{e}");

    // Allowed, the same server answers.
    let calls = Arc::new(AtomicUsize::new(0));
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    lab.send("Test", get(&server, &calls))
        .await
        .expect("private allowed");
}

#[tokio::test(start_paused = true)]
async fn a_body_without_an_error_envelope_is_described_never_echoed() {
    let server = MockServer::start().await;
    // A proxy's page that reflects the request (a signature, a key) back.
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_raw(
            "<html>Forbidden: Authorization=ACS3-HMAC-SHA256 Credential=LTAI-SECRET-MARKER</html>",
            "text/html; charset=utf-8",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let http = client(config());
    let calls = Arc::new(AtomicUsize::new(0));
    let error = http.send("Test", get(&server, &calls)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    let text = format!("{error} {error:?}");
    assert!(!text.contains("SECRET-MARKER"), "{text}");
    assert!(
        text.contains("an unexpected text/html body of 84 bytes"),
        "{text}"
    );
}

/// A metric's labels, sorted.
type Labels = Vec<(String, String)>;

/// Every metric a snapshot holds: name, labels and value.
fn metrics_of(
    snapshotter: &metrics_util::debugging::Snapshotter,
) -> Vec<(String, Labels, DebugValue)> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            (key.name().to_owned(), labels, value)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let mut v: Labels = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.sort();
    v
}

#[tokio::test(start_paused = true)]
async fn every_attempt_is_measured_and_retries_and_throttles_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let http = client(config()).with_region("cn-north-4");
    let calls = Arc::new(AtomicUsize::new(0));
    http.send("ListServersDetails", get(&server, &calls))
        .await
        .unwrap();

    let mut found = metrics_of(&snapshotter);
    found.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let duration = |class: &str| {
        labels(&[
            ("vendor", "huawei"),
            ("action", "ListServersDetails"),
            ("region", "cn-north-4"),
            ("status_class", class),
        ])
    };
    let shape: Vec<(String, Labels, String)> = found
        .iter()
        .map(|(name, labels, value)| {
            let value = match value {
                DebugValue::Counter(n) => format!("counter {n}"),
                DebugValue::Histogram(samples) => format!("histogram of {}", samples.len()),
                DebugValue::Gauge(g) => format!("gauge {g}"),
            };
            (name.clone(), labels.clone(), value)
        })
        .collect();
    let expected = vec![
        (
            "cmdb_vendor_request_duration_seconds".to_owned(),
            duration("2xx"),
            "histogram of 1".to_owned(),
        ),
        (
            "cmdb_vendor_request_duration_seconds".to_owned(),
            duration("4xx"),
            "histogram of 1".to_owned(),
        ),
        (
            "cmdb_vendor_request_duration_seconds".to_owned(),
            duration("5xx"),
            "histogram of 1".to_owned(),
        ),
        (
            "cmdb_vendor_retries_total".to_owned(),
            labels(&[("vendor", "huawei")]),
            "counter 2".to_owned(),
        ),
        (
            "cmdb_vendor_throttled_total".to_owned(),
            labels(&[("vendor", "huawei")]),
            "counter 1".to_owned(),
        ),
    ];
    assert_eq!(shape, expected);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_without_an_answer_is_an_error_and_no_label_carries_the_query() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url: url::Url =
        format!("http://127.0.0.1:{port}/v1/servers?AccessKeyId=KEYID&token=SECRET")
            .parse()
            .unwrap();
    let http = HttpClient::new(
        config().with_retry(RetryConfig::no_retry()),
        None,
        DefaultClassifier::default(),
    )
    .unwrap()
    .with_io_runtime(IO.handle().clone());
    http.send("Probe", move || {
        Ok(reqwest::Request::new(Method::GET, url.clone()))
    })
    .await
    .unwrap_err();
    let found = metrics_of(&snapshotter);
    assert_eq!(found.len(), 1, "{found:?}");
    let (name, labels_found, value) = &found[0];
    assert_eq!(name, "cmdb_vendor_request_duration_seconds");
    assert_eq!(
        labels_found,
        &labels(&[
            ("vendor", "other"),
            ("action", "Probe"),
            ("region", ""),
            ("status_class", "error"),
        ])
    );
    assert!(matches!(value, DebugValue::Histogram(s) if s.len() == 1));
    for (_, labels, _) in &found {
        for (_, v) in labels {
            assert!(!v.contains("SECRET") && !v.contains("KEYID") && !v.contains("127.0.0.1"));
        }
    }
}
