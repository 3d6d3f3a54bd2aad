//! The clock that timestamps vendor signatures, injectable so that tests can sign at a
//! known time, in the past or in the future.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Unix seconds now. Every provider's builder takes one (`with_clock`); the default is
/// [`system_clock`].
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system's clock.
pub fn system_clock() -> Clock {
    Arc::new(|| Utc::now().timestamp())
}

/// The time `clock` says, as a UTC date-time (the system's time if the clock answers
/// something out of chrono's range).
///
/// ```
/// use std::sync::Arc;
///
/// let fixed: cmdb_http::Clock = Arc::new(|| 1_700_000_000);
/// assert_eq!(cmdb_http::clock_now(&fixed).to_rfc3339(), "2023-11-14T22:13:20+00:00");
/// ```
pub fn clock_now(clock: &Clock) -> DateTime<Utc> {
    DateTime::from_timestamp(clock(), 0).unwrap_or_else(Utc::now)
}
