//! [`DatabaseStore`] for [`SqlStore`]: the table `cmdb_databases` (migration 9), on the
//! statements every table of records shares ([`crate::records`]). This module holds
//! what is its own: its columns, how a [`Database`] is checked and bound for writing,
//! and how a row reads back.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cmdb_core::{
    Database, DatabaseEngine, DatabaseList, DatabaseQuery, DatabaseSort, DatabaseStore, Error,
    MissingHost, ResourceType, Result, ScopeStats, StoredDatabase, SyncScope, UpsertOutcome,
    Vendor,
};
use sqlx::any::AnyRow;

use crate::records::release::Mark;
use crate::records::upsert::{upsert_text, Prepared};
use crate::records::{
    check, check_opt, parse_enum, parse_json, select_lists, size, small, Filters, Order, Record,
    Table, SEARCH_SEPARATOR,
};
use crate::sql::{check_time, opt_int, opt_text, opt_time, text, time, Sql};
use crate::store::SqlStore;

/// The table of database instances.
static DATABASES: Table = Table {
    name: "cmdb_databases",
    resource_type: ResourceType::Rds,
    search_column: "endpoint_search",
    select: LazyLock::new(|| select_lists(COLUMNS, TIME_COLUMNS, JSON_COLUMNS)),
    upsert: LazyLock::new(|| upsert_text("cmdb_databases", COLUMNS)),
    statistics: |inner| &inner.database_statistics,
};

/// Columns of `cmdb_databases` in the order rows are written and read.
const COLUMNS: &[&str] = &[
    "vendor",
    "instance_id",
    "secret_id",
    "region",
    "zone",
    "name",
    "name_lc",
    "engine",
    "engine_version",
    "status",
    "raw_status",
    "instance_class",
    "cpu",
    "memory_mib",
    "storage_gb",
    "storage_type",
    "endpoints",
    "endpoint_search",
    "vpc_id",
    "pay_mode",
    "created_at",
    "expire_at",
    "tags",
    "extra",
    "content_hash",
    "first_seen_at",
    "last_seen_at",
    "released_at",
];

/// Columns of [`COLUMNS`] holding a time.
const TIME_COLUMNS: &[&str] = &[
    "created_at",
    "expire_at",
    "first_seen_at",
    "last_seen_at",
    "released_at",
];

/// Columns of [`COLUMNS`] holding JSON.
const JSON_COLUMNS: &[&str] = &["endpoints", "tags", "extra"];

/// A database instance ready to be written: checked against its columns, with the
/// values a column needs beyond the instance's own fields.
struct Row<'a> {
    database: &'a Database,
    hash: String,
    name_lc: String,
    /// The endpoints' hosts, one a line, for keywords.
    endpoint_search: String,
    endpoints: String,
    tags: String,
    extra: String,
}

/// Checks every field of `db` against its column (limits of migration 9; 0: unbounded).
fn check_columns(scope: &SyncScope, db: &Database, name_lc: &str) -> Result<(), String> {
    check("instance_id", &db.instance_id, 255)?;
    check("secret_id", &scope.secret_id, 255)?;
    check("region", &db.region, 255)?;
    check_opt("zone", db.zone.as_deref(), 255)?;
    check("name", &db.name, 512)?;
    check("name", name_lc, 512)?;
    check("engine", db.engine.as_str(), 255)?;
    check_opt("engine_version", db.engine_version.as_deref(), 255)?;
    check("raw_status", &db.raw_status, 255)?;
    check_opt("instance_class", db.instance_class.as_deref(), 255)?;
    check_opt("storage_type", db.storage_type.as_deref(), 255)?;
    check_opt("vpc_id", db.vpc_id.as_deref(), 255)?;
    for e in &db.endpoints {
        check("endpoint host", &e.host, 0)?;
    }
    for (field, value) in [("memory_mib", db.memory_mib), ("storage_gb", db.storage_gb)] {
        if value.is_some_and(|v| i64::try_from(v).is_err()) {
            return Err(format!("{field} is too large"));
        }
    }
    if let Some(t) = db.created_at {
        check_time("created_at", t)?;
    }
    if let Some(t) = db.expire_at {
        check_time("expire_at", t)?;
    }
    Ok(())
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("cannot encode as JSON: {e}"))
}

