//! [`HostStore`] for [`SqlStore`].
//!
//! An upserted page is one transaction of set-based statements: one `SELECT` of the
//! stored hashes of the page's keys (locking those rows on PostgreSQL and MySQL), one
//! multi-row insert of the new hosts, one multi-row insert-or-update of the changed ones,
//! one `UPDATE` of `last_seen_at` for the unchanged ones, every statement in key order.
//! Hosts that cannot be stored (outside the scope, a value too long for its column) are
//! refused before the transaction; should a multi-row statement fail anyway, the page
//! falls back to one savepoint per host so that only the failing hosts are lost.
//!
//! Concurrent writers of the same hosts are contention, not failures: a deadlock, a lock
//! wait timeout, or a key created by another writer after this one looked it up (its plain
//! insert meets the other's row) runs the whole transaction again, a bounded number of
//! times. A host is reported created only by the writer whose insert made its row.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use cmdb_core::{
    Error, Host, HostList, HostQuery, HostSort, HostStore, MissingHost, Result, ScopeLease,
    ScopeStats, StoredHost, SyncScope, UpsertOutcome, Vendor,
};
use sqlx::any::AnyRow;
use sqlx::{Acquire, AnyConnection, Connection};

use crate::sql::{int, opt_int, opt_text, text, Backend, Sql};
use crate::store::{db_error, SqlStore};

/// Columns of `cmdb_hosts` in the order rows are written and read.
const COLUMNS: &[&str] = &[
    "vendor",
    "instance_id",
    "secret_id",
    "region",
    "zone",
    "name",
    "name_lc",
    "description",
    "hostname",
    "status",
    "raw_status",
    "instance_type",
    "cpu",
    "memory_mib",
    "gpu_count",
    "gpu_spec",
    "os_type",
    "os_name",
    "image_id",
    "public_ips",
    "private_ips",
    "ip_search",
    "pay_mode",
    "created_at",
    "expire_at",
    "tags",
    "vpc_id",
    "security_groups",
    "key_pairs",
    "serial_number",
    "extra",
    "content_hash",
    "first_seen_at",
    "last_seen_at",
    "released_at",
];

/// Columns an update leaves alone: the key and the first sighting.
const KEEP_ON_UPDATE: &[&str] = &["vendor", "instance_id", "first_seen_at"];

/// Hosts per multi-row statement: 35 parameters each stays well below every backend's
/// parameter limit (SQLite 32766, PostgreSQL and MySQL 65535). A page of 100 is one
/// statement, and a batch of several pages is several statements of the same text, which
/// each connection prepares once: a statement of 500 rows for each batch size cost a few
/// MB of prepared statements per connection and was no faster.
const ROWS_PER_STATEMENT: usize = 100;

/// Keys per `IN (...)` list.
const KEYS_PER_STATEMENT: usize = 1000;

/// Ids per `UPDATE` of a release or a miss mark: each statement locks at most this many
/// rows, so it holds its locks briefly and stays far below the parameter limits.
const IDS_PER_UPDATE: usize = 500;

/// Attempts of one write that meets concurrent writers (deadlock, lock wait timeout, a
/// key created meanwhile) before the error is returned.
pub(crate) const WRITE_ATTEMPTS: u32 = 5;

/// Separates IP addresses in the `ip_search` column.
const IP_SEPARATOR: char = '\n';

/// Nanoseconds since the epoch: exact for every bookkeeping time until 2262.
pub(crate) fn nanos(t: DateTime<Utc>) -> Result<i64> {
    t.timestamp_nanos_opt()
        .ok_or_else(|| Error::invalid_field("seen_at", "must be between 1677 and 2262"))
}

pub(crate) fn from_nanos(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(n)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A host ready to be written: the values a column needs beyond the host's own fields,
/// which are bound borrowed from the host.
struct Row<'a> {
    host: &'a Host,
    hash: String,
    /// The derived columns, one after the other in one string (one allocation a host
    /// instead of eight): see [`Derived`].
    text: String,
    /// Where each [`Derived`] column lies in `text`.
    spans: [(usize, usize); Derived::COUNT],
}

/// The columns of a row that are not a field of the host as it is.
#[derive(Clone, Copy)]
enum Derived {
    NameLc,
    IpSearch,
    PublicIps,
    PrivateIps,
    Tags,
    SecurityGroups,
    KeyPairs,
    Extra,
}

impl Derived {
    const COUNT: usize = 8;
}

/// The derived columns of a row being written one after the other.
#[derive(Default)]
struct DerivedText {
    text: Vec<u8>,
    spans: [(usize, usize); Derived::COUNT],
}

impl DerivedText {
    /// Appends `column`, written by `write`.
    fn column(
        &mut self,
        column: Derived,
        write: impl FnOnce(&mut Vec<u8>) -> std::result::Result<(), String>,
    ) -> std::result::Result<(), String> {
        let start = self.text.len();
        write(&mut self.text)?;
        self.spans[column as usize] = (start, self.text.len());
        Ok(())
    }
}

