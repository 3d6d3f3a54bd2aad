//! Scope locks shared by every process using the same database.
//!
//! - PostgreSQL: `pg_try_advisory_lock` on a connection detached from the pool and held
//!   by the lease; the server drops the lock with the connection, so a crashed holder
//!   cannot block. The lease asks that connection whether its session still holds the
//!   lock (`pg_locks`); a dead session answers no.
//! - MySQL/MariaDB: `GET_LOCK(name, 0)`, likewise (`IS_USED_LOCK(name) = CONNECTION_ID()`).
//! - SQLite: a row of `cmdb_scope_locks` naming the owner (pid, process start time,
//!   hostname and boot id), taken in an immediate transaction and renewed by a task every
//!   third of [`SQLITE_LOCK_TTL`] while the lease lives. A row that has expired (its
//!   renewals stopped), whose owner ran before this host rebooted, or whose owner process
//!   on this host is gone (or whose pid now belongs to another process) is stale and taken
//!   over. An owner on another host is trusted until its row expires.
//!
//! Dropping a lease releases the lock from a spawned task; the next `try_lock_scope` in
//! this process first waits for such pending releases, so a lock dropped here is free for
//! the next caller here without any timing assumptions.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cmdb_core::{LeaseGuard, Result, ScopeLease, SyncScope};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::sql::{opt_int, opt_text, opt_time, Backend, Sql};
use crate::store::{db_error, SqlStore};

/// How long a SQLite lock row stands without being renewed. Its lease renews it every
/// third of this, so a live owner keeps it through two missed renewals; an owner that
/// stopped renewing (a crash on a host whose processes cannot be checked from here, a
/// hung process) loses it after this long.
pub(crate) const SQLITE_LOCK_TTL: Duration = Duration::from_secs(60);

/// How long `is_held` waits for the server before answering no.
const IS_HELD_TIMEOUT: Duration = Duration::from_secs(10);

/// The time that SQLite lock rows are stamped and judged with: the wall clock when the
/// store connected, moved on by tokio's clock (so that a test that pauses and advances
/// tokio's clock moves lease expiry with it), and never behind the wall clock (a host that
/// slept moves the wall clock on but not the monotonic one).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeaseClock {
    wall: DateTime<Utc>,
    instant: tokio::time::Instant,
}

impl LeaseClock {
    pub(crate) fn new() -> LeaseClock {
        LeaseClock {
            wall: Utc::now(),
            instant: tokio::time::Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.instant);
        let ticking =
            self.wall + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX);
        ticking.max(Utc::now())
    }
}

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

/// The name of a scope's MySQL lock (lock names are server-wide: the key includes the
/// database name).
fn mysql_lock_name(key: i64) -> String {
    format!("cmdb-scope-{key:016x}")
}

/// A PostgreSQL advisory lock's bigint key as `pg_locks` shows it: the high half in
/// `classid`, the low half in `objid` (both unsigned 32-bit).
fn pg_lock_halves(key: i64) -> (i64, i64) {
    let bits = key as u64;
    ((bits >> 32) as i64, (bits & 0xffff_ffff) as i64)
}

/// Holds a server-side lock on a dedicated connection; dropping releases it.
struct ConnectionLease {
    conn: tokio::sync::Mutex<Option<AnyConnection>>,
    backend: Backend,
    key: i64,
    unlock: String,
}