impl<'a> Row<'a> {
    /// The row of `db` as seen by a sync of `scope`, or why it cannot be stored. The
    /// instance's `secret_id` is not used: the row is bound with the scope's.
    fn new(scope: &SyncScope, db: &'a Database) -> Result<Row<'a>, String> {
        scope.check_database(db)?;
        let name_lc = db.name.to_lowercase();
        check_columns(scope, db, &name_lc)?;
        let hosts: Vec<&str> = db.endpoints.iter().map(|e| e.host.as_str()).collect();
        Ok(Row {
            database: db,
            hash: db.content_hash(),
            name_lc,
            endpoint_search: hosts.join(&SEARCH_SEPARATOR.to_string()),
            endpoints: json(&db.endpoints)?,
            tags: json(&db.tags)?,
            extra: json(&db.extra)?,
        })
    }
}

impl Record for Row<'_> {
    fn instance_id(&self) -> &str {
        &self.database.instance_id
    }

    fn hash(&self) -> &str {
        &self.hash
    }

    fn bind<'q>(&'q self, sql: &mut Sql<'q>, secret_id: &'q str, seen_at: DateTime<Utc>) {
        let d = self.database;
        let int = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        sql.push("(");
        sql.bind(d.vendor.as_str()).push(", ");
        sql.bind(d.instance_id.as_str()).push(", ");
        sql.bind(secret_id).push(", ");
        sql.bind(d.region.as_str()).push(", ");
        sql.bind(d.zone.as_deref()).push(", ");
        sql.bind(d.name.as_str()).push(", ");
        sql.bind(self.name_lc.as_str()).push(", ");
        sql.bind(d.engine.as_str()).push(", ");
        sql.bind(d.engine_version.as_deref()).push(", ");
        sql.bind(d.status.as_str()).push(", ");
        sql.bind(d.raw_status.as_str()).push(", ");
        sql.bind(d.instance_class.as_deref()).push(", ");
        sql.bind(int(d.cpu.map(u64::from))).push(", ");
        sql.bind(int(d.memory_mib)).push(", ");
        sql.bind(int(d.storage_gb)).push(", ");
        sql.bind(d.storage_type.as_deref()).push(", ");
        sql.bind_json(&self.endpoints).push(", ");
        sql.bind(self.endpoint_search.as_str()).push(", ");
        sql.bind(d.vpc_id.as_deref()).push(", ");
        sql.bind(d.pay_mode.as_str()).push(", ");
        sql.bind_opt_time(d.created_at).push(", ");
        sql.bind_opt_time(d.expire_at).push(", ");
        sql.bind_json(&self.tags).push(", ");
        sql.bind_json(&self.extra).push(", ");
        sql.bind(self.hash.as_str()).push(", ");
        sql.bind_time(seen_at).push(", ");
        sql.bind_time(seen_at).push(", ");
        sql.bind_opt_time(None).push(")");
    }
}