/// Appends `value` as JSON to `text`.
fn push_json<T: serde::Serialize + ?Sized>(
    text: &mut Vec<u8>,
    value: &T,
) -> std::result::Result<(), String> {
    serde_json::to_writer(text, value).map_err(|e| format!("cannot encode as JSON: {e}"))
}

/// Checks a value against its column's limit (in characters) and against NUL, which
/// PostgreSQL refuses in text.
fn check(field: &str, value: &str, max_chars: usize) -> std::result::Result<(), String> {
    if value.as_bytes().contains(&0) {
        return Err(format!("{field} contains a NUL character"));
    }
    // A string has at most as many characters as bytes: count only when it may matter.
    if max_chars > 0 && value.len() > max_chars {
        let n = value.chars().count();
        if n > max_chars {
            return Err(format!(
                "{field} is {n} characters long, more than the column's {max_chars}"
            ));
        }
    }
    Ok(())
}

fn check_opt(field: &str, value: Option<&str>, max: usize) -> std::result::Result<(), String> {
    value.map_or(Ok(()), |v| check(field, v, max))
}

impl<'a> Row<'a> {
    /// The row of `host` as seen by a sync of `scope`, or why it cannot be stored. The
    /// host's `secret_id` is not used: the row is bound with the scope's.
    fn new(scope: &SyncScope, host: &'a Host) -> std::result::Result<Row<'a>, String> {
        scope.check_host(host)?;
        let name_lc = host.name.to_lowercase();
        // Limits match the columns of migration 1 (0: unbounded text).
        check("instance_id", &host.instance_id, 255)?;
        check("secret_id", &scope.secret_id, 255)?;
        check("region", &host.region, 255)?;
        check_opt("zone", host.zone.as_deref(), 255)?;
        check("name", &host.name, 512)?;
        check("name", &name_lc, 512)?;
        check_opt("description", host.description.as_deref(), 0)?;
        check_opt("hostname", host.hostname.as_deref(), 512)?;
        check("raw_status", &host.raw_status, 255)?;
        check_opt("instance_type", host.instance_type.as_deref(), 255)?;
        check_opt("gpu_spec", host.gpu_spec.as_deref(), 255)?;
        check_opt("os_name", host.os_name.as_deref(), 512)?;
        check_opt("image_id", host.image_id.as_deref(), 255)?;
        check_opt("vpc_id", host.vpc_id.as_deref(), 255)?;
        check_opt("serial_number", host.serial_number.as_deref(), 255)?;
        for ip in host.public_ips.iter().chain(&host.private_ips) {
            check("ip address", ip, 0)?;
        }
        if host.memory_mib.is_some_and(|m| i64::try_from(m).is_err()) {
            return Err("memory_mib is too large".to_owned());
        }
        // Room for the usual row at once: the lowercased name, the addresses twice, JSON.
        let ip_bytes: usize = host
            .public_ips
            .iter()
            .chain(&host.private_ips)
            .map(|ip| ip.len() + 3)
            .sum();
        let mut derived = DerivedText {
            text: Vec::with_capacity(2 * host.name.len() + 2 * ip_bytes + 512),
            ..DerivedText::default()
        };
        derived.column(Derived::NameLc, |t| {
            t.extend_from_slice(name_lc.as_bytes());
            Ok(())
        })?;
        derived.column(Derived::IpSearch, |t| {
            for (i, ip) in host.public_ips.iter().chain(&host.private_ips).enumerate() {
                if i > 0 {
                    t.push(IP_SEPARATOR as u8);
                }
                t.extend_from_slice(ip.as_bytes());
            }
            Ok(())
        })?;
        derived.column(Derived::PublicIps, |t| push_json(t, &host.public_ips))?;
        derived.column(Derived::PrivateIps, |t| push_json(t, &host.private_ips))?;
        derived.column(Derived::Tags, |t| push_json(t, &host.tags))?;
        derived.column(Derived::SecurityGroups, |t| {
            push_json(t, &host.security_groups)
        })?;
        derived.column(Derived::KeyPairs, |t| push_json(t, &host.key_pairs))?;
        derived.column(Derived::Extra, |t| push_json(t, &host.extra))?;
        let DerivedText { text, spans } = derived;
        // Strings and JSON: UTF-8 throughout, cut at the boundaries of what was pushed.
        let text = String::from_utf8(text).map_err(|e| format!("not UTF-8: {e}"))?;
        Ok(Row {
            hash: host.content_hash(),
            text,
            spans,
            host,
        })
    }

    /// The value of a derived column.
    fn derived(&self, column: Derived) -> &str {
        let (start, end) = self.spans[column as usize];
        &self.text[start..end]
    }

    /// Binds the row's values in [`COLUMNS`] order, borrowed: the driver copies them once.
    fn bind<'q>(&'q self, sql: &mut Sql<'q>, secret_id: &'q str, seen_at: i64) {
        let h = self.host;
        let int = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        sql.push("(");
        sql.bind(h.vendor.as_str()).push(", ");
        sql.bind(h.instance_id.as_str()).push(", ");
        sql.bind(secret_id).push(", ");
        sql.bind(h.region.as_str()).push(", ");
        sql.bind(h.zone.as_deref()).push(", ");
        sql.bind(h.name.as_str()).push(", ");
        sql.bind(self.derived(Derived::NameLc)).push(", ");
        sql.bind(h.description.as_deref()).push(", ");
        sql.bind(h.hostname.as_deref()).push(", ");
        sql.bind(h.status.as_str()).push(", ");
        sql.bind(h.raw_status.as_str()).push(", ");
        sql.bind(h.instance_type.as_deref()).push(", ");
        sql.bind(int(h.cpu.map(u64::from))).push(", ");
        sql.bind(int(h.memory_mib)).push(", ");
        sql.bind(int(h.gpu_count.map(u64::from))).push(", ");
        sql.bind(h.gpu_spec.as_deref()).push(", ");
        sql.bind(h.os_type.as_str()).push(", ");
        sql.bind(h.os_name.as_deref()).push(", ");
        sql.bind(h.image_id.as_deref()).push(", ");
        sql.bind(self.derived(Derived::PublicIps)).push(", ");
        sql.bind(self.derived(Derived::PrivateIps)).push(", ");
        sql.bind(self.derived(Derived::IpSearch)).push(", ");
        sql.bind(h.pay_mode.as_str()).push(", ");
        sql.bind(h.created_at.map(rfc3339)).push(", ");
        sql.bind(h.expire_at.map(rfc3339)).push(", ");
        sql.bind(self.derived(Derived::Tags)).push(", ");
        sql.bind(h.vpc_id.as_deref()).push(", ");
        sql.bind(self.derived(Derived::SecurityGroups)).push(", ");
        sql.bind(self.derived(Derived::KeyPairs)).push(", ");
        sql.bind(h.serial_number.as_deref()).push(", ");
        sql.bind(self.derived(Derived::Extra)).push(", ");
        sql.bind(self.hash.as_str()).push(", ");
        sql.bind(seen_at).push(", ");
        sql.bind(seen_at).push(", ");
        sql.bind(None::<i64>).push(")");
    }
}

