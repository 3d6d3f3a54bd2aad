//! [`RunStore`] for [`SqlStore`]: sync runs in `cmdb_runs`, one row per run; the failed
//! details and the error are JSON.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cmdb_core::{
    Error, ErrorKind, ErrorReport, Result, RunCounters, RunList, RunQuery, RunState, RunStore,
    SyncDetail, SyncRun, SyncScope, MAX_RUN_FAILED_DETAILS,
};
use sqlx::any::AnyRow;

use crate::sql::{int, json_column, opt_int, opt_text, opt_time, text, time, time_column};
use crate::sql::{valid_time, Backend, Sql};
use crate::store::{db_error, SqlStore};

/// The columns of `cmdb_runs` as written, in the order [`decode`] reads them.
const COLUMNS: &str = "id, secret_id, vendor, region, resource_type, run_trigger, state, \
     pages, hosts_seen, hosts_stored, hosts_failed, hosts_created, hosts_updated, \
     hosts_unchanged, hosts_released, expected_total, failed_details, error_report, \
     created_at, started_at, finished_at, runner, parent_id";

/// [`COLUMNS`] as selected on `backend`: times and JSON read as text.
fn select_list(backend: Backend) -> String {
    format!(
        "id, secret_id, vendor, region, resource_type, run_trigger, state, pages, \
         hosts_seen, hosts_stored, hosts_failed, hosts_created, hosts_updated, \
         hosts_unchanged, hosts_released, expected_total, {}, {}, {}, {}, {}, runner, parent_id",
        json_column(backend, "failed_details"),
        json_column(backend, "error_report"),
        time_column(backend, "created_at"),
        time_column(backend, "started_at"),
        time_column(backend, "finished_at"),
    )
}

/// A counter as a column holds it (a count never reaches `i64::MAX`).
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn counter(row: &AnyRow, index: usize) -> Result<u64> {
    u64::try_from(int(row, index)?)
        .map_err(|_| Error::decode(format!("column {index}: a negative count")))
}

fn parse<T: std::str::FromStr>(row: &AnyRow, index: usize) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text(row, index)?
        .parse()
        .map_err(|e: T::Err| Error::decode(e.to_string()))
}

fn decode(row: &AnyRow) -> Result<SyncRun> {
    let id = text(row, 0)?;
    let scope = SyncScope::new(text(row, 1)?, parse(row, 2)?, text(row, 3)?, parse(row, 4)?);
    let trigger = parse(row, 5)?;
    let state: RunState = parse(row, 6)?;
    let mut counters = RunCounters::new();
    counters.pages = counter(row, 7)?;
    counters.seen = counter(row, 8)?;
    counters.stored = counter(row, 9)?;
    counters.failed = counter(row, 10)?;
    counters.created = counter(row, 11)?;
    counters.updated = counter(row, 12)?;
    counters.unchanged = counter(row, 13)?;
    counters.released = counter(row, 14)?;
    counters.expected_total = opt_int(row, 15)?.and_then(|n| u64::try_from(n).ok());
    let failed_details: Vec<SyncDetail> = serde_json::from_str(&text(row, 16)?)
        .map_err(|e| Error::decode(format!("stored failed_details: {e}")))?;
    let error: Option<ErrorReport> = opt_text(row, 17)?
        .map(|json| serde_json::from_str(&json))
        .transpose()
        .map_err(|e| Error::decode(format!("stored error_report: {e}")))?;
    let mut run = SyncRun::new(id, &scope, trigger, time(row, 18)?)
        .with_state(state)
        .with_counters(counters)
        .with_error(error)
        .with_started_at(opt_time(row, 19)?)
        .with_finished_at(opt_time(row, 20)?)
        .with_runner(opt_text(row, 21)?)
        .with_parent_id(opt_text(row, 22)?);
    // As stored: the store kept the failed ones, up to the cap, when they were written.
    run.failed_details = failed_details;
    Ok(run)
}

/// The failed details a run keeps, as JSON text.
fn failed_json(run: &SyncRun) -> Result<String> {
    let kept: Vec<&SyncDetail> = run
        .failed_details
        .iter()
        .filter(|d| !d.is_success)
        .take(MAX_RUN_FAILED_DETAILS)
        .collect();
    serde_json::to_string(&kept)
        .map_err(|e| Error::store(format!("cannot encode failed_details: {e}")))
}

