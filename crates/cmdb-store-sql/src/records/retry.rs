//! Writers of the same records meeting in the database: which errors mean "run the
//! transaction again", and how long to wait before doing so.

use std::time::Duration;

use cmdb_core::Error;

use crate::store::db_error;

/// Attempts of one write that meets concurrent writers (deadlock, lock wait timeout, a
/// key created meanwhile) before the error is returned.
pub(super) const WRITE_ATTEMPTS: u32 = 5;

/// Whether a database error is about one row's values (so only that record fails) rather
/// than the connection, the database as a whole, or a concurrent writer.
pub(super) fn is_row_error(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(_)) && !is_contention(e)
}

/// Whether a database error comes from a concurrent writer, so that running the
/// transaction again may succeed: a deadlock or serialization failure (PostgreSQL
/// SQLSTATE 40P01 and 40001, MySQL error 1213), a lock wait timeout (MySQL 1205), or a
/// unique violation (a key this writer found absent was created by another meanwhile;
/// the only unique key of a table of records is its primary key).
pub(super) fn is_contention(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(d) = e else {
        return false;
    };
    #[cfg(feature = "mysql")]
    if let Some(m) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return matches!(m.number(), 1205 | 1213) || d.is_unique_violation();
    }
    d.is_unique_violation() || matches!(d.code().as_deref(), Some("40P01" | "40001"))
}

/// Why one attempt of a write failed.
pub(super) enum Attempt {
    /// A concurrent writer got in the way: the whole transaction may run again.
    Retry(sqlx::Error),
    /// Anything else.
    Fail(Error),
}

impl From<Error> for Attempt {
    fn from(e: Error) -> Self {
        Attempt::Fail(e)
    }
}

/// Classifies a database error for [`Attempt`].
pub(super) fn attempt_error(e: sqlx::Error) -> Attempt {
    if is_contention(&e) {
        Attempt::Retry(e)
    } else {
        Attempt::Fail(db_error(e))
    }
}

/// Waits before attempt `attempt + 1`: about 10, 20, 40, 80 ms, jittered so that two
/// writers that met do not meet again in step.
pub(super) async fn backoff(attempt: u32) {
    use rand::Rng;
    let base = 10u64 << attempt.saturating_sub(1).min(6);
    let ms = rand::thread_rng().gen_range(base / 2..=base);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
