//! A token bucket shared by every request made with one secret.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A request-rate limiter: a token bucket, implemented as GCRA ("generic cell rate
/// algorithm": one "theoretical arrival time" under a mutex).
///
/// Share one limiter, as `Arc<RateLimiter>`, between every client that uses the same
/// secret (see [`HttpClient::with_limiter`](crate::HttpClient::with_limiter)): vendors
/// throttle per account or per key, not per connection.
///
/// It runs on [`tokio::time::Instant`] and [`tokio::time::sleep_until`], so it follows
/// tokio's paused clock (`#[tokio::test(start_paused = true)]`, `tokio::time::pause`) and
/// tests of rate limits take no real time. That is why it is not the `governor` crate:
/// governor's async waiting sleeps on `futures-timer`, which runs on the real clock and
/// ignores tokio's paused one.
///
/// Each caller of [`acquire`](Self::acquire) reserves the next free slot before it
/// sleeps, so concurrent callers are spaced one interval apart in arrival order. A caller
/// dropped while waiting leaves its slot unused: the rate can only be lower, never higher.
pub struct RateLimiter {
    gcra: Option<Gcra>,
}

struct Gcra {
    /// Time between two tokens at the steady rate.
    interval: Duration,
    /// How far ahead of the steady rate a burst may run: `(burst - 1) * interval`.
    tolerance: Duration,
    /// The theoretical arrival time of the next token; `None` before the first request.
    tat: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter of `rate_per_second` requests a second, allowing bursts of up to `burst`
    /// requests after an idle period.
    ///
    /// A rate of 0 means unlimited (the usual meaning of "no rate configured"); a burst of
    /// 0 is taken as 1.
    pub fn new(rate_per_second: u32, burst: u32) -> RateLimiter {
        if rate_per_second == 0 {
            return RateLimiter::unlimited();
        }
        let interval = Duration::from_secs(1) / rate_per_second;
        let tolerance = interval * (burst.max(1) - 1);
        RateLimiter {
            gcra: Some(Gcra {
                interval,
                tolerance,
                tat: Mutex::new(None),
            }),
        }
    }

    /// A limiter of `rate_per_second` requests a second without bursts (burst 1).
    pub fn per_second(rate_per_second: u32) -> RateLimiter {
        RateLimiter::new(rate_per_second, 1)
    }

    /// A limiter that never waits.
    pub fn unlimited() -> RateLimiter {
        RateLimiter { gcra: None }
    }

    /// Whether this limiter never waits.
    pub fn is_unlimited(&self) -> bool {
        self.gcra.is_none()
    }

    /// The time between two requests at the steady rate; `None` when unlimited.
    pub fn interval(&self) -> Option<Duration> {
        self.gcra.as_ref().map(|g| g.interval)
    }

    /// Waits until a request may be sent, and takes its token.
    pub async fn acquire(&self) {
        let Some(gcra) = &self.gcra else { return };
        if let Some(at) = gcra.reserve(Instant::now()) {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Takes a token if one is free now, without waiting.
    pub fn try_acquire(&self) -> bool {
        let Some(gcra) = &self.gcra else { return true };
        let now = Instant::now();
        let mut tat = gcra.tat.lock().unwrap_or_else(|e| e.into_inner());
        let current = tat.map_or(now, |t| t.max(now));
        if current <= now + gcra.tolerance {
            *tat = Some(current + gcra.interval);
            true
        } else {
            false
        }
    }
}

impl Gcra {
    /// Reserves the next slot; returns when to send if that is later than `now`.
    fn reserve(&self, now: Instant) -> Option<Instant> {
        // A poisoned lock only means another thread panicked between two plain
        // assignments: the instant inside is still valid.
        let mut tat = self.tat.lock().unwrap_or_else(|e| e.into_inner());
        let current = tat.map_or(now, |t| t.max(now));
        *tat = Some(current + self.interval);
        if current <= now + self.tolerance {
            None
        } else {
            // current > now + tolerance, so this never goes before `now`.
            Some(current - self.tolerance)
        }
    }
}

impl Default for RateLimiter {
    /// An unlimited limiter.
    fn default() -> RateLimiter {
        RateLimiter::unlimited()
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.gcra {
            None => f.write_str("RateLimiter(unlimited)"),
            Some(g) => f
                .debug_struct("RateLimiter")
                .field("interval", &g.interval)
                .field(
                    "burst",
                    &(g.tolerance.as_nanos() / g.interval.as_nanos() + 1),
                )
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn n_acquisitions_take_n_minus_one_intervals() {
        let limiter = RateLimiter::per_second(10);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(410), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn burst_is_free_then_the_rate_applies() {
        let limiter = RateLimiter::new(4, 3);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "a burst of 3 waits for nothing"
        );
        limiter.acquire().await;
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(260), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_limiter_refills_up_to_its_burst_only() {
        let limiter = RateLimiter::new(10, 2);
        limiter.acquire().await;
        limiter.acquire().await;
        assert!(!limiter.try_acquire(), "the burst is spent");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(limiter.try_acquire());
        assert!(limiter.try_acquire());
        assert!(
            !limiter.try_acquire(),
            "a long idle time gives no more than the burst"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_acquirers_are_spaced() {
        let limiter = Arc::new(RateLimiter::per_second(5));
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.acquire().await;
                    start.elapsed()
                })
            })
            .collect();
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap());
        }
        times.sort();
        for (i, t) in times.iter().enumerate() {
            let expected = Duration::from_millis(200) * i as u32;
            assert!(
                *t >= expected && *t < expected + Duration::from_millis(10),
                "{times:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_and_zero_rate_never_wait() {
        for limiter in [
            RateLimiter::unlimited(),
            RateLimiter::new(0, 5),
            RateLimiter::default(),
        ] {
            assert!(limiter.is_unlimited());
            let start = Instant::now();
            for _ in 0..1000 {
                limiter.acquire().await;
            }
            assert_eq!(start.elapsed(), Duration::ZERO);
        }
    }

    #[test]
    fn debug_shows_the_rate() {
        assert_eq!(
            format!("{:?}", RateLimiter::unlimited()),
            "RateLimiter(unlimited)"
        );
        let shown = format!("{:?}", RateLimiter::new(10, 3));
        assert!(
            shown.contains("100ms") && shown.contains("burst: 3"),
            "{shown}"
        );
    }
}
