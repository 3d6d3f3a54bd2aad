//! A host ready to be written: checked against its columns, with the values a column
//! needs beyond the host's own fields.

use chrono::{DateTime, Utc};
use cmdb_core::{Host, SyncScope};

use crate::records::{check, check_opt, push_json, Record, SEARCH_SEPARATOR};
use crate::sql::{check_time, Sql};

/// A host ready to be written. Its own fields are bound borrowed from the host.
pub(super) struct Row<'a> {
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
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), String>,
    ) -> Result<(), String> {
        let start = self.text.len();
        write(&mut self.text)?;
        self.spans[column as usize] = (start, self.text.len());
        Ok(())
    }
}

/// Checks every field of `host` against its column.
fn check_columns(scope: &SyncScope, host: &Host, name_lc: &str) -> Result<(), String> {
    // Limits match the columns of migration 4 (0: unbounded text).
    check("instance_id", &host.instance_id, 255)?;
    check("secret_id", &scope.secret_id, 255)?;
    check("region", &host.region, 255)?;
    check_opt("zone", host.zone.as_deref(), 255)?;
    check("name", &host.name, 512)?;
    check("name", name_lc, 512)?;
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
    if let Some(t) = host.created_at {
        check_time("created_at", t)?;
    }
    if let Some(t) = host.expire_at {
        check_time("expire_at", t)?;
    }
    Ok(())
}

impl<'a> Row<'a> {
    /// The row of `host` as seen by a sync of `scope`, or why it cannot be stored. The
    /// host's `secret_id` is not used: the row is bound with the scope's.
    pub(super) fn new(scope: &SyncScope, host: &'a Host) -> Result<Row<'a>, String> {
        scope.check_host(host)?;
        let name_lc = host.name.to_lowercase();
        check_columns(scope, host, &name_lc)?;
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
                    t.push(SEARCH_SEPARATOR as u8);
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
}

impl Record for Row<'_> {
    fn instance_id(&self) -> &str {
        &self.host.instance_id
    }

    fn hash(&self) -> &str {
        &self.hash
    }

    fn bind<'q>(&'q self, sql: &mut Sql<'q>, secret_id: &'q str, seen_at: DateTime<Utc>) {
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
        sql.bind_json(self.derived(Derived::PublicIps)).push(", ");
        sql.bind_json(self.derived(Derived::PrivateIps)).push(", ");
        sql.bind(self.derived(Derived::IpSearch)).push(", ");
        sql.bind(h.pay_mode.as_str()).push(", ");
        sql.bind_opt_time(h.created_at).push(", ");
        sql.bind_opt_time(h.expire_at).push(", ");
        sql.bind_json(self.derived(Derived::Tags)).push(", ");
        sql.bind(h.vpc_id.as_deref()).push(", ");
        sql.bind_json(self.derived(Derived::SecurityGroups))
            .push(", ");
        sql.bind_json(self.derived(Derived::KeyPairs)).push(", ");
        sql.bind(h.serial_number.as_deref()).push(", ");
        sql.bind_json(self.derived(Derived::Extra)).push(", ");
        sql.bind(self.hash.as_str()).push(", ");
        sql.bind_time(seen_at).push(", ");
        sql.bind_time(seen_at).push(", ");
        sql.bind_opt_time(None).push(")");
    }
}
