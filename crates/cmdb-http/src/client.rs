//! The HTTP client every provider sends its requests through.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use cmdb_core::{Error, ErrorKind, Result, Vendor};
use http::{HeaderValue, Method};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;
use tracing::Instrument;

use crate::address::AddressPolicy;
use crate::classify::{ErrorClassifier, RawResponse};
use crate::config::HttpConfig;
use crate::rate::RateLimiter;
use crate::retry::{self, Backoff, RetryConfig};
use crate::telemetry::{self, vendor_label};

/// A `reqwest` client with everything a vendor API needs around it: a shared rate
/// limiter, a cap on requests in flight, bounded retries with jittered backoff that
/// honours the server's hints, and one vendor-specific [`ErrorClassifier`].
///
/// Cloning is cheap and clones share everything: connections, limiter, in-flight cap
/// and [`stats`](Self::stats).
///
/// Retries apply to any method: send only idempotent requests through it (listing calls
/// are), or give non-idempotent ones [`RetryConfig::no_retry`]. Redirects are not
/// followed (no vendor API redirects, and a redirect must not carry a signature
/// elsewhere): a 3xx is returned to the classifier.
///
/// Nothing here logs headers or query strings (signatures and tokens travel there):
/// logs and error messages name the method, host and path only.
///
/// Every attempt is a `vendor_call` tracing span (`vendor`, `action`, `attempt`) and records
/// the [metrics of `telemetry`](crate::telemetry), labelled by vendor, action, region
/// ([`with_region`](Self::with_region)) and HTTP status class.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    addresses: AddressPolicy,
    limiter: Arc<RateLimiter>,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    retry: RetryConfig,
    request_timeout: Duration,
    vendor: Option<Vendor>,
    /// The `region` label of this client's metrics.
    region: String,
    classifier: Arc<dyn ErrorClassifier>,
    stats: Arc<Counters>,
    rng: Arc<Mutex<StdRng>>,
    io_runtime: Option<Handle>,
}

/// Counts of one client and its clones, for sync reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ClientStats {
    /// Attempts sent, retries included.
    pub requests: u64,
    /// Attempts that were retries of a failed one.
    pub retries: u64,
    /// Attempts answered with a rate-limit error.
    pub throttled: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
}

