//! Retry policy, jittered backoff and the servers' "retry after" hints.

use std::time::Duration;

use cmdb_core::{Error, ErrorKind};
use http::HeaderMap;
use rand::{Rng, RngCore};

/// How often and for how long [`HttpClient::send`](crate::HttpClient::send) retries.
///
/// A request is tried at most `max_attempts` times, and no wait starts that would end
/// after `max_elapsed` since the first attempt. Between attempts it waits a jittered
/// exponential [`Backoff`] between `base_delay` and `max_delay`, or what the server asked
/// for with `Retry-After` / `x-acs-retry-after` (see [`retry_after`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Attempts in all, the first one included (default 6). 0 is taken as 1.
    pub max_attempts: u32,
    /// The total time budget of one request, retries included (default 2 minutes).
    pub max_elapsed: Duration,
    /// The smallest wait between two attempts (default 200 ms).
    pub base_delay: Duration,
    /// The largest computed wait between two attempts (default 20 s). A server's own
    /// hint may be longer; it is honoured as long as it fits in `max_elapsed`.
    pub max_delay: Duration,
}

impl Default for RetryConfig {
    fn default() -> RetryConfig {
        RetryConfig {
            max_attempts: 6,
            max_elapsed: Duration::from_secs(120),
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryConfig {
    /// One attempt, no retry.
    pub fn no_retry() -> RetryConfig {
        RetryConfig {
            max_attempts: 1,
            ..RetryConfig::default()
        }
    }

    /// Sets the number of attempts, the first one included.
    pub fn with_max_attempts(mut self, max_attempts: u32) -> RetryConfig {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets the total time budget of one request.
    pub fn with_max_elapsed(mut self, max_elapsed: Duration) -> RetryConfig {
        self.max_elapsed = max_elapsed;
        self
    }

    /// Sets the smallest wait between two attempts.
    pub fn with_base_delay(mut self, base_delay: Duration) -> RetryConfig {
        self.base_delay = base_delay;
        self
    }

    /// Sets the largest computed wait between two attempts.
    pub fn with_max_delay(mut self, max_delay: Duration) -> RetryConfig {
        self.max_delay = max_delay;
        self
    }

    /// The number of attempts actually made at most (never less than 1).
    pub fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }
}

/// Jittered exponential backoff: "decorrelated jitter".
///
/// Each wait is drawn uniformly between `base_delay` and three times the previous wait,
/// and capped at `max_delay`. The waits grow roughly exponentially, are never shorter
/// than `base_delay` (a throttled client never hammers the server), and clients that
/// failed together do not retry together. The random source is passed in, so tests can
/// use a seeded one.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    previous: Duration,
}

impl Backoff {
    /// A backoff for one request, following `config`.
    pub fn new(config: &RetryConfig) -> Backoff {
        Backoff {
            base: config.base_delay,
            cap: config.max_delay,
            previous: config.base_delay,
        }
    }

    /// The next wait.
    pub fn next_delay(&mut self, rng: &mut dyn RngCore) -> Duration {
        let high = self.previous.saturating_mul(3).max(self.base);
        let delay = rng.gen_range(self.base..=high).min(self.cap);
        self.previous = delay;
        delay
    }
}

/// The wait a response asks for before the next attempt, if any.
///
/// - `x-acs-retry-after` (Alibaba Cloud): an integer number of **milliseconds**. The unit
///   is not in Alibaba's public API reference; it is taken from Alibaba's own SDKs,
///   which read the header as milliseconds: the Darabonba/Tea OpenAPI clients'
///   `getThrottlingTimeLeft` and their tests (a header of `80` makes the Java client wait
///   about 80 ms), and aliyun-cli's runtime (`MaxDelayMS`).
/// - `Retry-After` (RFC 9110 §10.2.3): whole seconds, or an HTTP date, measured from the
///   response's `Date` header when there is one (so a skewed local clock does not
///   matter), else from the local clock.
///
/// Zero, negative or unparsable values are ignored, as Alibaba's SDKs do: the caller then
/// falls back to its own backoff. When both headers are present the longer wait wins.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let acs = header_str(headers, "x-acs-retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis);
    let standard = header_str(headers, "retry-after").and_then(|v| parse_retry_after(v, headers));
    [acs, standard]
        .into_iter()
        .flatten()
        .filter(|d| !d.is_zero())
        .max()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

fn parse_retry_after(value: &str, headers: &HeaderMap) -> Option<Duration> {
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is also valid RFC 2822.
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let now = header_str(headers, "date")
        .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
        .map(|d| d.with_timezone(&chrono::Utc))
        .unwrap_or_else(chrono::Utc::now);
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

/// Whether [`HttpClient::send`](crate::HttpClient::send) retries after `error`.
///
/// The error's own [`is_retryable`](Error::is_retryable) decides, except that
/// authentication and permission errors are never retried, whatever they say: Huawei
/// Cloud locks an access key for five minutes after five failed authentications, and a
/// wrong key does not become right by asking again.
pub fn is_retryable(error: &Error) -> bool {
    match error.kind() {
        ErrorKind::Unauthenticated | ErrorKind::PermissionDenied => false,
        _ => error.is_retryable(),
    }
}

#[cfg(test)]
mod tests {
    use cmdb_core::VendorError;
    use http::HeaderValue;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn defaults_match_the_design() {
        let c = RetryConfig::default();
        assert_eq!(c.max_attempts, 6);
        assert_eq!(c.max_elapsed, Duration::from_secs(120));
        assert_eq!(c.base_delay, Duration::from_millis(200));
        assert_eq!(c.max_delay, Duration::from_secs(20));
        assert_eq!(RetryConfig::no_retry().attempts(), 1);
        assert_eq!(RetryConfig::default().with_max_attempts(0).attempts(), 1);
    }

    #[test]
    fn backoff_stays_between_base_and_cap_and_grows() {
        let config = RetryConfig::default();
        let mut rng = StdRng::seed_from_u64(7);
        let mut backoff = Backoff::new(&config);
        let delays: Vec<_> = (0..40).map(|_| backoff.next_delay(&mut rng)).collect();
        for d in &delays {
            assert!(*d >= config.base_delay && *d <= config.max_delay, "{d:?}");
        }
        assert!(
            delays[20..].iter().any(|d| *d > Duration::from_secs(5)),
            "{delays:?}"
        );
    }

    #[test]
    fn backoff_is_deterministic_with_a_seeded_rng() {
        let config = RetryConfig::default();
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut backoff = Backoff::new(&config);
            (0..8)
                .map(|_| backoff.next_delay(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn backoff_with_a_zero_base_does_not_panic() {
        let config = RetryConfig::default().with_base_delay(Duration::ZERO);
        let mut backoff = Backoff::new(&config);
        assert_eq!(
            backoff.next_delay(&mut StdRng::seed_from_u64(0)),
            Duration::ZERO
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        let h = headers(&[
            ("date", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT"),
        ]);
        assert_eq!(retry_after(&h), Some(Duration::from_secs(30)));
        let past = headers(&[
            ("date", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ("retry-after", "Wed, 21 Oct 2015 07:00:00 GMT"),
        ]);
        assert_eq!(retry_after(&past), None);
    }

    #[test]
    fn x_acs_retry_after_is_milliseconds() {
        assert_eq!(
            retry_after(&headers(&[("x-acs-retry-after", "1500")])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("x-acs-retry-after", " 80 ")])),
            Some(Duration::from_millis(80))
        );
        let both = headers(&[("x-acs-retry-after", "2500"), ("retry-after", "2")]);
        assert_eq!(retry_after(&both), Some(Duration::from_millis(2500)));
    }

    #[test]
    fn meaningless_hints_are_ignored() {
        for v in ["0", "-1", "soon", ""] {
            assert_eq!(
                retry_after(&headers(&[("x-acs-retry-after", v)])),
                None,
                "{v}"
            );
            assert_eq!(retry_after(&headers(&[("retry-after", v)])), None, "{v}");
        }
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn auth_errors_are_never_retried() {
        let details = VendorError::default();
        for kind in [ErrorKind::Unauthenticated, ErrorKind::PermissionDenied] {
            assert!(!is_retryable(&Error::vendor(kind, true, details.clone())));
        }
        assert!(is_retryable(&Error::vendor(
            ErrorKind::RateLimited,
            true,
            details.clone()
        )));
        assert!(!is_retryable(&Error::vendor(
            ErrorKind::Unavailable,
            false,
            details
        )));
    }
}