/// A row selected with [`Table::select_list`] of [`DATABASES`].
fn decode(row: &AnyRow) -> Result<StoredDatabase> {
    // Columns are read in order, so a row broken in several reports the first.
    let vendor = parse_enum(&text(row, 0)?)?;
    let instance_id = text(row, 1)?;
    let secret_id = text(row, 2)?;
    let mut db = Database::new(vendor, instance_id, text(row, 3)?).with_secret_id(secret_id);
    db.zone = opt_text(row, 4)?;
    db.name = text(row, 5)?;
    db.engine = DatabaseEngine::from_vendor(&text(row, 7)?);
    db.engine_version = opt_text(row, 8)?;
    db.status = parse_enum(&text(row, 9)?)?;
    db.raw_status = text(row, 10)?;
    db.instance_class = opt_text(row, 11)?;
    db.cpu = small("cpu", opt_int(row, 12)?)?;
    db.memory_mib = size("memory_mib", opt_int(row, 13)?)?;
    db.storage_gb = size("storage_gb", opt_int(row, 14)?)?;
    db.storage_type = opt_text(row, 15)?;
    db.endpoints = parse_json("endpoints", &text(row, 16)?)?;
    db.vpc_id = opt_text(row, 18)?;
    db.pay_mode = parse_enum(&text(row, 19)?)?;
    db.created_at = opt_time(row, 20)?;
    db.expire_at = opt_time(row, 21)?;
    db.tags = parse_json("tags", &text(row, 22)?)?;
    db.extra = parse_json("extra", &text(row, 23)?)?;
    let stored = StoredDatabase::new(db, text(row, 24)?, time(row, 25)?, time(row, 26)?);
    Ok(stored.with_released_at(opt_time(row, 27)?))
}

#[async_trait]
impl DatabaseStore for SqlStore {
    async fn upsert(
        &self,
        scope: &SyncScope,
        databases: &[Database],
        seen_at: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>> {
        let batch = Prepared::new(
            databases,
            |d| d.instance_id.as_str(),
            |d| Row::new(scope, d),
        );
        self.upsert_records(&DATABASES, scope, batch, seen_at).await
    }

    async fn scope_stats(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
    ) -> Result<ScopeStats> {
        self.count_scope(&DATABASES, scope, seen_before).await
    }

    async fn missing(
        &self,
        scope: &SyncScope,
        seen_before: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MissingHost>> {
        self.list_missing(&DATABASES, scope, seen_before, after, limit)
            .await
    }

    async fn release(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        seen_before: DateTime<Utc>,
        released_at: DateTime<Utc>,
    ) -> Result<u64> {
        let mark = Mark::Released(released_at);
        self.mark(&DATABASES, scope, instance_ids, seen_before, mark)
            .await
    }

    async fn mark_missed(
        &self,
        scope: &SyncScope,
        instance_ids: &[String],
        missed_at: DateTime<Utc>,
    ) -> Result<u64> {
        let mark = Mark::Missed(missed_at);
        self.mark(&DATABASES, scope, instance_ids, missed_at, mark)
            .await
    }

    async fn get(&self, vendor: Vendor, instance_id: &str) -> Result<Option<StoredDatabase>> {
        let row = self.get_record(&DATABASES, vendor, instance_id).await?;
        row.as_ref().map(decode).transpose()
    }

    async fn query(&self, query: &DatabaseQuery) -> Result<DatabaseList> {
        query.validate()?;
        let order = match query.sort {
            DatabaseSort::InstanceId => Order::InstanceId,
            DatabaseSort::Name => Order::Name,
            DatabaseSort::LastSeenDesc => Order::LastSeenDesc,
            // A sort newer than this store: refuse it rather than answer in another order.
            other => {
                return Err(Error::invalid_field(
                    "sort",
                    format!("{other:?} is not supported by the SQL store"),
                ))
            }
        };
        let filters = Filters {
            vendor: query.vendor,
            region: query.region.as_deref(),
            secret_id: query.secret_id.as_deref(),
            status: query.status.map(|s| s.as_str()),
            released: query.released,
            keywords: query.keywords.as_deref(),
        };
        let (total, rows) = self
            .query_records(&DATABASES, &filters, order, query.page_size, query.offset())
            .await?;
        let items = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
        Ok(DatabaseList::new(total, items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_time_and_json_column_is_a_column() {
        for c in TIME_COLUMNS.iter().chain(JSON_COLUMNS) {
            assert!(COLUMNS.contains(c), "{c}");
        }
        assert_eq!(
            DATABASES.select_list(crate::sql::Backend::Sqlite),
            COLUMNS.join(", "),
            "SQLite reads every column as it is"
        );
    }
}