/// The text of `INSERT INTO cmdb_hosts (...) VALUES ` and of the update clause that
/// follows the rows, per backend: the same for every statement, built once.
struct UpsertText {
    insert: String,
    update: [String; 3],
}

/// What a multi-row statement does with a key that exists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnConflict {
    /// Fail: the rows are new, and a key that exists now was created by another writer.
    Fail,
    /// Update the row.
    Update,
}

static UPSERT_TEXT: std::sync::LazyLock<UpsertText> = std::sync::LazyLock::new(|| {
    let updated = || COLUMNS.iter().filter(|c| !KEEP_ON_UPDATE.contains(c));
    let excluded = updated()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let values = updated()
        .map(|c| format!("{c} = VALUES({c})"))
        .collect::<Vec<_>>()
        .join(", ");
    // Seen again: a miss mark (see `mark_missed`) no longer holds.
    let on_conflict =
        format!(" ON CONFLICT (vendor, instance_id) DO UPDATE SET {excluded}, missed_at = NULL");
    UpsertText {
        insert: format!("INSERT INTO cmdb_hosts ({}) VALUES ", COLUMNS.join(", ")),
        update: [
            on_conflict.clone(),
            on_conflict,
            format!(" ON DUPLICATE KEY UPDATE {values}, missed_at = NULL"),
        ],
    }
});

/// `INSERT ... VALUES (row), (row) ...` for `rows`, followed by `ON CONFLICT/DUPLICATE KEY
/// UPDATE ...` unless the rows are new.
fn upsert_statement<'q>(
    backend: Backend,
    rows: &[&'q Row<'q>],
    secret_id: &'q str,
    seen_at: i64,
    conflict: OnConflict,
) -> Sql<'q> {
    let text = &*UPSERT_TEXT;
    let mut sql = Sql::new(backend, &text.insert);
    // "(" and ")", and per value a placeholder (up to `$9999` on PostgreSQL) and ", ".
    let row_text = 2 + COLUMNS.len() * 7;
    sql.reserve(
        rows.len() * row_text + text.update[0].len().max(text.update[2].len()),
        rows.len() * COLUMNS.len(),
    );
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        row.bind(&mut sql, secret_id, seen_at);
    }
    if conflict == OnConflict::Update {
        sql.push(match backend {
            Backend::Sqlite => &text.update[0],
            Backend::Postgres => &text.update[1],
            Backend::MySql => &text.update[2],
        });
    }
    sql
}

fn select_columns() -> String {
    COLUMNS.join(", ")
}