impl Drop for ConnectionLease {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.get_mut().take() else {
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

#[async_trait]
impl LeaseGuard for ConnectionLease {
    /// Asks the lock's own session whether it still holds the lock: a session the server
    /// ended (killed, restarted, network gone) cannot answer, which is a no.
    async fn is_held(&self) -> Result<bool> {
        let mut guard = self.conn.lock().await;
        let Some(conn) = guard.as_mut() else {
            return Ok(false);
        };
        let mut sql = match self.backend {
            Backend::Postgres => {
                let (high, low) = pg_lock_halves(self.key);
                let mut sql = Sql::new(
                    self.backend,
                    "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
                     AND granted AND pid = pg_backend_pid() AND objsubid = 1 \
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                     AND classid::bigint = ",
                );
                sql.bind(high)
                    .push(" AND objid::bigint = ")
                    .bind(low)
                    .push(") THEN 1 ELSE 0 END");
                sql
            }
            _ => {
                let mut sql = Sql::new(self.backend, "SELECT CASE WHEN IS_USED_LOCK(");
                sql.bind(mysql_lock_name(self.key))
                    .push(") = CONNECTION_ID() THEN 1 ELSE 0 END");
                sql
            }
        };
        let query = sql.build()?;
        match tokio::time::timeout(IS_HELD_TIMEOUT, query.fetch_one(&mut *conn)).await {
            Ok(Ok(row)) => Ok(opt_int(&row, 0)? == Some(1)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the scope lock's session is gone");
                Ok(false)
            }
            Err(_) => {
                tracing::warn!("the scope lock's session did not answer");
                Ok(false)
            }
        }
    }
}

/// Who holds a SQLite lock row: enough to tell, from another process, whether the holder
/// still runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    pid: u32,
    /// The process's start time as [`probe`] reports it; 0 when it cannot be known.
    start: i64,
    /// The hostname; empty when unknown.
    host: String,
    /// The boot id (`/proc/sys/kernel/random/boot_id`); empty where there is none.
    boot: String,
}

impl Owner {
    fn this_process() -> &'static Owner {
        static ME: OnceLock<Owner> = OnceLock::new();
        ME.get_or_init(|| {
            let pid = std::process::id();
            Owner {
                pid,
                start: match probe(pid) {
                    Probe::Running(start) => start,
                    Probe::Gone | Probe::Unknown => 0,
                },
                host: hostname(),
                boot: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
            }
        })
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

fn hostname() -> String {
    read_trimmed("/proc/sys/kernel/hostname")
        .or_else(|| read_trimmed("/etc/hostname"))
        .or_else(|| {
            let out = std::process::Command::new("hostname").output().ok()?;
            let name = String::from_utf8(out.stdout).ok()?;
            let name = name.trim();
            (out.status.success() && !name.is_empty()).then(|| name.to_owned())
        })
        .unwrap_or_default()
}

/// What this host can tell about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// It runs, started at this (platform-specific) time.
    Running(i64),
    /// No process has this pid.
    Gone,
    /// This platform cannot tell.
    Unknown,
}

/// Whether process `pid` runs on this host, and since when: from `/proc` where it
/// exists, else from `ps` (macOS, the BSDs), else unknown.
fn probe(pid: u32) -> Probe {
    if procfs_available() {
        return match proc_start(pid) {
            Some(start) => Probe::Running(start),
            None => Probe::Gone,
        };
    }
    ps_probe(pid)
}

fn procfs_available() -> bool {
    std::path::Path::new("/proc/self/stat").exists()
}

/// The start time (clock ticks since boot) of process `pid`, if it runs.
fn proc_start(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: count fields
    // after its closing parenthesis. Field 22 is the start time.
    let rest = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    // Truncated to 32 bits as earlier versions stored it: only compared for equality.
    Some(i64::from(ticks as u32))
}

/// `ps -p PID -o lstart=`: the start time of a running process as text (its hash is the
/// start value), nothing and a failure status for a pid that no process has.
fn ps_probe(pid: u32) -> Probe {
    let Ok(out) = std::process::Command::new("ps")
        .args(["-p", &pid.to_string(), "-o", "lstart="])
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return Probe::Unknown;
    };
    let started = String::from_utf8_lossy(&out.stdout);
    let started = started.trim();
    match (out.status.success(), started.is_empty()) {
        (true, false) => {
            let digest = Sha256::digest(started.as_bytes());
            let mut first = [0u8; 4];
            first.copy_from_slice(&digest[..4]);
            Probe::Running(i64::from(u32::from_be_bytes(first)))
        }
        (false, true) => Probe::Gone,
        _ => Probe::Unknown,
    }
}