impl HttpClient {
    /// A client built from `config`, for `vendor`'s API (`None` for a generic service),
    /// whose responses `classifier` judges. It has no rate limit until
    /// [`with_limiter`](Self::with_limiter).
    ///
    /// Fails with [`InvalidInput`](ErrorKind::InvalidInput) when `max_in_flight` is 0,
    /// the user agent is not a valid header value or the CA bundle holds no certificate.
    pub fn new(
        config: HttpConfig,
        vendor: Option<Vendor>,
        classifier: impl ErrorClassifier,
    ) -> Result<HttpClient> {
        if config.max_in_flight == 0 {
            return Err(Error::invalid_field("max_in_flight", "must be at least 1"));
        }
        let user_agent = HeaderValue::from_str(&config.user_agent)
            .map_err(|_| Error::invalid_field("user_agent", "is not a valid header value"))?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            // The system's roots; Mozilla's (webpki-roots) only where the system has none,
            // as in a container without a CA bundle.
            .tls_built_in_webpki_certs(builtin_roots() == BuiltinRoots::Webpki)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(user_agent)
            .redirect(reqwest::redirect::Policy::none())
            // Host names are checked on the addresses they resolve to, at connect time.
            .dns_resolver(config.addresses.resolver());
        if let Some(pem) = &config.ca_bundle_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                Error::invalid_field("ca_bundle_pem", format!("is not a PEM bundle: {e}"))
            })?;
            if certificates.is_empty() {
                return Err(Error::invalid_field(
                    "ca_bundle_pem",
                    "holds no PEM certificate",
                ));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if config.accept_invalid_certs {
            tracing::warn!(
                vendor = vendor.map(|v| v.as_str()),
                "TLS certificate verification is OFF for this client (accept_invalid_certs): \
                 anyone on the network path can read and change its requests"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("cannot build the HTTP client: {}", chain(&e)),
            )
            .with_retryable(false)
        })?;
        Ok(HttpClient {
            client,
            addresses: config.addresses,
            limiter: Arc::new(RateLimiter::unlimited()),
            permits: Arc::new(Semaphore::new(config.max_in_flight)),
            max_in_flight: config.max_in_flight,
            retry: config.retry,
            request_timeout: config.request_timeout,
            vendor,
            region: String::new(),
            classifier: Arc::new(classifier),
            stats: Arc::new(Counters::default()),
            rng: Arc::new(Mutex::new(StdRng::from_entropy())),
            io_runtime: None,
        })
    }

    /// Uses `limiter` for every request: give every client of one secret the same
    /// `Arc`, since vendors throttle per key.
    pub fn with_limiter(mut self, limiter: Arc<RateLimiter>) -> HttpClient {
        self.limiter = limiter;
        self
    }

    /// Names the region this client's requests are for, as the `region` label of its
    /// metrics (vSphere: the vCenter's host). Nothing else depends on it.
    pub fn with_region(mut self, region: impl Into<String>) -> HttpClient {
        self.region = region.into();
        self
    }

    /// Seeds the backoff jitter, for tests that want the same waits every run.
    pub fn with_jitter_seed(mut self, seed: u64) -> HttpClient {
        self.rng = Arc::new(Mutex::new(StdRng::seed_from_u64(seed)));
        self
    }

    /// Runs the network I/O of every attempt (connect, send, read the body) as a task on
    /// `runtime`, and only waits for its result on the caller's runtime.
    ///
    /// In production this keeps the I/O off a runtime that is busy with other work (as
    /// object_store's spawned connector does). In tests it makes a paused clock
    /// (`#[tokio::test(start_paused = true)]`) usable with a real server: a paused
    /// runtime that waits on a socket "auto-advances" to its next timer, and reqwest's
    /// request timeout and connection-pool timers are such timers, so requests would
    /// time out at once. With the I/O on a runtime with a real clock, the test runtime
    /// holds only this crate's timers (backoff, rate limit), which it skips through.
    ///
    /// ```no_run
    /// use std::sync::LazyLock;
    /// use cmdb_http::{DefaultClassifier, HttpClient, HttpConfig};
    ///
    /// static IO: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    ///     tokio::runtime::Builder::new_multi_thread()
    ///         .worker_threads(1)
    ///         .enable_all()
    ///         .build()
    ///         .unwrap()
    /// });
    ///
    /// # fn demo() -> cmdb_core::Result<()> {
    /// let http = HttpClient::new(HttpConfig::default(), None, DefaultClassifier::default())?
    ///     .with_io_runtime(IO.handle().clone());
    /// # Ok(()) }
    /// ```
    pub fn with_io_runtime(mut self, runtime: Handle) -> HttpClient {
        self.io_runtime = Some(runtime);
        self
    }

    /// The `reqwest` client, to build requests with (`http.reqwest().get(url)`): it adds
    /// the configured `User-Agent` when the request is sent.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.client
    }

    /// The vendor this client talks to.
    pub fn vendor(&self) -> Option<Vendor> {
        self.vendor
    }

    /// The region named by [`with_region`](Self::with_region) (empty when none was).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The retry policy.
    pub fn retry_config(&self) -> &RetryConfig {
        &self.retry
    }

    /// The rate limiter.
    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// Counts of requests, retries and throttled answers so far, over this client and
    /// its clones.
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            requests: self.stats.requests.load(Ordering::Relaxed),
            retries: self.stats.retries.load(Ordering::Relaxed),
            throttled: self.stats.throttled.load(Ordering::Relaxed),
        }
    }

    /// Sends a request, retrying as configured, and returns the response the classifier
    /// accepted.
    ///
    /// `action` names the vendor API operation (`DescribeInstances`, `ShowServer`, ...):
    /// the `action` of the call's span and metrics. Give a fixed name, never anything
    /// taken from a request's parameters.
    ///
    /// `build` is called once for **every attempt**, so a request is signed afresh each
    /// time (a new nonce and date). An error from `build` is returned at once. Each
    /// attempt then waits for a permit of the in-flight cap and a token of the rate
    /// limiter, is sent, has its whole body read, and is classified.
    ///
    /// Retried, while attempts and the time budget last: connection failures, timeouts,
    /// and classified errors that are [`is_retryable`](Error::is_retryable) (with the
    /// [`DefaultClassifier`](crate::DefaultClassifier): 408, 429, 5xx), but never
    /// authentication or permission errors (see [`retry::is_retryable`]). The wait is the
    /// server's `x-acs-retry-after` / `Retry-After` when given, else a jittered
    /// exponential backoff. A wait that would end past [`RetryConfig::max_elapsed`] is
    /// not started: the last error is returned instead. An error returned after several
    /// attempts says how many were made.
    ///
    /// Errors: [`Timeout`](ErrorKind::Timeout) when an attempt exceeded the request
    /// timeout, [`Unavailable`](ErrorKind::Unavailable) when the connection failed, else
    /// the classifier's error.
    pub async fn send<F>(&self, action: &'static str, mut build: F) -> Result<RawResponse>
    where
        F: FnMut() -> Result<reqwest::Request>,
    {
        let start = Instant::now();
        let mut backoff = Backoff::new(&self.retry);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let span = tracing::info_span!(
                "vendor_call",
                vendor = %vendor_label(self.vendor),
                action = %action,
                attempt
            );
            let next = self
                .attempt(action, &mut build, attempt, start, &mut backoff)
                .instrument(span)
                .await?;
            match next {
                Next::Answer(response) => return Ok(response),
                // The wait is outside the attempt's span.
                Next::RetryAfter(delay) => tokio::time::sleep(delay).await,
            }
        }
    }

    /// Attempt number `attempt` of a call that started at `start`: the answer, or how
    /// long to wait before the next attempt, or the error that ends the call.
    async fn attempt<F>(
        &self,
        action: &'static str,
        build: &mut F,
        attempt: u32,
        start: Instant,
        backoff: &mut Backoff,
    ) -> Result<Next>
    where
        F: FnMut() -> Result<reqwest::Request>,
    {
        let vendor = vendor_label(self.vendor);
        let request = build()?;
        // IP literals skip the resolver: checked here, before anything is sent.
        self.addresses.check_url(request.url())?;
        let method = request.method().clone();
        let target = target(request.url());

        let (error, hint) = {
            // The permit is taken before the token, so that sends, not just token
            // grants, keep to the rate.
            let _permit = self
                .permits
                .acquire()
                .await
                .expect("the semaphore is never closed");
            self.limiter.acquire().await;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let sent = Instant::now();
            let answer = self.execute(request).await;
            let status_class = match &answer {
                Ok(response) => telemetry::status_class(response.status),
                Err(_) => telemetry::NO_ANSWER,
            };
            metrics::histogram!(
                telemetry::VENDOR_REQUEST_DURATION_SECONDS,
                "vendor" => vendor,
                "action" => action,
                "region" => self.region.clone(),
                "status_class" => status_class,
            )
            .record(sent.elapsed().as_secs_f64());
            match answer {
                Ok(response) => match self.classifier.classify(&response) {
                    None => return Ok(Next::Answer(response)),
                    Some(error) => (error, retry::retry_after(&response.headers)),
                },
                Err(error) => (self.transport_error(error, &method, &target), None),
            }
        };
        if error.kind() == ErrorKind::RateLimited {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(telemetry::VENDOR_THROTTLED_TOTAL, "vendor" => vendor).increment(1);
        }

        if !retry::is_retryable(&error) {
            return Err(if attempt > 1 {
                error.context(format_args!(
                    "{method} {target} failed on attempt {attempt}"
                ))
            } else {
                error
            });
        }
        if attempt >= self.retry.attempts() {
            tracing::warn!(%method, %target, attempts = attempt, error = %error, "giving up on HTTP request");
            return Err(error.context(format_args!(
                "{method} {target} gave up after {attempt} attempt{}",
                if attempt == 1 { "" } else { "s" }
            )));
        }
        let delay = match hint {
            Some(hint) => hint,
            None => {
                let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
                backoff.next_delay(&mut *rng)
            }
        };
        let elapsed = start.elapsed();
        if elapsed + delay > self.retry.max_elapsed {
            tracing::warn!(
                %method, %target, attempts = attempt, wait_ms = delay.as_millis() as u64,
                error = %error, "giving up on HTTP request: the next wait exceeds the time budget"
            );
            return Err(error.context(format_args!(
                "{method} {target} gave up after {attempt} attempt{} in {:.1?}: the next wait of {delay:.1?} would exceed the {:?} retry budget",
                if attempt == 1 { "" } else { "s" },
                elapsed,
                self.retry.max_elapsed
            )));
        }
        tracing::debug!(
            %method, %target, attempt, wait_ms = delay.as_millis() as u64, server_hint = hint.is_some(),
            error = %error, "retrying HTTP request"
        );
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(telemetry::VENDOR_RETRIES_TOTAL, "vendor" => vendor).increment(1);
        Ok(Next::RetryAfter(delay))
    }

    /// One attempt: send and read the whole body, on the I/O runtime when there is one.
    async fn execute(
        &self,
        request: reqwest::Request,
    ) -> std::result::Result<RawResponse, Transport> {
        let client = self.client.clone();
        // `execute` is called inside the future, so that reqwest's timers belong to the
        // runtime that polls it.
        let io = async move {
            let mut response = client.execute(request).await?;
            let status = response.status();
            let headers = std::mem::take(response.headers_mut());
            let body = response.bytes().await?;
            Ok(RawResponse {
                status,
                headers,
                body,
            })
        };
        match &self.io_runtime {
            None => io.await.map_err(Transport::Reqwest),
            Some(runtime) => match (AbortOnDrop(runtime.spawn(io))).await {
                Ok(result) => result.map_err(Transport::Reqwest),
                Err(e) => Err(Transport::Join(e)),
            },
        }
    }

    fn transport_error(&self, error: Transport, method: &Method, target: &str) -> Error {
        match error {
            Transport::Join(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Transport::Join(e) => Error::new(
                ErrorKind::Unavailable,
                format!("{method} {target}: the I/O runtime dropped the request"),
            )
            .with_source(e)
            .with_retryable(false),
            Transport::Reqwest(e) => {
                // reqwest puts the whole URL, query (signatures, tokens) included, in
                // its messages.
                let e = e.without_url();
                if let Some(refused) = crate::address::find_refusal(&e) {
                    return Error::from(refused.clone()).context(format_args!("{method} {target}"));
                }
                let causes = chain(&e);
                if e.is_timeout() {
                    Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "{method} {target}: timed out (request timeout {:?}): {causes}",
                            self.request_timeout
                        ),
                    )
                    .with_source(e)
                } else if e.is_connect() {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("{method} {target}: connection failed: {causes}"),
                    )
                    .with_source(e)
                } else if e.is_builder() {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("{method} {target}: invalid request: {causes}"),
                    )
                    .with_source(e)
                    .with_retryable(false)
                } else {
                    // Connection reset, truncated body, protocol error: the network.
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("{method} {target}: request failed: {causes}"),
                    )
                    .with_source(e)
                }
            }
        }
    }
}

