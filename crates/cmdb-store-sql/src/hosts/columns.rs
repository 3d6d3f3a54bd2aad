//! The columns of `cmdb_hosts`, and how a row reads back into a [`StoredHost`].

use std::sync::LazyLock;

use cmdb_core::{Error, Host, Result, StoredHost};
use sqlx::any::AnyRow;

use crate::sql::{json_column, opt_int, opt_text, opt_time, text, time, time_column, Backend};

/// Columns of `cmdb_hosts` in the order rows are written and read.
pub(super) const COLUMNS: &[&str] = &[
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

/// Columns of [`COLUMNS`] holding a time.
const TIME_COLUMNS: &[&str] = &[
    "created_at",
    "expire_at",
    "first_seen_at",
    "last_seen_at",
    "released_at",
];

/// Columns of [`COLUMNS`] holding JSON.
const JSON_COLUMNS: &[&str] = &[
    "public_ips",
    "private_ips",
    "tags",
    "security_groups",
    "key_pairs",
    "extra",
];

/// `SELECT`'s list for [`COLUMNS`] on `backend`: times and JSON read as text.
pub(super) fn select_list(backend: Backend) -> &'static str {
    fn build(backend: Backend) -> String {
        COLUMNS
            .iter()
            .map(|c| {
                if TIME_COLUMNS.contains(c) {
                    time_column(backend, c)
                } else if JSON_COLUMNS.contains(c) {
                    json_column(backend, c)
                } else {
                    (*c).to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
    static LISTS: LazyLock<[String; 3]> = LazyLock::new(|| {
        [
            build(Backend::Sqlite),
            build(Backend::Postgres),
            build(Backend::MySql),
        ]
    });
    match backend {
        Backend::Sqlite => &LISTS[0],
        Backend::Postgres => &LISTS[1],
        Backend::MySql => &LISTS[2],
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(field: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::decode(format!("stored {field}: {e}")))
}

fn parse_enum<T: std::str::FromStr>(s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| Error::decode(e.to_string()))
}

fn small(field: &str, v: Option<i64>) -> Result<Option<u32>> {
    v.map(|v| u32::try_from(v).map_err(|_| Error::decode(format!("stored {field} {v}"))))
        .transpose()
}

/// A row selected with [`select_list`].
pub(super) fn decode(row: &AnyRow) -> Result<StoredHost> {
    // Columns are read in order, so a row broken in several reports the first.
    let vendor = parse_enum(&text(row, 0)?)?;
    let instance_id = text(row, 1)?;
    let secret_id = text(row, 2)?;
    let mut host = Host::new(vendor, instance_id, text(row, 3)?);
    host.secret_id = secret_id;
    host.zone = opt_text(row, 4)?;
    host.name = text(row, 5)?;
    host.description = opt_text(row, 7)?;
    host.hostname = opt_text(row, 8)?;
    host.status = parse_enum(&text(row, 9)?)?;
    host.raw_status = text(row, 10)?;
    host.instance_type = opt_text(row, 11)?;
    host.cpu = small("cpu", opt_int(row, 12)?)?;
    host.memory_mib = opt_int(row, 13)?
        .map(|v| u64::try_from(v).map_err(|_| Error::decode("stored memory_mib")))
        .transpose()?;
    host.gpu_count = small("gpu_count", opt_int(row, 14)?)?;
    host.gpu_spec = opt_text(row, 15)?;
    host.os_type = parse_enum(&text(row, 16)?)?;
    host.os_name = opt_text(row, 17)?;
    host.image_id = opt_text(row, 18)?;
    host.public_ips = parse_json("public_ips", &text(row, 19)?)?;
    host.private_ips = parse_json("private_ips", &text(row, 20)?)?;
    host.pay_mode = parse_enum(&text(row, 22)?)?;
    host.created_at = opt_time(row, 23)?;
    host.expire_at = opt_time(row, 24)?;
    host.tags = parse_json("tags", &text(row, 25)?)?;
    host.vpc_id = opt_text(row, 26)?;
    host.security_groups = parse_json("security_groups", &text(row, 27)?)?;
    host.key_pairs = parse_json("key_pairs", &text(row, 28)?)?;
    host.serial_number = opt_text(row, 29)?;
    host.extra = parse_json("extra", &text(row, 30)?)?;
    let stored = StoredHost::new(host, text(row, 31)?, time(row, 32)?, time(row, 33)?);
    Ok(stored.with_released_at(opt_time(row, 34)?))
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
            select_list(Backend::Sqlite),
            COLUMNS.join(", "),
            "SQLite reads every column as it is"
        );
    }
}