/// A SQLite lock row as read.
#[derive(Debug, Clone)]
struct LockRow {
    pid: i64,
    start: i64,
    token: String,
    expires_at: DateTime<Utc>,
    /// `None` in rows of versions before 3, which took locks on one host only.
    host: Option<String>,
    boot: Option<String>,
}

/// Whether a lock row no longer protects its owner and may be taken over by `me` at
/// `now`. `token_live` tells whether a token of this process is a live lease; `probe`
/// checks a pid on this host.
fn is_stale(
    row: &LockRow,
    me: &Owner,
    now: DateTime<Utc>,
    token_live: impl FnOnce(&str) -> bool,
    probe: impl FnOnce(u32) -> Probe,
) -> bool {
    if now >= row.expires_at {
        // Its renewals stopped.
        return true;
    }
    let same_host = match row.host.as_deref() {
        None => true,
        Some(host) => !host.is_empty() && host == me.host,
    };
    if !same_host {
        // Another host's processes cannot be checked from here: trust the row until it
        // expires.
        return false;
    }
    match row.boot.as_deref() {
        Some(boot) if !boot.is_empty() && !me.boot.is_empty() && boot != me.boot => {
            // Taken before this host rebooted: its owner is gone.
            return true;
        }
        _ => {}
    }
    if row.pid == i64::from(me.pid) && row.start == me.start {
        return !token_live(&row.token);
    }
    match u32::try_from(row.pid).map(probe) {
        // The pid runs with another start time: it was reused, the owner is gone.
        Ok(Probe::Running(start)) => start != row.start,
        Ok(Probe::Gone) => true,
        // No way to tell: trust the row until it expires.
        Ok(Probe::Unknown) | Err(_) => false,
    }
}

/// Holds a SQLite lock row, renewed by a task while the lease lives; dropping deletes it.
struct RowLease {
    pool: AnyPool,
    clock: LeaseClock,
    key: String,
    token: String,
    renewal: JoinHandle<()>,
    /// Counts the renewals done (tests wait on it).
    #[cfg_attr(not(test), allow(dead_code))]
    renewed: Arc<watch::Sender<u64>>,
}

impl Drop for RowLease {
    fn drop(&mut self) {
        self.renewal.abort();
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
        // Otherwise the row stays, but it is stale: its token is no longer live here, and
        // it is no longer renewed.
    }
}

#[async_trait]
impl LeaseGuard for RowLease {
    /// Whether the row is still ours and unexpired.
    async fn is_held(&self) -> Result<bool> {
        let mut sql = Sql::new(
            Backend::Sqlite,
            "SELECT owner_token, expires_at FROM cmdb_scope_locks WHERE scope_key = ",
        );
        sql.bind(self.key.clone());
        let row = sql
            .build()?
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(false);
        };
        let token = opt_text(&row, 0)?.unwrap_or_default();
        let expires = opt_time(&row, 1)?.unwrap_or_default();
        Ok(token == self.token && expires > self.clock.now())
    }
}

/// Renews a lock row taken at `taken` every third of its TTL until the row is no longer ours (or the task
/// is aborted by the lease's drop). A failed renewal is tried again at the next period;
/// `is_held` answers from the row itself.
async fn renew(
    pool: AnyPool,
    clock: LeaseClock,
    key: String,
    token: String,
    taken: tokio::time::Instant,
    renewed: Arc<watch::Sender<u64>>,
) {
    let period = SQLITE_LOCK_TTL / 3;
    let mut next = taken + period;
    loop {
        tokio::time::sleep_until(next).await;
        next = tokio::time::Instant::now() + period;
        let expires = clock.now() + SQLITE_LOCK_TTL;
        let mut sql = Sql::new(Backend::Sqlite, "UPDATE cmdb_scope_locks SET expires_at = ");
        sql.bind_time(expires)
            .push(" WHERE scope_key = ")
            .bind(key.as_str())
            .push(" AND owner_token = ")
            .bind(token.as_str());
        let Ok(query) = sql.build() else {
            return;
        };
        match query.execute(&pool).await {
            Ok(done) if done.rows_affected() > 0 => renewed.send_modify(|n| *n += 1),
            Ok(_) => {
                tracing::warn!(scope_key = %key, "the scope lock was taken over; renewals stop");
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew the scope lock; trying again"),
        }
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
                let name = mysql_lock_name(key);
                let mut sql = Sql::new(backend, "SELECT GET_LOCK(");
                sql.bind(name.clone()).push(", 0)");
                (sql, format!("DO RELEASE_LOCK('{name}')"))
            };
            let row = sql.build()?.fetch_one(&mut conn).await.map_err(db_error)?;
            if opt_int(&row, 0)? == Some(1) {
                Ok(Some(ScopeLease::checked(ConnectionLease {
                    conn: tokio::sync::Mutex::new(Some(conn)),
                    backend,
                    key,
                    unlock,
                })))
            } else {
                let _ = conn.close().await;
                Ok(None)
            }
        }
        Backend::Sqlite => Ok(sqlite_lock(store, scope, key, Owner::this_process())
            .await?
            .map(ScopeLease::checked)),
    }
}

