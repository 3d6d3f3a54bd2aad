//! The upsert of a batch of records ([`HostStore::upsert`](cmdb_core::HostStore::upsert),
//! [`DatabaseStore::upsert`](cmdb_core::DatabaseStore::upsert)): one transaction per
//! attempt.
//!
//! An attempt looks up the stored hashes of the batch's keys (locking those rows on
//! PostgreSQL and MySQL), decides each record's outcome, then writes: one multi-row
//! insert-or-update of the changed records, one multi-row insert of the new ones, one
//! `UPDATE` of `last_seen_at` for the unchanged ones, every statement in key order.
//! Records that cannot be stored (outside the scope, a value too long for its column) are
//! refused before the transaction; should a multi-row statement fail anyway, the rows
//! are written again in parts so that only the failing records are lost.
//!
//! An attempt that meets a concurrent writer (deadlock, lock wait timeout, a key created
//! by another writer after this one looked it up) runs again, a bounded number of times.
//! A record is reported created only by the writer whose insert made its row.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use cmdb_core::{Result, SyncScope, UpsertOutcome, Vendor};
use sqlx::{Acquire, AnyConnection};

use super::retry::{attempt_error, backoff, is_row_error, Attempt, WRITE_ATTEMPTS};
use super::{Record, Table};
use crate::sql::{opt_int, text, valid_time, Backend, Sql};
use crate::store::{db_error, SqlStore};

/// Columns an update leaves alone: the key and the first sighting.
const KEEP_ON_UPDATE: &[&str] = &["vendor", "instance_id", "first_seen_at"];

/// Rows per multi-row statement: 35 parameters each (a host) stays well below every backend's
/// parameter limit (SQLite 32766, PostgreSQL and MySQL 65535). A page of 100 is one
/// statement, and a batch of several pages is several statements of the same text, which
/// each connection prepares once: a statement of 500 rows for each batch size cost a few
/// MB of prepared statements per connection and was no faster.
const ROWS_PER_STATEMENT: usize = 100;

/// Keys per `IN (...)` list.
const KEYS_PER_STATEMENT: usize = 1000;

/// A write transaction.
type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// The stored state of a key that decides its outcome.
#[derive(Clone)]
struct Known {
    hash: String,
    released: bool,
}

/// What a multi-row statement does with a key that exists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnConflict {
    /// Fail: the rows are new, and a key that exists now was created by another writer.
    Fail,
    /// Update the row.
    Update,
}

/// The text of `INSERT INTO table (...) VALUES ` and of the update clause that follows
/// the rows, per backend: the same for every statement of a table, built once
/// ([`Table::upsert`]).
pub(crate) struct UpsertText {
    insert: String,
    update: [String; 3],
    /// The number of columns.
    columns: usize,
}

/// The [`UpsertText`] of table `name` of `columns`.
pub(crate) fn upsert_text(name: &str, columns: &[&str]) -> UpsertText {
    let updated = || columns.iter().filter(|c| !KEEP_ON_UPDATE.contains(c));
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
        insert: format!("INSERT INTO {name} ({}) VALUES ", columns.join(", ")),
        update: [
            on_conflict.clone(),
            on_conflict,
            format!(" ON DUPLICATE KEY UPDATE {values}, missed_at = NULL"),
        ],
        columns: columns.len(),
    }
}

/// `INSERT ... VALUES (row), (row) ...` for `rows`, followed by `ON CONFLICT/DUPLICATE KEY
/// UPDATE ...` unless the rows are new.
fn upsert_statement<'q, R: Record>(
    backend: Backend,
    table: &Table,
    rows: &[&'q R],
    secret_id: &'q str,
    seen_at: DateTime<Utc>,
    conflict: OnConflict,
) -> Sql<'q> {
    let text = &*table.upsert;
    let mut sql = Sql::new(backend, &text.insert);
    // "(" and ")", and per value a placeholder (up to `$9999` on PostgreSQL), ", " and
    // for some a cast.
    let row_text = 2 + text.columns * 7 + 11 * 20;
    sql.reserve(
        rows.len() * row_text + text.update[0].len().max(text.update[2].len()),
        rows.len() * text.columns,
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

/// A batch after the checks before writing: the rows to write with their index in the
/// batch, and the outcomes known already (the refused records).
pub(crate) struct Prepared<'a, R> {
    rows: Vec<(usize, R)>,
    outcomes: Vec<Option<UpsertOutcome>>,
    /// The batch's keys, sorted, without repeats.
    ids: Vec<&'a str>,
}