fn decode(row: &AnyRow) -> Result<StoredHost> {
    fn parse_json<T: serde::de::DeserializeOwned>(field: &str, s: &str) -> Result<T> {
        serde_json::from_str(s).map_err(|e| Error::decode(format!("stored {field}: {e}")))
    }
    fn parse_enum<T: std::str::FromStr>(s: &str) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        s.parse().map_err(|e: T::Err| Error::decode(e.to_string()))
    }
    fn parse_time(field: &str, s: Option<String>) -> Result<Option<DateTime<Utc>>> {
        s.map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| Error::decode(format!("stored {field} {s:?}: {e}")))
        })
        .transpose()
    }
    fn small(field: &str, v: Option<i64>) -> Result<Option<u32>> {
        v.map(|v| u32::try_from(v).map_err(|_| Error::decode(format!("stored {field} {v}"))))
            .transpose()
    }
    let host = Host {
        vendor: parse_enum(&text(row, 0)?)?,
        instance_id: text(row, 1)?,
        secret_id: text(row, 2)?,
        region: text(row, 3)?,
        zone: opt_text(row, 4)?,
        name: text(row, 5)?,
        description: opt_text(row, 7)?,
        hostname: opt_text(row, 8)?,
        status: parse_enum(&text(row, 9)?)?,
        raw_status: text(row, 10)?,
        instance_type: opt_text(row, 11)?,
        cpu: small("cpu", opt_int(row, 12)?)?,
        memory_mib: opt_int(row, 13)?
            .map(|v| u64::try_from(v).map_err(|_| Error::decode("stored memory_mib")))
            .transpose()?,
        gpu_count: small("gpu_count", opt_int(row, 14)?)?,
        gpu_spec: opt_text(row, 15)?,
        os_type: parse_enum(&text(row, 16)?)?,
        os_name: opt_text(row, 17)?,
        image_id: opt_text(row, 18)?,
        public_ips: parse_json("public_ips", &text(row, 19)?)?,
        private_ips: parse_json("private_ips", &text(row, 20)?)?,
        pay_mode: parse_enum(&text(row, 22)?)?,
        created_at: parse_time("created_at", opt_text(row, 23)?)?,
        expire_at: parse_time("expire_at", opt_text(row, 24)?)?,
        tags: parse_json("tags", &text(row, 25)?)?,
        vpc_id: opt_text(row, 26)?,
        security_groups: parse_json("security_groups", &text(row, 27)?)?,
        key_pairs: parse_json("key_pairs", &text(row, 28)?)?,
        serial_number: opt_text(row, 29)?,
        extra: parse_json("extra", &text(row, 30)?)?,
    };
    Ok(StoredHost {
        host,
        content_hash: text(row, 31)?,
        first_seen_at: from_nanos(int(row, 32)?),
        last_seen_at: from_nanos(int(row, 33)?),
        released_at: opt_int(row, 34)?.map(from_nanos),
    })
}

/// The stored state of a key that decides its outcome.
#[derive(Clone)]
struct Known {
    hash: String,
    released: bool,
}

/// Whether a database error is about one row's values (so only that host fails) rather
/// than the connection, the database as a whole, or a concurrent writer.
fn is_row_error(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(_)) && !is_contention(e)
}