/// Whether a session holds `scope`'s lock (PostgreSQL, MySQL), asked of the server
/// without taking it; `None` on SQLite, whose lock rows need the owner checks of a take.
pub(crate) async fn is_scope_locked(store: &SqlStore, scope: &SyncScope) -> Result<Option<bool>> {
    if store.inner.backend == Backend::Sqlite {
        return Ok(None);
    }
    // A lock this process dropped is free once its release ran.
    await_pending_releases().await;
    Ok(Some(store.scope_lock_session(scope).await?.is_some()))
}

impl SqlStore {
    /// The server session holding `scope`'s lock, if any: the PostgreSQL backend pid or
    /// the MySQL connection id (`None` on SQLite). For tests that end the session.
    #[doc(hidden)]
    pub async fn scope_lock_session(&self, scope: &SyncScope) -> Result<Option<i64>> {
        let key = scope_key(&self.inner.namespace, scope);
        let backend = self.inner.backend;
        let mut sql = match backend {
            Backend::Sqlite => return Ok(None),
            Backend::Postgres => {
                let (high, low) = pg_lock_halves(key);
                let mut sql = Sql::new(
                    backend,
                    "SELECT CAST(pid AS BIGINT) FROM pg_locks WHERE locktype = 'advisory' \
                     AND granted AND objsubid = 1 \
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                     AND classid::bigint = ",
                );
                sql.bind(high).push(" AND objid::bigint = ").bind(low);
                sql
            }
            Backend::MySql => {
                let mut sql = Sql::new(backend, "SELECT CAST(IS_USED_LOCK(");
                sql.bind(mysql_lock_name(key)).push(") AS SIGNED)");
                sql
            }
        };
        let row = sql
            .build()?
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        match row {
            Some(row) => opt_int(&row, 0),
            None => Ok(None),
        }
    }
}

static TOKENS: AtomicU64 = AtomicU64::new(0);

