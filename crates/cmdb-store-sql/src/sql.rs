//! Dialects and a small statement builder that binds parameters with each database's
//! placeholder syntax (`$n` on PostgreSQL, `?` elsewhere), and the way times and JSON
//! cross the `any` driver.
//!
//! The tables hold native types (see the migrations): times are `TIMESTAMPTZ` on
//! PostgreSQL, `DATETIME(6)` in UTC on MySQL and ISO 8601 text in UTC on SQLite; JSON is
//! `JSONB`, `JSON` and text holding JSON. The `any` driver decodes none of these native
//! types, so they cross it as text: a time is bound as text and cast in SQL
//! ([`Sql::bind_time`]) and read as text in one fixed format ([`time_column`], parsed by
//! [`time`]): `2026-12-04T05:06:07.123456Z`, six decimals, always UTC.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Utc};
use cmdb_core::{Error, Result};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, Arguments, Encode, Row, Type};

/// The database behind a [`SqlStore`](crate::SqlStore).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// SQLite (a file, or in memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

impl Backend {
    /// The backend a connection URL names, from its scheme.
    pub fn from_url(url: &str) -> Result<Backend> {
        let scheme = url
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            _ => Err(Error::invalid_field(
                "database_url",
                "must start with sqlite:, postgres://, postgresql:// or mysql://",
            )),
        }
    }

    /// The name of the backend, as in the URL scheme.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }

    /// Whether this build was compiled with the backend's cargo feature.
    pub const fn is_enabled(self) -> bool {
        match self {
            Backend::Sqlite => cfg!(feature = "sqlite"),
            Backend::Postgres => cfg!(feature = "postgres"),
            Backend::MySql => cfg!(feature = "mysql"),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SQL text with its bound arguments, which may borrow for `'q` (a `&str` bound is not
/// copied until the driver takes it).
pub(crate) struct Sql<'q> {
    backend: Backend,
    text: String,
    args: AnyArguments<'q>,
    count: usize,
    error: Option<String>,
}

impl<'q> Sql<'q> {
    pub(crate) fn new(backend: Backend, text: &str) -> Sql<'q> {
        Sql {
            backend,
            text: text.to_owned(),
            args: AnyArguments::default(),
            count: 0,
            error: None,
        }
    }

    /// Room for `text` more bytes of text and `values` more bound values.
    pub(crate) fn reserve(&mut self, text: usize, values: usize) -> &mut Sql<'q> {
        self.text.reserve(text);
        self.args.reserve(values, 0);
        self
    }

    /// Appends SQL text.
    pub(crate) fn push(&mut self, text: &str) -> &mut Sql<'q> {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(crate) fn bind<T>(&mut self, value: T) -> &mut Sql<'q>
    where
        T: Encode<'q, Any> + Type<Any> + 'q,
    {
        self.count += 1;
        match self.backend {
            Backend::Postgres => {
                let _ = write!(self.text, "${}", self.count);
            }
            Backend::Sqlite | Backend::MySql => self.text.push('?'),
        }
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert_with(|| e.to_string());
        }
        self
    }

    /// Appends `(?, ?, ...)` for a list of values; an empty list becomes `(NULL)`, which
    /// matches nothing.
    pub(crate) fn bind_list(&mut self, values: impl IntoIterator<Item = &'q str>) -> &mut Sql<'q> {
        self.push("(");
        let mut first = true;
        for v in values {
            if !first {
                self.push(", ");
            }
            first = false;
            self.bind(v);
        }
        if first {
            self.push("NULL");
        }
        self.push(")")
    }

    /// Appends a case-sensitive, literal "`column` contains `needle`" test (no LIKE, so
    /// `%` and `_` are plain characters).
    pub(crate) fn contains(&mut self, column: &str, needle: &str) -> &mut Sql<'q> {
        match self.backend {
            Backend::Sqlite => {
                self.push("instr(").push(column).push(", ");
                self.bind(needle.to_owned()).push(") > 0")
            }
            Backend::Postgres => {
                self.push("strpos(").push(column).push(", ");
                self.bind(needle.to_owned()).push(") > 0")
            }
            Backend::MySql => {
                self.push("LOCATE(");
                self.bind(needle.to_owned())
                    .push(", ")
                    .push(column)
                    .push(") > 0")
            }
        }
    }

    /// Appends a placeholder bound to the time `t`, cast to the column type (kept to the
    /// microsecond; see [`check_time`] for the years a table holds).
    pub(crate) fn bind_time(&mut self, t: DateTime<Utc>) -> &mut Sql<'q> {
        self.bind_opt_time(Some(t))
    }

    /// [`Sql::bind_time`] for a time that may be absent (NULL).
    pub(crate) fn bind_opt_time(&mut self, t: Option<DateTime<Utc>>) -> &mut Sql<'q> {
        let text = t.map(|t| match self.backend {
            // MySQL reads a DATETIME from text without the `T` and the zone.
            Backend::MySql => t.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
            Backend::Sqlite | Backend::Postgres => t.format(TIME_FORMAT).to_string(),
        });
        match self.backend {
            Backend::Sqlite => self.bind(text),
            Backend::Postgres => self.push("CAST(").bind(text).push(" AS TIMESTAMPTZ)"),
            Backend::MySql => self.push("CAST(").bind(text).push(" AS DATETIME(6))"),
        }
    }

    /// Appends a placeholder bound to JSON text, cast to `JSONB` on PostgreSQL (MySQL
    /// converts text into a `JSON` column by itself).
    pub(crate) fn bind_json(&mut self, json: &'q str) -> &mut Sql<'q> {
        match self.backend {
            Backend::Postgres => self.push("CAST(").bind(json).push(" AS JSONB)"),
            Backend::Sqlite | Backend::MySql => self.bind(json),
        }
    }

    /// The query, ready to run once (the arguments move into it).
    pub(crate) fn build(&mut self) -> Result<sqlx::query::Query<'_, Any, AnyArguments<'_>>> {
        if let Some(e) = &self.error {
            return Err(Error::store(format!("cannot bind a parameter: {e}")));
        }
        let args: AnyArguments<'_> = std::mem::take(&mut self.args);
        Ok(sqlx::query_with(self.text.as_str(), args))
    }
}