impl<'a, R: Record> Prepared<'a, R> {
    /// The batch `items`, each checked and made a row by `row` (or refused with its
    /// reason); `instance_id` is an item's key.
    pub(crate) fn new<T>(
        items: &'a [T],
        instance_id: impl Fn(&'a T) -> &'a str,
        row: impl Fn(&'a T) -> Result<R, String>,
    ) -> Prepared<'a, R> {
        let mut ids: Vec<&str> = items.iter().map(&instance_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut rows = Vec::with_capacity(items.len());
        let mut outcomes = vec![None; items.len()];
        for (i, item) in items.iter().enumerate() {
            match row(item) {
                Ok(row) => rows.push((i, row)),
                Err(reason) => outcomes[i] = Some(UpsertOutcome::Failed(reason)),
            }
        }
        Prepared {
            rows,
            outcomes,
            ids,
        }
    }
}

/// The outcome of each row of a batch, and the rows to write: only the last state of
/// each key, sorted by key.
struct Plan<'r, R> {
    outcomes: Vec<Option<UpsertOutcome>>,
    to_create: Vec<&'r R>,
    to_update: Vec<&'r R>,
    to_touch: Vec<&'r str>,
}

/// Decides the outcomes in input order, as if the records were written one after the
/// other, from the stored state of their keys.
fn plan<'r, R: Record>(
    rows: &'r [(usize, R)],
    stored: &HashMap<String, Known>,
    mut outcomes: Vec<Option<UpsertOutcome>>,
) -> Plan<'r, R> {
    let mut state: HashMap<&str, Option<Known>> = HashMap::with_capacity(rows.len());
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    for (n, (i, row)) in rows.iter().enumerate() {
        let id = row.instance_id();
        let current = state.entry(id).or_insert_with(|| stored.get(id).cloned());
        outcomes[*i] = Some(match current {
            None => UpsertOutcome::Created,
            Some(k) if k.hash == row.hash() && !k.released => UpsertOutcome::Unchanged,
            Some(_) => UpsertOutcome::Updated,
        });
        *current = Some(Known {
            hash: row.hash().to_owned(),
            released: false,
        });
        last.insert(id, n);
    }
    let mut plan = Plan {
        outcomes,
        to_create: Vec::new(),
        to_update: Vec::new(),
        to_touch: Vec::new(),
    };
    for (id, n) in last {
        let row = &rows[n].1;
        match stored.get(id) {
            None => plan.to_create.push(row),
            Some(k) if k.hash == row.hash() && !k.released => plan.to_touch.push(id),
            Some(_) => plan.to_update.push(row),
        }
    }
    // Key order, as every writer: two writers of the same records wait for each other
    // instead of locking in a cycle.
    plan.to_create
        .sort_unstable_by(|a, b| a.instance_id().cmp(b.instance_id()));
    plan.to_update
        .sort_unstable_by(|a, b| a.instance_id().cmp(b.instance_id()));
    plan.to_touch.sort_unstable();
    plan
}

