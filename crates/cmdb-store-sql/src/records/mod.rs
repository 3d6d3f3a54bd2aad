//! What the tables of synced records (`cmdb_hosts`, `cmdb_databases`) share: each is
//! keyed by `(vendor, instance_id)` and has the scope's columns (`secret_id`, `region`),
//! a lowercased name for keywords (`name_lc`), a column of addresses a keyword is looked
//! for in (one per line), and the sync's bookkeeping (`content_hash`, `first_seen_at`,
//! `last_seen_at`, `released_at`, `missed_at`). A [`Table`] describes one; the store
//! methods of every resource type run the same statements on it.
//!
//! - [`upsert`]: the write of a batch, one transaction per attempt.
//! - [`release`]: the records a run did not see (counted, listed, marked, released).
//! - [`retry`]: what to do when writers of the same records meet.
//! - here: the table description, the checks of a value against its column, and reading
//!   (one record by key, a filtered, sorted page with the total).

pub(crate) mod release;
pub(crate) mod retry;
pub(crate) mod upsert;

use std::sync::atomic::AtomicU64;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use cmdb_core::{Error, ResourceType, Result, Vendor};
use sqlx::any::AnyRow;

use crate::sql::{json_column, time_column, Backend, Sql};
use crate::store::{db_error, Inner, SqlStore};

/// A table of synced records.
pub(crate) struct Table {
    /// Its name.
    pub(crate) name: &'static str,
    /// The resource type its records are; the scope methods answer nothing for a scope
    /// of another.
    pub(crate) resource_type: ResourceType,
    /// The column of addresses a keyword is looked for in, joined by [`SEARCH_SEPARATOR`].
    pub(crate) search_column: &'static str,
    /// The `SELECT` list of its columns per backend, in the order rows are written and
    /// read (the bookkeeping columns end it: `content_hash, first_seen_at, last_seen_at,
    /// released_at`; `missed_at` is never written by an upsert, only cleared): times and
    /// JSON read as text.
    pub(crate) select: LazyLock<[String; 3]>,
    /// The statements of an upsert, per backend.
    pub(crate) upsert: LazyLock<upsert::UpsertText>,
    /// The store's count of rows created since PostgreSQL's statistics of the table were
    /// last refreshed.
    pub(crate) statistics: fn(&Inner) -> &Statistics,
}

impl Table {
    /// `SELECT`'s list of the columns on `backend`.
    pub(crate) fn select_list(&self, backend: Backend) -> &str {
        match backend {
            Backend::Sqlite => &self.select[0],
            Backend::Postgres => &self.select[1],
            Backend::MySql => &self.select[2],
        }
    }
}

/// The `SELECT` lists of `columns` on SQLite, PostgreSQL and MySQL, for
/// [`Table::select`]: the time columns and JSON columns read as text.
pub(crate) fn select_lists(
    columns: &[&str],
    time_columns: &[&str],
    json_columns: &[&str],
) -> [String; 3] {
    let build = |backend: Backend| {
        columns
            .iter()
            .map(|c| {
                if time_columns.contains(c) {
                    time_column(backend, c)
                } else if json_columns.contains(c) {
                    json_column(backend, c)
                } else {
                    (*c).to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    [
        build(Backend::Sqlite),
        build(Backend::Postgres),
        build(Backend::MySql),
    ]
}

/// Rows a store created in a table since it last refreshed PostgreSQL's statistics of
/// it, and the count that triggers the next refresh (doubling each time).
#[derive(Debug)]
pub(crate) struct Statistics {
    pub(crate) created_since_analyze: AtomicU64,
    pub(crate) next_analyze: AtomicU64,
}

impl Default for Statistics {
    fn default() -> Self {
        Statistics {
            created_since_analyze: AtomicU64::new(0),
            next_analyze: AtomicU64::new(1000),
        }
    }
}

/// Separates the addresses in a table's search column: no address contains it.
pub(crate) const SEARCH_SEPARATOR: char = '\n';

/// A record ready to be written: checked against its columns.
pub(crate) trait Record: Sync {
    /// The key's instance id.
    fn instance_id(&self) -> &str;
    /// The content hash.
    fn hash(&self) -> &str;
    /// Binds the row's values `(...)` in the order of its table's columns, with `secret_id` and
    /// the bookkeeping of a row first seen at `seen_at`, borrowed: the driver copies
    /// them once.
    fn bind<'q>(&'q self, sql: &mut Sql<'q>, secret_id: &'q str, seen_at: DateTime<Utc>);
}

/// Checks a value against its column's limit (in characters; 0: unbounded text) and
/// against NUL, which PostgreSQL refuses in text.
pub(crate) fn check(field: &str, value: &str, max_chars: usize) -> Result<(), String> {
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

/// [`check`] for a value that may be absent.
pub(crate) fn check_opt(field: &str, value: Option<&str>, max: usize) -> Result<(), String> {
    value.map_or(Ok(()), |v| check(field, v, max))
}

/// Appends `value` as JSON to `text`.
pub(crate) fn push_json<T: serde::Serialize + ?Sized>(
    text: &mut Vec<u8>,
    value: &T,
) -> Result<(), String> {
    serde_json::to_writer(text, value).map_err(|e| format!("cannot encode as JSON: {e}"))
}

/// A stored JSON column.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(field: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::decode(format!("stored {field}: {e}")))
}

/// A stored enum's name.
pub(crate) fn parse_enum<T: std::str::FromStr>(s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| Error::decode(e.to_string()))
}

/// A stored count that fits a `u32`.
pub(crate) fn small(field: &str, v: Option<i64>) -> Result<Option<u32>> {
    v.map(|v| u32::try_from(v).map_err(|_| Error::decode(format!("stored {field} {v}"))))
        .transpose()
}

/// A stored size that fits a `u64`.
pub(crate) fn size(field: &str, v: Option<i64>) -> Result<Option<u64>> {
    v.map(|v| u64::try_from(v).map_err(|_| Error::decode(format!("stored {field} {v}"))))
        .transpose()
}

/// The filters of a query of a table, whatever the resource type.
#[derive(Default)]
pub(crate) struct Filters<'a> {
    pub(crate) vendor: Option<Vendor>,
    pub(crate) region: Option<&'a str>,
    pub(crate) secret_id: Option<&'a str>,
    /// The status's stored name.
    pub(crate) status: Option<&'static str>,
    pub(crate) released: Option<bool>,
    /// Looked for in the name (ignoring case), the instance id and the search column.
    pub(crate) keywords: Option<&'a str>,
}

/// The orders of a query of a table.
#[derive(Clone, Copy)]
pub(crate) enum Order {
    /// By vendor, then instance id.
    InstanceId,
    /// By name, then vendor and instance id.
    Name,
    /// Most recently seen first, then vendor and instance id.
    LastSeenDesc,
}

impl Order {
    fn clause(self) -> &'static str {
        match self {
            Order::InstanceId => " ORDER BY vendor, instance_id",
            Order::Name => " ORDER BY name, vendor, instance_id",
            Order::LastSeenDesc => " ORDER BY last_seen_at DESC, vendor, instance_id",
        }
    }
}