fn error_json(error: Option<&ErrorReport>) -> Result<Option<String>> {
    error
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Error::store(format!("cannot encode error_report: {e}")))
}

fn valid_opt_time(field: &'static str, t: Option<DateTime<Utc>>) -> Result<Option<DateTime<Utc>>> {
    t.map(|t| valid_time(field, t)).transpose()
}

/// Appends `pages = ?, hosts_seen = ?, ...` for the counters `c`.
fn push_counters(sql: &mut Sql<'_>, c: &RunCounters) {
    sql.push("pages = ")
        .bind(count(c.pages))
        .push(", hosts_seen = ")
        .bind(count(c.seen))
        .push(", hosts_stored = ")
        .bind(count(c.stored))
        .push(", hosts_failed = ")
        .bind(count(c.failed))
        .push(", hosts_created = ")
        .bind(count(c.created))
        .push(", hosts_updated = ")
        .bind(count(c.updated))
        .push(", hosts_unchanged = ")
        .bind(count(c.unchanged))
        .push(", hosts_released = ")
        .bind(count(c.released))
        .push(", expected_total = ")
        .bind(c.expected_total.map(count));
}

/// Appends `WHERE ...` for a run query.
fn push_filters(sql: &mut Sql<'_>, q: &RunQuery) {
    sql.push(" WHERE 1 = 1");
    if let Some(s) = &q.secret_id {
        sql.push(" AND secret_id = ").bind(s.clone());
    }
    if let Some(s) = q.state {
        sql.push(" AND state = ").bind(s.as_str().to_owned());
    }
    if let Some(r) = &q.region {
        sql.push(" AND region = ").bind(r.clone());
    }
    if let Some(p) = &q.parent_id {
        sql.push(" AND parent_id = ").bind(p.clone());
    }
}

impl SqlStore {
    /// The state of the run `id`, if there is one.
    async fn run_state(&self, id: &str) -> Result<Option<RunState>> {
        let mut sql = Sql::new(
            self.inner.backend,
            "SELECT state FROM cmdb_runs WHERE id = ",
        );
        sql.bind(id.to_owned());
        let row = sql
            .build()?
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.map(|r| parse(&r, 0)).transpose()
    }
}

#[async_trait]
impl RunStore for SqlStore {
    async fn insert_run(&self, run: &SyncRun) -> Result<()> {
        let failed = failed_json(run)?;
        let error = error_json(run.error.as_ref())?;
        let c = &run.counters;
        let mut sql = Sql::new(
            self.inner.backend,
            &format!("INSERT INTO cmdb_runs ({COLUMNS}) VALUES ("),
        );
        sql.bind(run.id.clone())
            .push(", ")
            .bind(run.secret_id.clone())
            .push(", ")
            .bind(run.vendor.as_str().to_owned())
            .push(", ")
            .bind(run.region.clone())
            .push(", ")
            .bind(run.resource_type.as_str().to_owned())
            .push(", ")
            .bind(run.trigger.as_str().to_owned())
            .push(", ")
            .bind(run.state.as_str().to_owned());
        for n in [
            c.pages,
            c.seen,
            c.stored,
            c.failed,
            c.created,
            c.updated,
            c.unchanged,
            c.released,
        ] {
            sql.push(", ").bind(count(n));
        }
        sql.push(", ")
            .bind(c.expected_total.map(count))
            .push(", ")
            .bind_json(&failed)
            .push(", ");
        match &error {
            Some(json) => sql.bind_json(json),
            None => sql.push("NULL"),
        };
        sql.push(", ")
            .bind_time(valid_time("created_at", run.created_at)?)
            .push(", ")
            .bind_opt_time(valid_opt_time("started_at", run.started_at)?)
            .push(", ")
            .bind_opt_time(valid_opt_time("finished_at", run.finished_at)?)
            .push(", ")
            .bind(run.runner.clone())
            .push(", ")
            .bind(run.parent_id.clone())
            .push(")");
        match sql.build()?.execute(self.pool()).await.map_err(db_error) {
            Err(e) if e.kind() == ErrorKind::Conflict => Err(Error::new(
                ErrorKind::Conflict,
                format!("a run with id {:?} already exists", run.id),
            )),
            other => other.map(drop),
        }
    }