impl SqlStore {
    /// Writes `batch`, seen by a sync of `scope` at `seen_at`, into `table`: the
    /// outcome of every item, in input order.
    pub(crate) async fn upsert_records<R: Record>(
        &self,
        table: &Table,
        scope: &SyncScope,
        batch: Prepared<'_, R>,
        seen_at: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>> {
        let seen_at = valid_time("seen_at", seen_at)?;
        if batch.rows.is_empty() {
            return Ok(batch.outcomes.into_iter().flatten().collect());
        }
        let mut attempt = 1;
        loop {
            match self.write_attempt(table, scope, &batch, seen_at).await {
                Ok(outcomes) => return Ok(outcomes),
                Err(Attempt::Retry(e)) if attempt < WRITE_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "upsert met a concurrent writer; again");
                    backoff(attempt).await;
                    attempt += 1;
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

    /// One attempt at writing a batch: looks up (and locks) the stored state of its keys,
    /// decides the outcomes, writes in key order, commits.
    async fn write_attempt<R: Record>(
        &self,
        table: &Table,
        scope: &SyncScope,
        batch: &Prepared<'_, R>,
        seen_at: DateTime<Utc>,
    ) -> std::result::Result<Vec<UpsertOutcome>, Attempt> {
        let mut tx = self.begin().await?;
        let stored = self.known(&mut tx, table, scope.vendor, &batch.ids).await?;
        let plan = plan(&batch.rows, &stored, batch.outcomes.clone());
        let secret_id = scope.secret_id.as_str();
        let mut failed: HashMap<&str, String> = HashMap::new();
        for (write, conflict) in [
            (&plan.to_update, OnConflict::Update),
            // Plain inserts: a key created by another writer since the look-up fails
            // the statement, and the attempt runs again, so only one writer says created.
            (&plan.to_create, OnConflict::Fail),
        ] {
            let refused = self
                .write_rows(&mut tx, table, write, secret_id, seen_at, conflict)
                .await?;
            failed.extend(
                refused
                    .into_iter()
                    .map(|(w, reason)| (write[w].instance_id(), reason)),
            );
        }
        self.touch(&mut tx, table, scope, &plan.to_touch, seen_at)
            .await?;
        tx.commit().await.map_err(attempt_error)?;
        let mut outcomes = plan.outcomes;
        let created = outcomes
            .iter()
            .filter(|o| matches!(o, Some(UpsertOutcome::Created)))
            .count() as u64;
        self.refresh_statistics(table, created).await;
        // Every occurrence of a key whose write failed fails.
        for (i, row) in &batch.rows {
            if let Some(reason) = failed.get(row.instance_id()) {
                outcomes[*i] = Some(UpsertOutcome::Failed(reason.clone()));
            }
        }
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// The stored hash and release state of `ids` of `vendor` (sorted), whose rows stay
    /// locked until the transaction ends (SQLite's immediate transaction locks the whole
    /// database): what decides the outcomes cannot change before they are written.
    async fn known(
        &self,
        conn: &mut AnyConnection,
        table: &Table,
        vendor: Vendor,
        ids: &[&str],
    ) -> std::result::Result<HashMap<String, Known>, Attempt> {
        let backend = self.inner.backend;
        let mut known = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(KEYS_PER_STATEMENT) {
            let mut sql = Sql::new(
                backend,
                &format!(
                    "SELECT instance_id, content_hash, \
                     CASE WHEN released_at IS NULL THEN 0 ELSE 1 END \
                     FROM {} WHERE vendor = ",
                    table.name
                ),
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
                        released: opt_int(&row, 2)? == Some(1),
                    },
                );
            }
        }
        Ok(known)
    }

    /// Writes `rows` with multi-row statements, all in one savepoint; on a database error
    /// about a row the savepoint is rolled back and the rows are written again in parts
    /// ([`SqlStore::write_rows_in_parts`]). Returns the failures by row index. Contention
    /// ends the attempt at once.
    async fn write_rows<R: Record>(
        &self,
        tx: &mut Tx,
        table: &Table,
        rows: &[&R],
        secret_id: &str,
        seen_at: DateTime<Utc>,
        conflict: OnConflict,
    ) -> std::result::Result<HashMap<usize, String>, Attempt> {
        if rows.is_empty() {
            return Ok(HashMap::new());
        }
        let backend = self.inner.backend;
        let mut sp = tx.begin().await.map_err(attempt_error)?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut sql = upsert_statement(backend, table, chunk, secret_id, seen_at, conflict);
            match sql.build()?.execute(&mut *sp).await {
                Ok(_) => {}
                Err(e) if is_row_error(&e) => {
                    sp.rollback().await.map_err(attempt_error)?;
                    tracing::debug!(error = %e, "multi-row upsert failed; retrying in parts");
                    return self
                        .write_rows_in_parts(tx, table, rows, secret_id, seen_at, conflict)
                        .await;
                }
                Err(e) => return Err(attempt_error(e)),
            }
        }
        sp.commit().await.map_err(attempt_error)?;
        Ok(HashMap::new())
    }

    /// Writes `rows` a statement at a time, each in a savepoint, and the rows of a
    /// statement that fails one by one. Returns the failures by row index.
    async fn write_rows_in_parts<R: Record>(
        &self,
        tx: &mut Tx,
        table: &Table,
        rows: &[&R],
        secret_id: &str,
        seen_at: DateTime<Utc>,
        conflict: OnConflict,
    ) -> std::result::Result<HashMap<usize, String>, Attempt> {
        let backend = self.inner.backend;
        let mut failed = HashMap::new();
        for (chunk_index, chunk) in rows.chunks(ROWS_PER_STATEMENT).enumerate() {
            let mut sp = tx.begin().await.map_err(attempt_error)?;
            let mut sql = upsert_statement(backend, table, chunk, secret_id, seen_at, conflict);
            match sql.build()?.execute(&mut *sp).await {
                Ok(_) => {
                    sp.commit().await.map_err(attempt_error)?;
                    continue;
                }
                Err(e) if is_row_error(&e) => sp.rollback().await.map_err(attempt_error)?,
                Err(e) => return Err(attempt_error(e)),
            }
            for (i, row) in chunk.iter().enumerate() {
                let mut sp = tx.begin().await.map_err(attempt_error)?;
                let mut sql =
                    upsert_statement(backend, table, &[*row], secret_id, seen_at, conflict);
                match sql.build()?.execute(&mut *sp).await {
                    Ok(_) => sp.commit().await.map_err(attempt_error)?,
                    Err(e) if is_row_error(&e) => {
                        sp.rollback().await.map_err(attempt_error)?;
                        failed.insert(
                            chunk_index * ROWS_PER_STATEMENT + i,
                            format!("database refused the record: {e}"),
                        );
                    }
                    Err(e) => return Err(attempt_error(e)),
                }
            }
        }
        Ok(failed)
    }

    /// Moves `last_seen_at` (and the secret that saw them) of unchanged records, and
    /// clears their miss marks.
    async fn touch(
        &self,
        conn: &mut AnyConnection,
        table: &Table,
        scope: &SyncScope,
        ids: &[&str],
        seen_at: DateTime<Utc>,
    ) -> std::result::Result<(), Attempt> {
        for chunk in ids.chunks(KEYS_PER_STATEMENT) {
            let mut sql = Sql::new(
                self.inner.backend,
                &format!("UPDATE {} SET last_seen_at = ", table.name),
            );
            sql.bind_time(seen_at)
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

    /// Refreshes PostgreSQL's planner statistics of `table` each time the rows this store
    /// created in it double. A table that grew from empty without `ANALYZE` (autovacuum
    /// off, or not yet run) is estimated at one row, and the planner may then scan every
    /// record of a vendor for each page's key look-up instead of probing the primary key.
    async fn refresh_statistics(&self, table: &Table, created: u64) {
        if self.inner.backend != Backend::Postgres || created == 0 {
            return;
        }
        let inner = (table.statistics)(&self.inner);
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
        let analyze = format!("ANALYZE {}", table.name);
        if let Err(e) = sqlx::raw_sql(&analyze).execute(self.pool()).await {
            tracing::warn!(error = %e, table = table.name, "ANALYZE failed");
        }
    }
}
