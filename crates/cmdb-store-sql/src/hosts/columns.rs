//! The columns of `cmdb_hosts`, and how a row reads back into a [`StoredHost`].

use std::sync::LazyLock;

use cmdb_core::{Host, ResourceType, Result, StoredHost};
use sqlx::any::AnyRow;

use crate::records::{parse_enum, parse_json, select_lists, size, small, upsert, Table};
use crate::sql::{opt_int, opt_text, opt_time, text, time};

/// The table of hosts.
pub(super) static HOSTS: Table = Table {
    name: "cmdb_hosts",
    resource_type: ResourceType::Host,
    search_column: "ip_search",
    select: LazyLock::new(|| select_lists(COLUMNS, TIME_COLUMNS, JSON_COLUMNS)),
    upsert: LazyLock::new(|| upsert::upsert_text("cmdb_hosts", COLUMNS)),
    statistics: |inner| &inner.host_statistics,
};

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

/// A row selected with [`Table::select_list`] of [`HOSTS`].
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
    host.memory_mib = size("memory_mib", opt_int(row, 13)?)?;
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
            HOSTS.select_list(crate::sql::Backend::Sqlite),
            COLUMNS.join(", "),
            "SQLite reads every column as it is"
        );
    }
}