/// What an attempt leads to, when not to an error.
enum Next {
    Answer(RawResponse),
    RetryAfter(Duration),
}

enum Transport {
    Reqwest(reqwest::Error),
    Join(JoinError),
}

/// Aborts the spawned I/O when the caller stops waiting (a dropped `send`).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = std::result::Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `host[:port]/path`: what logs and messages may show of a URL (never the query).
fn target(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}{}", url.path()),
        None => format!("{host}{}", url.path()),
    }
}

/// An error and its causes, `: `-separated.
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("vendor", &self.vendor)
            .field("region", &self.region)
            .field("retry", &self.retry)
            .field("request_timeout", &self.request_timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("limiter", &self.limiter)
            .field("classifier", &self.classifier)
            .field("stats", &self.stats())
            .field("io_runtime", &self.io_runtime.is_some())
            .finish()
    }
}

/// A header value marked sensitive, for `Authorization` and other credentials: `http`
/// and `reqwest` then print `Sensitive` instead of it in `Debug` output, and HTTP/2
/// never puts it in its compression table.
///
/// Fails with [`InvalidInput`](ErrorKind::InvalidInput) (without repeating the value)
/// when it is not a valid header value.
pub fn sensitive_header_value(value: &str) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            "a credential header holds characters not allowed in HTTP headers",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Which built-in root certificates verify vendor endpoints (beside a secret's own CA
/// bundle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuiltinRoots {
    /// The system's (the platform store, or `SSL_CERT_FILE` / `SSL_CERT_DIR`).
    Native,
    /// Mozilla's, compiled in (webpki-roots): the system has no readable root certificate.
    Webpki,
}