/// Whether a database error comes from a concurrent writer, so that running the
/// transaction again may succeed: a deadlock or serialization failure (PostgreSQL
/// SQLSTATE 40P01 and 40001, MySQL error 1213), a lock wait timeout (MySQL 1205), or a
/// unique violation (a key this writer found absent was created by another meanwhile;
/// the only unique key of the hosts is their primary key).
pub(crate) fn is_contention(e: &sqlx::Error) -> bool {
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
enum Attempt {
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
fn attempt_error(e: sqlx::Error) -> Attempt {
    if is_contention(&e) {
        Attempt::Retry(e)
    } else {
        Attempt::Fail(db_error(e))
    }
}

/// Waits before attempt `attempt + 1`: about 10, 20, 40, 80 ms, jittered so that two
/// writers that met do not meet again in step.
pub(crate) async fn backoff(attempt: u32) {
    use rand::Rng;
    let base = 10u64 << attempt.saturating_sub(1).min(6);
    let ms = rand::thread_rng().gen_range(base / 2..=base);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// What `release` and `mark_missed` set on the hosts they pick.
#[derive(Clone, Copy)]
enum Mark {
    /// `released_at`, clearing any miss mark.
    Released(i64),
    /// `missed_at`, where none is set.
    Missed(i64),
}

impl SqlStore {
    pub(crate) async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let pool = &self.inner.pool;
        let mut attempts = 0;
        let conn = loop {
            let mut conn = pool.acquire().await.map_err(db_error)?;
            if self.inner.backend == Backend::Sqlite {
                // A transaction dropped mid-way leaves its rollback queued on the
                // connection's worker; let it run first.
                conn.ping().await.map_err(db_error)?;
            }
            if !conn.is_in_transaction() {
                break conn;
            }
            // A future dropped right after its BEGIN was acknowledged leaves a
            // transaction nobody owns: never write into it, drop the connection.
            attempts += 1;
            tracing::warn!("discarding a pooled connection left inside a transaction");
            conn.close_on_drop();
            drop(conn);
            if attempts > 16 {
                return Err(Error::store("no pooled connection outside a transaction"));
            }
        };
        let statement = match self.inner.backend {
            // Take the write lock up front: a deferred transaction that reads and then
            // writes can fail with SQLITE_BUSY under concurrent writers.
            Backend::Sqlite => Some("BEGIN IMMEDIATE".into()),
            Backend::Postgres | Backend::MySql => None,
        };
        sqlx::Transaction::begin(conn, statement)
            .await
            .map_err(db_error)
    }

    /// The stored hash and release state of `ids` of `vendor` (sorted), whose rows stay
    /// locked until the transaction ends (SQLite's immediate transaction locks the whole
    /// database): what decides the outcomes cannot change before they are written.
    async fn known(
        &self,
        conn: &mut AnyConnection,
        vendor: Vendor,
        ids: &[&str],
    ) -> std::result::Result<HashMap<String, Known>, Attempt> {
        let backend = self.inner.backend;
        let mut known = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(KEYS_PER_STATEMENT) {
            let mut sql = Sql::new(
                backend,
                "SELECT instance_id, content_hash, released_at FROM cmdb_hosts WHERE vendor = ",
            );
            sql.bind(vendor.as_str().to_owned())
                .push(" AND instance_id IN ")
                .bind_list(chunk.iter().copied());
            if backend != Backend::Sqlite {
                // Locked in key order, as every writer does: no lock cycles.
                sql.push(" ORDER BY instance_id FOR UPDATE");
            }
            let rows = sql
                .build()?
                .fetch_all(&mut *conn)
                .await
                .map_err(attempt_error)?;
            for row in rows {
                known.insert(
                    text(&row, 0)?,
                    Known {
                        hash: text(&row, 1)?,
                        released: opt_int(&row, 2)?.is_some(),
                    },
                );
            }
        }
        Ok(known)
    }

    /// Writes `rows` with multi-row statements, all in one savepoint; on a database error
    /// about a row the savepoint is rolled back and the rows are written again a statement
    /// at a time, then one by one in the statement that fails. Returns the failures by row
    /// index. Contention ends the attempt at once.
    async fn write_rows(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        rows: &[&Row<'_>],
        secret_id: &str,
        seen_at: i64,
        conflict: OnConflict,
    ) -> std::result::Result<HashMap<usize, String>, Attempt> {
        let backend = self.inner.backend;
        if rows.is_empty() {
            return Ok(HashMap::new());
        }
        let mut sp = tx.begin().await.map_err(attempt_error)?;
        let mut refused = None;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut sql = upsert_statement(backend, chunk, secret_id, seen_at, conflict);
            match sql.build()?.execute(&mut *sp).await {
                Ok(_) => {}
                Err(e) if is_row_error(&e) => {
                    refused = Some(e);
                    break;
                }
                Err(e) => return Err(attempt_error(e)),
            }
        }
        match refused {
            None => {
                sp.commit().await.map_err(attempt_error)?;
                return Ok(HashMap::new());
            }
            Some(e) => {
                sp.rollback().await.map_err(attempt_error)?;
                tracing::debug!(error = %e, "multi-row upsert failed; retrying in parts");
            }
        }
        let mut failed = HashMap::new();
        for (chunk_index, chunk) in rows.chunks(ROWS_PER_STATEMENT).enumerate() {
            let mut sp = tx.begin().await.map_err(attempt_error)?;
            let mut sql = upsert_statement(backend, chunk, secret_id, seen_at, conflict);
            match sql.build()?.execute(&mut *sp).await {
                Ok(_) => sp.commit().await.map_err(attempt_error)?,
                Err(e) if is_row_error(&e) => {
                    sp.rollback().await.map_err(attempt_error)?;
                    for (i, row) in chunk.iter().enumerate() {
                        let mut sp = tx.begin().await.map_err(attempt_error)?;
                        let mut sql =
                            upsert_statement(backend, &[row], secret_id, seen_at, conflict);
                        match sql.build()?.execute(&mut *sp).await {
                            Ok(_) => sp.commit().await.map_err(attempt_error)?,
                            Err(e) if is_row_error(&e) => {
                                sp.rollback().await.map_err(attempt_error)?;
                                failed.insert(
                                    chunk_index * ROWS_PER_STATEMENT + i,
                                    format!("database refused the host: {e}"),
                                );
                            }
                            Err(e) => return Err(attempt_error(e)),
                        }
                    }
                }
                Err(e) => return Err(attempt_error(e)),
            }
        }
        Ok(failed)
    }

    /// Moves `last_seen_at` (and the secret that saw them) of unchanged hosts, and clears
    /// their miss marks.
    async fn touch(
        &self,
        conn: &mut AnyConnection,
        scope: &SyncScope,
        ids: &[&str],
        seen_at: i64,
    ) -> std::result::Result<(), Attempt> {
        for chunk in ids.chunks(KEYS_PER_STATEMENT) {
            let mut sql = Sql::new(self.inner.backend, "UPDATE cmdb_hosts SET last_seen_at = ");
            sql.bind(seen_at)
                .push(", missed_at = NULL, secret_id = ")
                .bind(scope.secret_id.clone())
                .push(" WHERE vendor = ")
                .bind(scope.vendor.as_str().to_owned())
                .push(" AND instance_id IN ")
                .bind_list(chunk.iter().copied());
            sql.build()?
                .execute(&mut *conn)
                .await
                .map_err(attempt_error)?;
        }
        Ok(())
    }

    /// Begins a write transaction and looks up (and locks) the stored state of `ids`.
    async fn begin_known(
        &self,
        vendor: Vendor,
        ids: &[&str],
    ) -> std::result::Result<
        (
            sqlx::Transaction<'static, sqlx::Any>,
            HashMap<String, Known>,
        ),
        Attempt,
    > {
        let mut tx = self.begin().await?;
        let stored = self.known(&mut tx, vendor, ids).await?;
        Ok((tx, stored))
    }

    /// One attempt at writing a batch whose keys `stored` describes (locked in `tx`):
    /// decides the outcomes, writes in key order, commits. `outcomes` holds the hosts
    /// refused before writing.
    async fn write_batch(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        scope: &SyncScope,
        rows: &[(usize, Row<'_>)],
        stored: &HashMap<String, Known>,
        mut outcomes: Vec<Option<UpsertOutcome>>,
        seen: i64,
    ) -> std::result::Result<Vec<UpsertOutcome>, Attempt> {
        // Outcomes in input order, as if the hosts were written one after the other; then
        // only the last state of each key is written.
        let mut state: HashMap<&str, Option<Known>> = HashMap::with_capacity(rows.len());
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
        for (n, (i, row)) in rows.iter().enumerate() {
            let id = row.host.instance_id.as_str();
            let current = state.entry(id).or_insert_with(|| stored.get(id).cloned());
            outcomes[*i] = Some(match current {
                None => UpsertOutcome::Created,
                Some(k) if k.hash == row.hash && !k.released => UpsertOutcome::Unchanged,
                Some(_) => UpsertOutcome::Updated,
            });
            *current = Some(Known {
                hash: row.hash.clone(),
                released: false,
            });
            last.insert(id, n);
        }
        let mut to_create: Vec<&Row<'_>> = Vec::new();
        let mut to_update: Vec<&Row<'_>> = Vec::new();
        let mut to_touch: Vec<&str> = Vec::new();
        for (id, n) in &last {
            let row = &rows[*n].1;
            match stored.get(*id) {
                None => to_create.push(row),
                Some(k) if k.hash == row.hash && !k.released => to_touch.push(id),
                Some(_) => to_update.push(row),
            }
        }
        // Key order, as every writer: two writers of the same hosts wait for each other
        // instead of locking in a cycle.
        to_create.sort_unstable_by(|a, b| a.host.instance_id.cmp(&b.host.instance_id));
        to_update.sort_unstable_by(|a, b| a.host.instance_id.cmp(&b.host.instance_id));
        to_touch.sort_unstable();
        let secret_id = scope.secret_id.as_str();
        let mut failed: Vec<(&str, String)> = Vec::new();
        for (write, conflict) in [
            (&to_update, OnConflict::Update),
            // Plain inserts: a key created by another writer since the look-up fails
            // the statement, and the attempt runs again, so only one writer says created.
            (&to_create, OnConflict::Fail),
        ] {
            let refused = self
                .write_rows(&mut tx, write, secret_id, seen, conflict)
                .await?;
            failed.extend(
                refused
                    .into_iter()
                    .map(|(w, reason)| (write[w].host.instance_id.as_str(), reason)),
            );
        }
        self.touch(&mut tx, scope, &to_touch, seen).await?;
        tx.commit().await.map_err(attempt_error)?;
        let created = outcomes
            .iter()
            .filter(|o| matches!(o, Some(UpsertOutcome::Created)))
            .count() as u64;
        self.refresh_statistics(created).await;

        if !failed.is_empty() {
            // Every occurrence of a key whose write failed fails.
            let failed_ids: HashMap<&str, String> = failed.into_iter().collect();
            for (i, row) in rows {
                if let Some(reason) = failed_ids.get(row.host.instance_id.as_str()) {
                    outcomes[*i] = Some(UpsertOutcome::Failed(reason.clone()));
                }
            }
        }
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// Sets `mark` on those of `ids` that are active hosts of `scope` last seen before
    /// `seen_before` (and, for a miss, not marked yet), in key order and in statements
    /// of at most [`IDS_PER_UPDATE`] ids, each run again when it meets a concurrent
    /// writer. Returns how many were marked.
    async fn mark(
        &self,
        scope: &SyncScope,
        ids: &[String],
        seen_before: i64,
        mark: Mark,
    ) -> Result<u64> {
        if scope.resource_type != cmdb_core::ResourceType::Host || ids.is_empty() {
            return Ok(0);
        }
        let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut marked = 0;
        for chunk in ids.chunks(IDS_PER_UPDATE) {
            let mut attempt = 1;
            loop {
                let mut sql = Sql::new(self.inner.backend, "UPDATE cmdb_hosts SET ");
                match mark {
                    Mark::Released(at) => {
                        sql.push("released_at = ")
                            .bind(at)
                            .push(", missed_at = NULL");
                    }
                    Mark::Missed(at) => {
                        sql.push("missed_at = ").bind(at);
                    }
                }
                self.push_scope(&mut sql, scope);
                sql.push(" AND last_seen_at < ").bind(seen_before);
                if let Mark::Missed(_) = mark {
                    sql.push(" AND missed_at IS NULL");
                }
                sql.push(" AND instance_id IN ")
                    .bind_list(chunk.iter().copied());
                match sql.build()?.execute(self.pool()).await {
                    Ok(done) => {
                        marked += done.rows_affected();
                        break;
                    }
                    Err(e) if is_contention(&e) && attempt < WRITE_ATTEMPTS => {
                        tracing::debug!(attempt, error = %e, "update met a concurrent writer");
                        backoff(attempt).await;
                        attempt += 1;
                    }
                    Err(e) => return Err(db_error(e)),
                }
            }
        }
        Ok(marked)
    }

    /// Refreshes PostgreSQL's planner statistics each time the hosts this store created
    /// double. A table that grew from empty without `ANALYZE` (autovacuum off, or not yet
    /// run) is estimated at one row, and the planner may then scan every host of a vendor
    /// for each page's key look-up instead of probing the primary key.
    async fn refresh_statistics(&self, created: u64) {
        if self.inner.backend != Backend::Postgres || created == 0 {
            return;
        }
        let inner = &self.inner;
        let total = inner
            .created_since_analyze
            .fetch_add(created, Ordering::Relaxed)
            + created;
        let next = inner.next_analyze.load(Ordering::Relaxed);
        if total < next
            || inner
                .next_analyze
                .compare_exchange(
                    next,
                    next.saturating_mul(2),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        if let Err(e) = sqlx::raw_sql("ANALYZE cmdb_hosts")
            .execute(self.pool())
            .await
        {
            tracing::warn!(error = %e, "ANALYZE cmdb_hosts failed");
        }
    }

    /// Appends `WHERE ...` for a host query.
    fn push_filters(&self, sql: &mut Sql<'_>, q: &HostQuery) {
        sql.push(" WHERE 1 = 1");
        if let Some(v) = q.vendor {
            sql.push(" AND vendor = ").bind(v.as_str().to_owned());
        }
        if let Some(r) = &q.region {
            sql.push(" AND region = ").bind(r.clone());
        }
        if let Some(s) = &q.secret_id {
            sql.push(" AND secret_id = ").bind(s.clone());
        }
        if let Some(s) = q.status {
            sql.push(" AND status = ").bind(s.as_str().to_owned());
        }
        match q.released {
            Some(true) => {
                sql.push(" AND released_at IS NOT NULL");
            }
            Some(false) => {
                sql.push(" AND released_at IS NULL");
            }
            None => {}
        }
        if let Some(k) = q.keywords.as_deref().filter(|k| !k.is_empty()) {
            sql.push(" AND (");
            sql.contains("name_lc", &k.to_lowercase());
            sql.push(" OR ");
            sql.contains("instance_id", k);
            // IPs are joined with a separator no address contains, so a needle without
            // it matches within one address only.
            if !k.contains(IP_SEPARATOR) {
                sql.push(" OR ");
                sql.contains("ip_search", k);
            }
            sql.push(")");
        }
    }

    fn push_scope(&self, sql: &mut Sql<'_>, scope: &SyncScope) {
        sql.push(" WHERE secret_id = ")
            .bind(scope.secret_id.clone())
            .push(" AND vendor = ")
            .bind(scope.vendor.as_str().to_owned())
            .push(" AND region = ")
            .bind(scope.region.clone())
            .push(" AND released_at IS NULL");
    }
}

#[async_trait]
impl HostStore for SqlStore {
    async fn upsert(
        &self,
        scope: &SyncScope,
        hosts: &[Host],
        seen_at: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>> {
        let seen = nanos(seen_at)?;
        let mut outcomes: Vec<Option<UpsertOutcome>> = vec![None; hosts.len()];
        if hosts.iter().all(|h| scope.check_host(h).is_err()) {
            for (outcome, host) in outcomes.iter_mut().zip(hosts) {
                let reason = scope.check_host(host).err().unwrap_or_default();
                *outcome = Some(UpsertOutcome::Failed(reason));
            }
            return Ok(outcomes.into_iter().flatten().collect());
        }
        let mut ids: Vec<&str> = hosts.iter().map(|h| h.instance_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut rows: Vec<(usize, Row<'_>)> = Vec::with_capacity(hosts.len());
        let mut failed = Vec::new();
        for (i, host) in hosts.iter().enumerate() {
            match Row::new(scope, host) {
                Ok(row) => rows.push((i, row)),
                Err(reason) => failed.push((i, reason)),
            }
        }
        let mut looked_up = self.begin_known(scope.vendor, &ids).await;
        for (i, reason) in failed {
            outcomes[i] = Some(UpsertOutcome::Failed(reason));
        }
        if rows.is_empty() {
            if let Ok((tx, _)) = looked_up {
                tx.rollback().await.map_err(db_error)?;
            }
            return Ok(outcomes.into_iter().flatten().collect());
        }
        let mut attempt = 1;
        loop {
            let result = match looked_up {
                Ok((tx, stored)) => {
                    self.write_batch(tx, scope, &rows, &stored, outcomes.clone(), seen)
                        .await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(outcomes) => return Ok(outcomes),
                Err(Attempt::Retry(e)) if attempt < WRITE_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "upsert met a concurrent writer; again");
                    backoff(attempt).await;
                    attempt += 1;
                    looked_up = self.begin_known(scope.vendor, &ids).await;
                }
                Err(Attempt::Retry(e)) => {
                    return Err(db_error(e)
                        .context(format!("upsert gave up after {attempt} attempts"))
                        .with_retryable(true))
                }
                Err(Attempt::Fail(e)) => return Err(e),
            }
        }
    }

    async fn scope_stats(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
    ) -> Result<ScopeStats> {
        if scope.resource_type != cmdb_core::ResourceType::Host {
            return Ok(ScopeStats::default());
        }
        let mut sql = Sql::new(
            self.inner.backend,
            "SELECT COUNT(*), COUNT(CASE WHEN last_seen_at < ",
        );
        sql.bind(nanos(seen_before)?)
            .push(" THEN 1 END) FROM cmdb_hosts");
        self.push_scope(&mut sql, scope);
        let row = sql
            .build()?
            .fetch_one(self.pool())
            .await
            .map_err(db_error)?;
        Ok(ScopeStats {
            active: u64::try_from(int(&row, 0)?).unwrap_or_default(),
            missing: u64::try_from(int(&row, 1)?).unwrap_or_default(),
        })
    }

    async fn missing(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MissingHost>> {
        if scope.resource_type != cmdb_core::ResourceType::Host || limit == 0 {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(
            self.inner.backend,
            "SELECT instance_id, missed_at FROM cmdb_hosts",
        );
        self.push_scope(&mut sql, scope);
        sql.push(" AND last_seen_at < ").bind(nanos(seen_before)?);
        if let Some(after) = after {
            sql.push(" AND instance_id > ").bind(after.to_owned());
        }
        // Byte order on every backend (binary collations), as the ids' `str` order.
        sql.push(" ORDER BY instance_id LIMIT ")
            .bind(i64::from(limit));
        let rows = sql
            .build()?
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(MissingHost {
                    instance_id: text(row, 0)?,
                    missed_at: opt_int(row, 1)?.map(from_nanos),
                })
            })
            .collect()
    }

    async fn release(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        seen_before: DateTime<Utc>,
        released_at: DateTime<Utc>,
    ) -> Result<u64> {
        self.mark(
            scope,
            instance_ids,
            nanos(seen_before)?,
            Mark::Released(nanos(released_at)?),
        )
        .await
    }

    async fn mark_missed(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        missed_at: DateTime<Utc>,
    ) -> Result<u64> {
        let at = nanos(missed_at)?;
        self.mark(scope, instance_ids, at, Mark::Missed(at)).await
    }

    async fn try_lock_scope(&self, scope: &SyncScope) -> Result<Option<ScopeLease>> {
        crate::lock::try_lock_scope(self, scope).await
    }

    async fn get(&self, vendor: Vendor, instance_id: &str) -> Result<Option<StoredHost>> {
        let mut sql = Sql::new(
            self.inner.backend,
            &format!(
                "SELECT {} FROM cmdb_hosts WHERE vendor = ",
                select_columns()
            ),
        );
        sql.bind(vendor.as_str().to_owned())
            .push(" AND instance_id = ")
            .bind(instance_id.to_owned());
        let row = sql
            .build()?
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(decode).transpose()
    }

    async fn query(&self, query: &HostQuery) -> Result<HostList> {
        query.validate()?;
        let backend = self.inner.backend;
        let mut count = Sql::new(backend, "SELECT COUNT(*) FROM cmdb_hosts");
        self.push_filters(&mut count, query);
        let row = count
            .build()?
            .fetch_one(self.pool())
            .await
            .map_err(db_error)?;
        let total = u64::try_from(int(&row, 0)?).unwrap_or_default();

        let mut page = Sql::new(
            backend,
            &format!("SELECT {} FROM cmdb_hosts", select_columns()),
        );
        self.push_filters(&mut page, query);
        page.push(match query.sort {
            HostSort::InstanceId => " ORDER BY vendor, instance_id",
            HostSort::Name => " ORDER BY name, vendor, instance_id",
            HostSort::LastSeenDesc => " ORDER BY last_seen_at DESC, vendor, instance_id",
        });
        page.push(" LIMIT ")
            .bind(i64::from(query.page_size))
            .push(" OFFSET ")
            .bind(i64::try_from(query.offset()).unwrap_or(i64::MAX));
        let rows = page
            .build()?
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        let items = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
        Ok(HostList { total, items })
    }
}
