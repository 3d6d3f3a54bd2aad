//! Scope locks shared by every process using the same database.
//!
//! - PostgreSQL: `pg_try_advisory_lock` on a connection detached from the pool and held
//!   by the lease; the server drops the lock with the connection, so a crashed holder
//!   cannot block.
//! - MySQL/MariaDB: `GET_LOCK(name, 0)`, likewise.
//! - SQLite: a row of `cmdb_scope_locks` naming the owner's pid and process start time,
//!   taken in an immediate transaction. A row whose process is gone (or whose pid now
//!   belongs to another process), or that has expired, is stale and taken over.
//!
//! Dropping a lease releases the lock from a spawned task; the next `try_lock_scope` in
//! this process first waits for such pending releases, so a lock dropped here is free for
//! the next caller here without any timing assumptions.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use chrono::Utc;
use cmdb_core::{Result, ScopeLease, SyncScope};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};
use tokio::task::JoinHandle;

use crate::hosts::nanos;
use crate::sql::{opt_int, opt_text, Backend, Sql};
use crate::store::{db_error, SqlStore};

/// How long a SQLite lock row stands when its owner's liveness cannot be checked
/// (no `/proc`).
const SQLITE_LOCK_TTL: chrono::Duration = chrono::Duration::hours(6);

/// Releases started by dropped leases and not yet awaited.
fn pending() -> MutexGuard<'static, Vec<JoinHandle<()>>> {
    static PENDING: OnceLock<Mutex<Vec<JoinHandle<()>>>> = OnceLock::new();
    PENDING
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Tokens of the SQLite lock rows this process holds.
fn live_tokens() -> MutexGuard<'static, HashSet<String>> {
    static LIVE: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    LIVE.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

async fn await_pending_releases() {
    let handles: Vec<JoinHandle<()>> = std::mem::take(&mut *pending());
    for handle in handles {
        // A release runs one short statement; don't hang on a dead server.
        let _ = tokio::time::timeout(Duration::from_secs(10), handle).await;
    }
}

/// A stable 64-bit key of a scope within a namespace.
pub(crate) fn scope_key(namespace: &str, scope: &SyncScope) -> i64 {
    let mut h = Sha256::new();
    for part in [
        "cmdb-scope-lock",
        namespace,
        &scope.secret_id,
        scope.vendor.as_str(),
        &scope.region,
        scope.resource_type.as_str(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Holds a server-side lock on a dedicated connection; dropping releases it.
struct ConnectionLease {
    // A mutex only to make the lease `Sync`; it is never contended.
    conn: Mutex<Option<AnyConnection>>,
    unlock: String,
}

impl Drop for ConnectionLease {
    fn drop(&mut self) {
        let taken = self
            .conn
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(mut conn) = taken else {
            return;
        };
        let unlock = std::mem::take(&mut self.unlock);
        // Without a runtime the connection is simply dropped: the server releases the
        // lock when it sees the connection end.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let task = handle.spawn(async move {
                let _ = conn.execute(unlock.as_str()).await;
                let _ = conn.close().await;
            });
            pending().push(task);
        }
    }
}

/// Holds a SQLite lock row; dropping deletes it.
struct RowLease {
    pool: AnyPool,
    key: String,
    token: String,
}

impl Drop for RowLease {
    fn drop(&mut self) {
        live_tokens().remove(&self.token);
        let pool = self.pool.clone();
        let key = std::mem::take(&mut self.key);
        let token = std::mem::take(&mut self.token);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let task = handle.spawn(async move {
                let mut sql = Sql::new(
                    Backend::Sqlite,
                    "DELETE FROM cmdb_scope_locks WHERE scope_key = ",
                );
                sql.bind(key).push(" AND owner_token = ").bind(token);
                if let Ok(q) = sql.build() {
                    let _ = q.execute(&pool).await;
                }
            });
            pending().push(task);
        }
        // Otherwise the row stays, but it is stale: its token is no longer live here.
    }
}