/// The built-in roots in use: the system's when it has any, else Mozilla's, so that TLS
/// works in a container without a CA bundle. Decided once per process, with an
/// information line in the log when the fallback is taken.
pub fn builtin_roots() -> BuiltinRoots {
    static ROOTS: std::sync::LazyLock<BuiltinRoots> = std::sync::LazyLock::new(|| {
        let native = rustls_native_certs::load_native_certs();
        if native.certs.is_empty() {
            tracing::info!(
                errors = native.errors.len(),
                "no system root certificate found; vendor endpoints are verified with the \
                 Mozilla roots compiled in (webpki-roots)"
            );
            BuiltinRoots::Webpki
        } else {
            BuiltinRoots::Native
        }
    });
    *ROOTS
}

/// Builds a request, turning reqwest's builder error into an
/// [`InvalidInput`](ErrorKind::InvalidInput) error (without the URL): for `send`'s
/// closure, `build_request(http.reqwest().get(url).header(..))`.
pub fn build_request(builder: reqwest::RequestBuilder) -> Result<reqwest::Request> {
    builder.build().map_err(|e| {
        let e = e.without_url();
        Error::new(
            ErrorKind::InvalidInput,
            format!("invalid request: {}", chain(&e)),
        )
        .with_source(e)
        .with_retryable(false)
    })
}