/// Appends `WHERE ...` for `filters` on `table`.
fn push_filters(sql: &mut Sql<'_>, table: &Table, f: &Filters<'_>) {
    sql.push(" WHERE 1 = 1");
    if let Some(v) = f.vendor {
        sql.push(" AND vendor = ").bind(v.as_str().to_owned());
    }
    if let Some(r) = f.region {
        sql.push(" AND region = ").bind(r.to_owned());
    }
    if let Some(s) = f.secret_id {
        sql.push(" AND secret_id = ").bind(s.to_owned());
    }
    if let Some(s) = f.status {
        sql.push(" AND status = ").bind(s.to_owned());
    }
    match f.released {
        Some(true) => {
            sql.push(" AND released_at IS NOT NULL");
        }
        Some(false) => {
            sql.push(" AND released_at IS NULL");
        }
        None => {}
    }
    if let Some(k) = f.keywords.filter(|k| !k.is_empty()) {
        sql.push(" AND (");
        sql.contains("name_lc", &k.to_lowercase());
        sql.push(" OR ");
        sql.contains("instance_id", k);
        // Addresses are joined with a separator no address contains, so a needle
        // without it matches within one address only.
        if !k.contains(SEARCH_SEPARATOR) {
            sql.push(" OR ");
            sql.contains(table.search_column, k);
        }
        sql.push(")");
    }
}

impl SqlStore {
    /// The row of `table` keyed by `(vendor, instance_id)`, selected with
    /// [`Table::select_list`].
    pub(crate) async fn get_record(
        &self,
        table: &Table,
        vendor: Vendor,
        instance_id: &str,
    ) -> Result<Option<AnyRow>> {
        let backend = self.inner.backend;
        let mut sql = Sql::new(
            backend,
            &format!(
                "SELECT {} FROM {} WHERE vendor = ",
                table.select_list(backend),
                table.name
            ),
        );
        sql.bind(vendor.as_str().to_owned())
            .push(" AND instance_id = ")
            .bind(instance_id.to_owned());
        sql.build()?
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)
    }

    /// The number of rows of `table` passing `filters`, and `page_size` of them from
    /// `offset` in `order`, selected with [`Table::select_list`].
    pub(crate) async fn query_records(
        &self,
        table: &Table,
        filters: &Filters<'_>,
        order: Order,
        page_size: u32,
        offset: u64,
    ) -> Result<(u64, Vec<AnyRow>)> {
        let backend = self.inner.backend;
        let mut count = Sql::new(backend, &format!("SELECT COUNT(*) FROM {}", table.name));
        push_filters(&mut count, table, filters);
        let total = self.count(count).await?;

        let mut page = Sql::new(
            backend,
            &format!("SELECT {} FROM {}", table.select_list(backend), table.name),
        );
        push_filters(&mut page, table, filters);
        page.push(order.clause());
        let rows = self.fetch_page(page, page_size, offset).await?;
        Ok((total, rows))
    }
}