pub(crate) async fn try_lock_scope(
    store: &SqlStore,
    scope: &SyncScope,
) -> Result<Option<ScopeLease>> {
    await_pending_releases().await;
    let key = scope_key(&store.inner.namespace, scope);
    let backend = store.inner.backend;
    match backend {
        Backend::Postgres | Backend::MySql => {
            let mut conn = store.inner.pool.acquire().await.map_err(db_error)?.detach();
            let (mut sql, unlock) = if backend == Backend::Postgres {
                let mut sql = Sql::new(backend, "SELECT CASE WHEN pg_try_advisory_lock(");
                sql.bind(key).push(") THEN 1 ELSE 0 END");
                (sql, "SELECT pg_advisory_unlock_all()".to_owned())
            } else {
                // Lock names are server-wide: the key includes the database name.
                let name = format!("cmdb-scope-{key:016x}");
                let mut sql = Sql::new(backend, "SELECT GET_LOCK(");
                sql.bind(name.clone()).push(", 0)");
                (sql, format!("DO RELEASE_LOCK('{name}')"))
            };
            let row = sql.build()?.fetch_one(&mut conn).await.map_err(db_error)?;
            if opt_int(&row, 0)? == Some(1) {
                Ok(Some(ScopeLease::new(ConnectionLease {
                    conn: Mutex::new(Some(conn)),
                    unlock,
                })))
            } else {
                let _ = conn.close().await;
                Ok(None)
            }
        }
        Backend::Sqlite => sqlite_lock(store, scope, key).await,
    }
}

static TOKENS: AtomicU64 = AtomicU64::new(0);

async fn sqlite_lock(store: &SqlStore, scope: &SyncScope, key: i64) -> Result<Option<ScopeLease>> {
    let key = format!("{key:016x}");
    let me = std::process::id();
    let my_start = process_start(me).unwrap_or(0);
    let now = Utc::now();
    let mut tx = store.begin().await?;
    let mut sql = Sql::new(
        Backend::Sqlite,
        "SELECT owner_pid, owner_start, owner_token, expires_at FROM cmdb_scope_locks \
         WHERE scope_key = ",
    );
    sql.bind(key.clone());
    let row = sql
        .build()?
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
    if let Some(row) = row {
        let pid = opt_int(&row, 0)?.unwrap_or_default();
        let start = opt_int(&row, 1)?.unwrap_or_default();
        let token = opt_text(&row, 2)?.unwrap_or_default();
        let expires = opt_int(&row, 3)?.unwrap_or_default();
        let held = if nanos(now)? >= expires {
            false
        } else if pid == i64::from(me) && start == i64::from(my_start) {
            live_tokens().contains(&token)
        } else {
            match u32::try_from(pid).ok().map(process_alive) {
                // The pid is alive with the same start time: the owner still runs.
                Some(Some(alive_start)) => alive_start == start,
                // The process is gone.
                Some(None) if procfs_available() => false,
                // No way to tell: trust the row until it expires.
                _ => true,
            }
        };
        if held {
            tx.rollback().await.map_err(db_error)?;
            return Ok(None);
        }
    }
    let token = format!(
        "{me}-{my_start}-{}-{}",
        TOKENS.fetch_add(1, Ordering::Relaxed),
        now.timestamp_nanos_opt().unwrap_or_default()
    );
    let mut sql = Sql::new(
        Backend::Sqlite,
        "INSERT OR REPLACE INTO cmdb_scope_locks \
         (scope_key, scope, owner_pid, owner_start, owner_token, acquired_at, expires_at) VALUES (",
    );
    sql.bind(key.clone())
        .push(", ")
        .bind(scope.to_string())
        .push(", ")
        .bind(i64::from(me))
        .push(", ")
        .bind(i64::from(my_start))
        .push(", ")
        .bind(token.clone())
        .push(", ")
        .bind(nanos(now)?)
        .push(", ")
        .bind(nanos(now + SQLITE_LOCK_TTL)?)
        .push(")");
    sql.build()?.execute(&mut *tx).await.map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    live_tokens().insert(token.clone());
    Ok(Some(ScopeLease::new(RowLease {
        pool: store.inner.pool.clone(),
        key,
        token,
    })))
}