#[cfg(test)]
mod tests {
    use http::header::AUTHORIZATION;

    use super::*;
    use crate::DefaultClassifier;

    #[test]
    fn sensitive_values_stay_out_of_debug_output() {
        let value = sensitive_header_value("TC3-HMAC-SHA256 Credential=AKID/x, Signature=deadbeef")
            .unwrap();
        assert!(value.is_sensitive());
        let mut request =
            reqwest::Request::new(Method::POST, "https://cvm.example.com/".parse().unwrap());
        request.headers_mut().insert(AUTHORIZATION, value.clone());
        let shown = format!("{request:?}");
        assert!(
            !shown.contains("deadbeef") && !shown.contains("AKID"),
            "{shown}"
        );
        let mut headers = http::HeaderMap::new();
        headers.insert(AUTHORIZATION, value);
        let shown = format!("{headers:?}");
        assert!(
            shown.contains("Sensitive") && !shown.contains("deadbeef"),
            "{shown}"
        );
    }

    #[test]
    fn invalid_sensitive_values_are_not_echoed() {
        let e = sensitive_header_value("secret\nvalue").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn targets_never_show_the_query() {
        let url: url::Url = "https://h.example:8443/v1/x?Signature=abc&token=t"
            .parse()
            .unwrap();
        assert_eq!(target(&url), "h.example:8443/v1/x");
    }

    #[test]
    fn new_rejects_bad_configs() {
        let c = DefaultClassifier::default();
        let e = HttpClient::new(HttpConfig::default().with_max_in_flight(0), None, c).unwrap_err();
        assert_eq!(e.field(), Some("max_in_flight"));
        let e =
            HttpClient::new(HttpConfig::default().with_user_agent("a\nb"), None, c).unwrap_err();
        assert_eq!(e.field(), Some("user_agent"));
        let e = HttpClient::new(
            HttpConfig::default().with_ca_bundle_pem(b"nothing".to_vec()),
            None,
            c,
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("ca_bundle_pem"));
    }

    #[test]
    fn new_accepts_a_ca_bundle_and_insecure_mode() {
        // A public root (ISRG Root X2), standing in for a private CA.
        let pem = include_bytes!("../tests/data/isrg-root-x2.pem");
        let config = HttpConfig::default()
            .with_ca_bundle_pem(pem.to_vec())
            .with_accept_invalid_certs(true);
        let http =
            HttpClient::new(config, Some(Vendor::Vsphere), DefaultClassifier::default()).unwrap();
        assert_eq!(http.vendor(), Some(Vendor::Vsphere));
        let shown = format!("{http:?}");
        assert!(shown.contains("max_in_flight: 4"), "{shown}");
    }

    #[test]
    fn build_request_maps_errors() {
        let client = reqwest::Client::new();
        let ok = build_request(client.get("https://h.example/x")).unwrap();
        assert_eq!(ok.url().path(), "/x");
        let e =
            build_request(client.get("https://h.example/x").header("x-bad", "a\nb")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn send_futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let http =
            HttpClient::new(HttpConfig::default(), None, DefaultClassifier::default()).unwrap();
        let future = http.send("Test", || {
            Ok(reqwest::Request::new(
                Method::GET,
                "http://h/".parse().unwrap(),
            ))
        });
        assert_send(&future);
    }
}