async fn sqlite_lock(
    store: &SqlStore,
    scope: &SyncScope,
    key: i64,
    me: &Owner,
) -> Result<Option<RowLease>> {
    let key = format!("{key:016x}");
    let clock = store.inner.clock;
    let mut tx = store.begin().await?;
    let mut sql = Sql::new(
        Backend::Sqlite,
        "SELECT owner_pid, owner_start, owner_token, expires_at, owner_host, owner_boot \
         FROM cmdb_scope_locks WHERE scope_key = ",
    );
    sql.bind(key.clone());
    let row = sql
        .build()?
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
    let now = clock.now();
    let taken = tokio::time::Instant::now();
    if let Some(row) = row {
        let row = LockRow {
            pid: opt_int(&row, 0)?.unwrap_or_default(),
            start: opt_int(&row, 1)?.unwrap_or_default(),
            token: opt_text(&row, 2)?.unwrap_or_default(),
            expires_at: opt_time(&row, 3)?.unwrap_or_default(),
            host: opt_text(&row, 4)?,
            boot: opt_text(&row, 5)?,
        };
        let stale = is_stale(&row, me, now, |token| live_tokens().contains(token), probe);
        if !stale {
            tx.rollback().await.map_err(db_error)?;
            return Ok(None);
        }
        tracing::info!(scope = %scope, owner_pid = row.pid, "taking over a stale scope lock");
    }
    let token = format!(
        "{}-{}-{}-{}",
        me.pid,
        me.start,
        TOKENS.fetch_add(1, Ordering::Relaxed),
        now.timestamp_nanos_opt().unwrap_or_default()
    );
    let mut sql = Sql::new(
        Backend::Sqlite,
        "INSERT OR REPLACE INTO cmdb_scope_locks (scope_key, scope, owner_pid, owner_start, \
         owner_token, acquired_at, expires_at, owner_host, owner_boot) VALUES (",
    );
    sql.bind(key.clone())
        .push(", ")
        .bind(scope.to_string())
        .push(", ")
        .bind(i64::from(me.pid))
        .push(", ")
        .bind(me.start)
        .push(", ")
        .bind(token.clone())
        .push(", ")
        .bind_time(now)
        .push(", ")
        .bind_time(now + SQLITE_LOCK_TTL)
        .push(", ")
        .bind(me.host.clone())
        .push(", ")
        .bind(me.boot.clone())
        .push(")");
    sql.build()?.execute(&mut *tx).await.map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    live_tokens().insert(token.clone());
    let pool = store.inner.pool.clone();
    let renewed = Arc::new(watch::Sender::new(0));
    let renewal = tokio::spawn(renew(
        pool.clone(),
        clock,
        key.clone(),
        token.clone(),
        taken,
        Arc::clone(&renewed),
    ));
    Ok(Some(RowLease {
        pool,
        clock,
        key,
        token,
        renewal,
        renewed,
    }))
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

    #[test]
    fn advisory_key_halves_are_unsigned() {
        assert_eq!(pg_lock_halves(-1), (0xffff_ffff, 0xffff_ffff));
        assert_eq!(
            pg_lock_halves(0x1234_5678_9abc_def0),
            (0x1234_5678, 0x9abc_def0)
        );
    }

    fn owner(pid: u32, start: i64, host: &str, boot: &str) -> Owner {
        Owner {
            pid,
            start,
            host: host.into(),
            boot: boot.into(),
        }
    }

    /// `seconds` after the epoch.
    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn row(pid: i64, start: i64, host: Option<&str>, boot: Option<&str>) -> LockRow {
        LockRow {
            pid,
            start,
            token: "t".into(),
            expires_at: at(1_000),
            host: host.map(Into::into),
            boot: boot.map(Into::into),
        }
    }

    /// Every case of the take-over decision, with the platform's answers stubbed: on a
    /// platform without `/proc`, the `ps` probe (or none) answers.
    #[test]
    fn stale_rows_are_told_from_live_ones() {
        let me = owner(100, 7, "h1", "boot-a");
        let never = |_: &str| -> bool { panic!("not this process") };
        let unasked = |_: u32| -> Probe { panic!("no probe needed") };
        let stale = |r: &LockRow, now: DateTime<Utc>, probe: Probe| {
            is_stale(r, &me, now, |_| false, move |_| probe)
        };
        let on_host = row(200, 9, Some("h1"), Some("boot-a"));
        // Expired: renewals stopped, whoever the owner.
        assert!(is_stale(&on_host, &me, at(1_000), never, unasked));
        let elsewhere = row(200, 9, Some("h2"), Some("boot-x"));
        assert!(is_stale(&elsewhere, &me, at(1_000), never, unasked));
        // Another host: trusted until it expires.
        assert!(!is_stale(&elsewhere, &me, at(999), never, unasked));
        // This host before a reboot.
        let old_boot = row(200, 9, Some("h1"), Some("boot-0"));
        assert!(is_stale(&old_boot, &me, at(0), never, unasked));
        // This host, another process: dead, reused pid, alive, unknown (no /proc, no ps).
        assert!(stale(&on_host, at(0), Probe::Gone), "a dead owner");
        assert!(stale(&on_host, at(0), Probe::Running(10)), "a reused pid");
        assert!(!stale(&on_host, at(0), Probe::Running(9)), "a live owner");
        assert!(!stale(&on_host, at(0), Probe::Unknown), "no way to tell");
        // This host without a boot id (not Linux): the pid decides.
        let no_boot = owner(100, 7, "h1", "");
        let r = row(200, 9, Some("h1"), Some(""));
        assert!(is_stale(&r, &no_boot, at(0), never, |_| Probe::Gone));
        assert!(!is_stale(&r, &no_boot, at(0), never, |_| Probe::Running(9)));
        // This process: its live tokens decide.
        let mine = row(100, 7, Some("h1"), Some("boot-a"));
        assert!(!is_stale(&mine, &me, at(0), |t| t == "t", unasked));
        assert!(is_stale(&mine, &me, at(0), |_| false, unasked));
        // A row of an older version (no host): taken on this host.
        assert!(stale(&row(200, 9, None, None), at(0), Probe::Gone));
        // An unknown hostname never matches.
        let nameless = owner(100, 7, "", "");
        assert!(!is_stale(
            &row(200, 9, Some(""), None),
            &nameless,
            at(0),
            never,
            unasked
        ));
    }

    #[test]
    fn this_process_is_alive_and_an_exited_one_is_gone() {
        let me = std::process::id();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        if procfs_available() {
            assert!(matches!(probe(me), Probe::Running(_)));
            assert_eq!(probe(me), Probe::Running(proc_start(me).unwrap()));
            assert_eq!(probe(dead), Probe::Gone);
        }
        // The probe of platforms without /proc, where `ps` exists.
        if std::process::Command::new("ps")
            .arg("-p")
            .arg("1")
            .output()
            .is_ok()
        {
            assert!(
                matches!(ps_probe(me), Probe::Running(_)),
                "{:?}",
                ps_probe(me)
            );
            assert_eq!(ps_probe(me), ps_probe(me), "stable start value");
            assert_eq!(ps_probe(dead), Probe::Gone);
        }
        let owner = Owner::this_process();
        assert_eq!(owner.pid, me);
        if procfs_available() {
            assert!(!owner.boot.is_empty());
            assert!(!owner.host.is_empty());
        }
    }

    async fn plant_row(store: &SqlStore, scope: &SyncScope, owner: &Owner, expires: DateTime<Utc>) {
        let mut sql = Sql::new(
            Backend::Sqlite,
            "INSERT INTO cmdb_scope_locks (scope_key, scope, owner_pid, owner_start, \
             owner_token, acquired_at, expires_at, owner_host, owner_boot) VALUES (",
        );
        sql.bind(format!("{:016x}", scope_key("", scope)))
            .push(", ")
            .bind(scope.to_string())
            .push(", ")
            .bind(i64::from(owner.pid))
            .push(", ")
            .bind(owner.start)
            .push(", 'planted', ")
            .bind_time(DateTime::UNIX_EPOCH)
            .push(", ")
            .bind_time(expires)
            .push(", ")
            .bind(owner.host.clone())
            .push(", ")
            .bind(owner.boot.clone())
            .push(")");
        sql.build().unwrap().execute(store.pool()).await.unwrap();
    }

    async fn lock_as(store: &SqlStore, scope: &SyncScope, who: &Owner) -> Option<RowLease> {
        sqlite_lock(store, scope, scope_key("", scope), who)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn sqlite_lock_of_a_dead_or_expired_holder_is_taken_over() {
        let store = SqlStore::connect("sqlite::memory:").await.unwrap();
        let me = Owner::this_process();
        let far = Utc::now() + chrono::Duration::hours(1);
        let on_this_host = |pid: u32, start: i64| Owner {
            pid,
            start,
            ..me.clone()
        };

        // A process of this host that has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        if probe(dead) == Probe::Gone {
            let scope = SyncScope::hosts("dead", Vendor::Aliyun, "r");
            plant_row(&store, &scope, &on_this_host(dead, 12345), far).await;
            assert!(lock_as(&store, &scope, me).await.is_some(), "dead holder");
        }

        // A live process (this one) with another start time: the pid was reused.
        if matches!(probe(me.pid), Probe::Running(_)) {
            let scope = SyncScope::hosts("reused", Vendor::Aliyun, "r");
            plant_row(&store, &scope, &on_this_host(me.pid, me.start + 1), far).await;
            assert!(lock_as(&store, &scope, me).await.is_some(), "reused pid");
        }

        // A live holder (pid 1 with its real start time) blocks until the row expires.
        if let Probe::Running(init_start) = probe(1) {
            let scope = SyncScope::hosts("live", Vendor::Aliyun, "r");
            plant_row(&store, &scope, &on_this_host(1, init_start), far).await;
            assert!(lock_as(&store, &scope, me).await.is_none(), "live holder");
            let scope = SyncScope::hosts("expired", Vendor::Aliyun, "r");
            plant_row(
                &store,
                &scope,
                &on_this_host(1, init_start),
                DateTime::UNIX_EPOCH,
            )
            .await;
            assert!(lock_as(&store, &scope, me).await.is_some(), "expired row");
        }

        // The same host before a reboot.
        let scope = SyncScope::hosts("rebooted", Vendor::Aliyun, "r");
        let before_reboot = Owner {
            boot: "an-earlier-boot".into(),
            ..on_this_host(1, 1)
        };
        plant_row(&store, &scope, &before_reboot, far).await;
        let taken = lock_as(&store, &scope, me).await;
        assert_eq!(taken.is_some(), !me.boot.is_empty(), "rebooted host");
    }

    /// A run longer than the TTL keeps its lease: the paused clock moves three TTLs on in
    /// steps of a renewal period; another process (on another host, so that only the row's
    /// expiry can tell) cannot take the lock meanwhile, and the lease says it holds it. Once
    /// renewals stop, the row expires, the other process takes it, and the first lease
    /// says it no longer holds it.
    #[tokio::test]
    async fn sqlite_lease_is_renewed_past_its_ttl_and_lost_when_renewals_stop() {
        let store = SqlStore::connect("sqlite::memory:").await.unwrap();
        let scope = SyncScope::hosts("renewed", Vendor::Tencent, "ap-guangzhou");
        let me = Owner::this_process();
        let other = owner(me.pid.wrapping_add(1), 1, "another-host", "another-boot");
        let lease = lock_as(&store, &scope, me).await.expect("first lock");
        let mut renewed = lease.renewed.subscribe();
        let period = SQLITE_LOCK_TTL / 3;
        for round in 1..=9u64 {
            tokio::time::pause();
            tokio::time::advance(period).await;
            // The renewal's statement runs on the real clock (the pool's timers must not
            // jump while SQLite answers).
            tokio::time::resume();
            tokio::time::timeout(Duration::from_secs(30), renewed.wait_for(|n| *n >= round))
                .await
                .expect("renewed in time")
                .unwrap();
            assert!(
                lock_as(&store, &scope, &other).await.is_none(),
                "round {round}: a renewed lease is not taken over"
            );
            assert!(lease.is_held().await.unwrap(), "round {round}");
        }

        // The owner hangs: no more renewals.
        lease.renewal.abort();
        tokio::time::pause();
        tokio::time::advance(SQLITE_LOCK_TTL).await;
        tokio::time::resume();
        assert!(!lease.is_held().await.unwrap(), "expired");
        let taken = lock_as(&store, &scope, &other).await.expect("taken over");
        assert!(taken.is_held().await.unwrap());
        assert!(!lease.is_held().await.unwrap(), "no longer ours");
        // Dropping the old lease leaves the new owner's row alone.
        drop(lease);
        await_pending_releases().await;
        assert!(taken.is_held().await.unwrap());
        drop(taken);
        await_pending_releases().await;
        assert!(lock_as(&store, &scope, me).await.is_some(), "free again");
    }
}