fn procfs_available() -> bool {
    std::path::Path::new("/proc/self/stat").exists()
}

/// The start time (clock ticks since boot) of process `pid`, if it runs.
fn process_start(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: count fields
    // after its closing parenthesis. Field 22 is the start time.
    let rest = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    // Truncated to 32 bits: only compared for equality.
    Some(ticks as u32)
}

/// `Some(start time)` if the process runs, `None` if not.
fn process_alive(pid: u32) -> Option<i64> {
    process_start(pid).map(i64::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmdb_core::Vendor;

    #[test]
    fn scope_keys_are_stable_and_distinct() {
        let a = SyncScope::hosts("s1", Vendor::Aliyun, "cn-hangzhou");
        let b = SyncScope::hosts("s1", Vendor::Aliyun, "cn-beijing");
        assert_eq!(scope_key("", &a), scope_key("", &a));
        assert_ne!(scope_key("", &a), scope_key("", &b));
        assert_ne!(scope_key("x", &a), scope_key("", &a));
        // Pinned: the key must not change between builds, or two versions of cmdb would
        // not exclude each other.
        assert_eq!(scope_key("", &a), -6_722_469_125_648_408_260);
    }

    async fn plant_row(store: &SqlStore, scope: &SyncScope, pid: i64, start: i64, expires: i64) {
        let mut sql = Sql::new(
            Backend::Sqlite,
            "INSERT INTO cmdb_scope_locks (scope_key, scope, owner_pid, owner_start, \
             owner_token, acquired_at, expires_at) VALUES (",
        );
        sql.bind(format!("{:016x}", scope_key("", scope)))
            .push(", ")
            .bind(scope.to_string())
            .push(", ")
            .bind(pid)
            .push(", ")
            .bind(start)
            .push(", 'planted', 0, ")
            .bind(expires)
            .push(")");
        sql.build().unwrap().execute(store.pool()).await.unwrap();
    }

    #[tokio::test]
    async fn sqlite_lock_of_a_dead_or_expired_holder_is_taken_over() {
        if !procfs_available() {
            return;
        }
        let store = SqlStore::connect("sqlite::memory:").await.unwrap();
        let far = nanos(Utc::now() + chrono::Duration::hours(1)).unwrap();

        // A process that has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = i64::from(child.id());
        child.wait().unwrap();
        let scope = SyncScope::hosts("dead", Vendor::Aliyun, "r");
        plant_row(&store, &scope, dead, 12345, far).await;
        assert!(
            store.try_lock_scope_for_test(&scope).await.is_some(),
            "dead holder"
        );

        // A live process (this one) with another start time: the pid was reused.
        let me = i64::from(std::process::id());
        let scope = SyncScope::hosts("reused", Vendor::Aliyun, "r");
        plant_row(&store, &scope, me, -1, far).await;
        assert!(
            store.try_lock_scope_for_test(&scope).await.is_some(),
            "reused pid"
        );

        // A live holder (pid 1 with its real start time) blocks until the row expires.
        let init_start = process_start(1).map(i64::from).unwrap_or_default();
        let scope = SyncScope::hosts("live", Vendor::Aliyun, "r");
        plant_row(&store, &scope, 1, init_start, far).await;
        assert!(
            store.try_lock_scope_for_test(&scope).await.is_none(),
            "live holder"
        );
        let scope = SyncScope::hosts("expired", Vendor::Aliyun, "r");
        plant_row(&store, &scope, 1, init_start, 0).await;
        assert!(
            store.try_lock_scope_for_test(&scope).await.is_some(),
            "expired row"
        );
    }

    impl SqlStore {
        async fn try_lock_scope_for_test(&self, scope: &SyncScope) -> Option<ScopeLease> {
            try_lock_scope(self, scope).await.unwrap()
        }
    }

    #[test]
    fn this_process_is_alive() {
        if !procfs_available() {
            return;
        }
        let me = std::process::id();
        assert!(process_start(me).is_some());
        assert_eq!(process_alive(me), process_start(me).map(i64::from));
    }
}
