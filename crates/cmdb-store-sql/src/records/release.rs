//! The records of a scope that a run did not see: counting them, listing them, marking
//! them missed, releasing them.

use chrono::{DateTime, Utc};
use cmdb_core::{MissingHost, Result, ScopeStats, SyncScope};

use super::retry::{backoff, is_contention, WRITE_ATTEMPTS};
use super::Table;
use crate::sql::{int, opt_time, text, time_column, valid_time, Sql};
use crate::store::{db_error, SqlStore};

/// Ids per `UPDATE` of a release or a miss mark: each statement locks at most this many
/// rows, so it holds its locks briefly and stays far below the parameter limits.
const IDS_PER_UPDATE: usize = 500;

/// What `release` and `mark_missed` set on the records they pick.
#[derive(Clone, Copy)]
pub(crate) enum Mark {
    /// `released_at`, clearing any miss mark.
    Released(DateTime<Utc>),
    /// `missed_at`, where none is set.
    Missed(DateTime<Utc>),
}

impl SqlStore {
    /// Appends `WHERE ...` selecting the active records of `scope`.
    fn push_scope(&self, sql: &mut Sql<'_>, scope: &SyncScope) {
        sql.push(" WHERE secret_id = ")
            .bind(scope.secret_id.clone())
            .push(" AND vendor = ")
            .bind(scope.vendor.as_str().to_owned())
            .push(" AND region = ")
            .bind(scope.region.clone())
            .push(" AND released_at IS NULL");
    }

    /// The active records of `scope` in `table`, and those last seen before
    /// `seen_before`: see [`HostStore::scope_stats`](cmdb_core::HostStore::scope_stats).
    pub(crate) async fn count_scope(
        &self,
        table: &Table,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
    ) -> Result<ScopeStats> {
        if scope.resource_type != table.resource_type {
            return Ok(ScopeStats::default());
        }
        let mut sql = Sql::new(
            self.inner.backend,
            "SELECT COUNT(*), COUNT(CASE WHEN last_seen_at < ",
        );
        sql.bind_time(valid_time("seen_before", seen_before)?)
            .push(" THEN 1 END) FROM ")
            .push(table.name);
        self.push_scope(&mut sql, scope);
        let row = sql
            .build()?
            .fetch_one(self.pool())
            .await
            .map_err(db_error)?;
        Ok(ScopeStats::new(
            u64::try_from(int(&row, 0)?).unwrap_or_default(),
            u64::try_from(int(&row, 1)?).unwrap_or_default(),
        ))
    }

    /// See [`HostStore::missing`](cmdb_core::HostStore::missing).
    pub(crate) async fn list_missing(
        &self,
        table: &Table,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MissingHost>> {
        if scope.resource_type != table.resource_type || limit == 0 {
            return Ok(Vec::new());
        }
        let backend = self.inner.backend;
        let mut sql = Sql::new(
            backend,
            &format!(
                "SELECT instance_id, {} FROM {}",
                time_column(backend, "missed_at"),
                table.name
            ),
        );
        self.push_scope(&mut sql, scope);
        sql.push(" AND last_seen_at < ")
            .bind_time(valid_time("seen_before", seen_before)?);
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
            .map(|row| Ok(MissingHost::new(text(row, 0)?, opt_time(row, 1)?)))
            .collect()
    }

    /// Sets `mark` on those of `ids` that are active records of `scope` in `table`, last
    /// seen before `seen_before` (and, for a miss, not marked yet), in key order and in
    /// statements of at most [`IDS_PER_UPDATE`] ids, each run again when it meets a
    /// concurrent writer. Returns how many were marked.
    pub(crate) async fn mark(
        &self,
        table: &Table,
        scope: &SyncScope,
        ids: &[String],
        seen_before: DateTime<Utc>,
        mark: Mark,
    ) -> Result<u64> {
        if scope.resource_type != table.resource_type || ids.is_empty() {
            return Ok(0);
        }
        valid_time("seen_before", seen_before)?;
        match mark {
            Mark::Released(at) => valid_time("released_at", at)?,
            Mark::Missed(at) => valid_time("missed_at", at)?,
        };
        let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut marked = 0;
        for chunk in ids.chunks(IDS_PER_UPDATE) {
            marked += self
                .mark_chunk(table, scope, chunk, seen_before, mark)
                .await?;
        }
        Ok(marked)
    }

    /// One statement of [`SqlStore::mark`], run again when it meets a concurrent writer.
    async fn mark_chunk(
        &self,
        table: &Table,
        scope: &SyncScope,
        ids: &[&str],
        seen_before: DateTime<Utc>,
        mark: Mark,
    ) -> Result<u64> {
        let mut attempt = 1;
        loop {
            let mut sql = Sql::new(self.inner.backend, &format!("UPDATE {} SET ", table.name));
            match mark {
                Mark::Released(at) => {
                    sql.push("released_at = ")
                        .bind_time(at)
                        .push(", missed_at = NULL");
                }
                Mark::Missed(at) => {
                    sql.push("missed_at = ").bind_time(at);
                }
            }
            self.push_scope(&mut sql, scope);
            sql.push(" AND last_seen_at < ").bind_time(seen_before);
            if let Mark::Missed(_) = mark {
                sql.push(" AND missed_at IS NULL");
            }
            sql.push(" AND instance_id IN ")
                .bind_list(ids.iter().copied());
            match sql.build()?.execute(self.pool()).await {
                Ok(done) => return Ok(done.rows_affected()),
                Err(e) if is_contention(&e) && attempt < WRITE_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "update met a concurrent writer");
                    backoff(attempt).await;
                    attempt += 1;
                }
                Err(e) => return Err(db_error(e)),
            }
        }
    }
}