/// A text column. MySQL reports `TEXT` columns as blobs to the `any` driver, so a blob
/// holding UTF-8 is accepted too.
pub(crate) fn text(row: &AnyRow, index: usize) -> Result<String> {
    opt_text(row, index)?.ok_or_else(|| Error::decode(format!("column {index} is NULL")))
}

/// A nullable text column; see [`text`].
pub(crate) fn opt_text(row: &AnyRow, index: usize) -> Result<Option<String>> {
    match row.try_get::<Option<String>, _>(index) {
        Ok(v) => Ok(v),
        Err(first) => match row.try_get::<Option<Vec<u8>>, _>(index) {
            Ok(Some(bytes)) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|e| Error::decode(format!("column {index} is not UTF-8: {e}"))),
            Ok(None) => Ok(None),
            Err(_) => Err(Error::decode(format!("column {index}: {first}"))),
        },
    }
}

/// An integer column.
pub(crate) fn int(row: &AnyRow, index: usize) -> Result<i64> {
    row.try_get::<i64, _>(index)
        .map_err(|e| Error::decode(format!("column {index}: {e}")))
}

/// A nullable integer column.
pub(crate) fn opt_int(row: &AnyRow, index: usize) -> Result<Option<i64>> {
    row.try_get::<Option<i64>, _>(index)
        .map_err(|e| Error::decode(format!("column {index}: {e}")))
}

/// How a time is written on SQLite and read on every backend: UTC, six decimals, fixed
/// width, so that text order is time order.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// Checks that `t` fits every backend's time column: MySQL's `DATETIME` holds the years
/// 1000 to 9999, SQLite's fixed-width text four-digit years.
pub(crate) fn check_time(field: &str, t: DateTime<Utc>) -> std::result::Result<(), String> {
    if (1000..=9999).contains(&t.year()) {
        Ok(())
    } else {
        Err(format!("{field} must be between the years 1000 and 9999"))
    }
}

/// [`check_time`] as an invalid-input error.
pub(crate) fn valid_time(field: &'static str, t: DateTime<Utc>) -> Result<DateTime<Utc>> {
    check_time(field, t).map_err(|e| Error::invalid_field(field, e))?;
    Ok(t)
}

/// A select-list expression reading the time column `column` as text in the one format
/// [`time`] parses.
pub(crate) fn time_column(backend: Backend, column: &str) -> String {
    match backend {
        Backend::Sqlite => column.to_owned(),
        Backend::Postgres => {
            format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
        }
        Backend::MySql => format!("DATE_FORMAT({column}, '%Y-%m-%dT%H:%i:%s.%fZ')"),
    }
}

/// A select-list expression reading the JSON column `column` as text.
pub(crate) fn json_column(backend: Backend, column: &str) -> String {
    match backend {
        Backend::Sqlite => column.to_owned(),
        Backend::Postgres => format!("CAST({column} AS TEXT)"),
        Backend::MySql => format!("CAST({column} AS CHAR)"),
    }
}

/// A time column read with [`time_column`].
pub(crate) fn time(row: &AnyRow, index: usize) -> Result<DateTime<Utc>> {
    opt_time(row, index)?.ok_or_else(|| Error::decode(format!("column {index} is NULL")))
}

/// A nullable time column read with [`time_column`].
pub(crate) fn opt_time(row: &AnyRow, index: usize) -> Result<Option<DateTime<Utc>>> {
    opt_text(row, index)?
        .map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| Error::decode(format!("column {index}: time {s:?}: {e}")))
        })
        .transpose()
}