    async fn update_run_progress(&self, id: &str, counters: &RunCounters) -> Result<bool> {
        let mut sql = Sql::new(self.inner.backend, "UPDATE cmdb_runs SET ");
        push_counters(&mut sql, counters);
        sql.push(" WHERE id = ")
            .bind(id.to_owned())
            .push(" AND state = ")
            .bind(RunState::Running.as_str().to_owned());
        let done = sql.build()?.execute(self.pool()).await.map_err(db_error)?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        // MySQL counts only the rows it changed: the same counters again change none.
        Ok(self.run_state(id).await? == Some(RunState::Running))
    }

    async fn finish_run(&self, run: &SyncRun) -> Result<()> {
        let failed = failed_json(run)?;
        let error = error_json(run.error.as_ref())?;
        let mut sql = Sql::new(self.inner.backend, "UPDATE cmdb_runs SET state = ");
        sql.bind(run.state.as_str().to_owned()).push(", ");
        push_counters(&mut sql, &run.counters);
        sql.push(", failed_details = ")
            .bind_json(&failed)
            .push(", error_report = ");
        match &error {
            Some(json) => sql.bind_json(json),
            None => sql.push("NULL"),
        };
        sql.push(", finished_at = ")
            .bind_opt_time(valid_opt_time("finished_at", run.finished_at)?)
            .push(" WHERE id = ")
            .bind(run.id.clone());
        let done = sql.build()?.execute(self.pool()).await.map_err(db_error)?;
        // MySQL counts only changed rows: an end written twice changes none.
        if done.rows_affected() == 0 && self.run_state(&run.id).await?.is_none() {
            return Err(Error::not_found(format!("run {:?} not found", run.id)));
        }
        Ok(())
    }

    async fn get_run(&self, id: &str) -> Result<Option<SyncRun>> {
        let backend = self.inner.backend;
        let mut sql = Sql::new(
            backend,
            &format!("SELECT {} FROM cmdb_runs WHERE id = ", select_list(backend)),
        );
        sql.bind(id.to_owned());
        let row = sql
            .build()?
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(decode).transpose()
    }

    async fn list_runs(&self, query: &RunQuery) -> Result<RunList> {
        query.validate()?;
        let backend = self.inner.backend;
        let mut total = Sql::new(backend, "SELECT COUNT(*) FROM cmdb_runs");
        push_filters(&mut total, query);
        let total = self.count(total).await?;
        let mut page = Sql::new(
            backend,
            &format!("SELECT {} FROM cmdb_runs", select_list(backend)),
        );
        push_filters(&mut page, query);
        page.push(" ORDER BY created_at DESC, id DESC");
        let rows = self
            .fetch_page(page, query.page_size, query.offset())
            .await?;
        let items = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
        Ok(RunList::new(total, items))
    }

    async fn mark_run_interrupted(
        &self,
        id: &str,
        error: &ErrorReport,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let error = error_json(Some(error))?.unwrap_or_default();
        let mut sql = Sql::new(self.inner.backend, "UPDATE cmdb_runs SET state = ");
        sql.bind(RunState::Interrupted.as_str().to_owned())
            .push(", error_report = ")
            .bind_json(&error)
            .push(", finished_at = ")
            .bind_time(valid_time("finished_at", at)?)
            .push(" WHERE id = ")
            .bind(id.to_owned())
            .push(" AND state = ")
            .bind(RunState::Running.as_str().to_owned());
        let done = sql.build()?.execute(self.pool()).await.map_err(db_error)?;
        // The state changes, so even MySQL counts the row.
        Ok(done.rows_affected() > 0)
    }

    async fn prune_runs(&self, finished_before: DateTime<Utc>) -> Result<u64> {
        let mut sql = Sql::new(self.inner.backend, "DELETE FROM cmdb_runs WHERE state IN ");
        let finished: Vec<&str> = RunState::ALL
            .iter()
            .filter(|s| s.is_finished())
            .map(|s| s.as_str())
            .collect();
        sql.bind_list(finished)
            .push(" AND finished_at < ")
            .bind_time(valid_time("finished_before", finished_before)?);
        let done = sql.build()?.execute(self.pool()).await.map_err(db_error)?;
        Ok(done.rows_affected())
    }
}
