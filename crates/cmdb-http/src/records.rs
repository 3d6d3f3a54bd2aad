//! One decode policy for every provider: the records of a page are decoded and mapped one
//! by one, and a record that does not fit the schema or cannot be mapped becomes a
//! [`FailedRecord`] (its id when readable, and why), never a host silently skipped nor the
//! end of the whole page. The sync reports it as a failed detail and makes the run
//! incomplete, so nothing is released on such a listing.

use std::collections::BTreeMap;

use cmdb_core::{FailedRecord, Result};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::classify::decode_json;

/// Decodes each of `records` (kept raw by the page's DTO: `Vec<&RawValue>`) as `T` and maps
/// it with `map` to a record of the normalized model (a [`Host`](cmdb_core::Host), a
/// [`Database`](cmdb_core::Database)). `what` names the call in failure reasons (`"DescribeInstances"`),
/// `id_key` the member that holds a record's id (`"InstanceId"`, `"id"`).
///
/// ```
/// use cmdb_core::{Host, Vendor};
/// use cmdb_http::map_records;
/// use serde_json::value::RawValue;
///
/// #[derive(serde::Deserialize)]
/// struct Instance {
///     #[serde(rename = "InstanceId")]
///     id: String,
///     #[serde(rename = "Cpu", default)]
///     cpu: u32,
/// }
/// let page: Vec<&RawValue> =
///     serde_json::from_str(r#"[{"InstanceId": "i-1", "Cpu": 2}, {"InstanceId": "i-2", "Cpu": "two"}]"#)
///         .unwrap();
/// let (hosts, failed) = map_records("DescribeInstances", &page, "InstanceId", |i: Instance| {
///     let mut host = Host::new(Vendor::Aliyun, i.id, "cn-hangzhou");
///     host.cpu = Some(i.cpu);
///     Ok(host)
/// });
/// assert_eq!(hosts.len(), 1);
/// assert_eq!(failed[0].instance_id.as_deref(), Some("i-2"));
/// assert!(failed[0].reason.contains("field `Cpu`"), "{}", failed[0].reason);
/// ```
pub fn map_records<'a, T, R, F>(
    what: &str,
    records: &[&'a RawValue],
    id_key: &str,
    mut map: F,
) -> (Vec<R>, Vec<FailedRecord>)
where
    T: Deserialize<'a>,
    F: FnMut(T) -> Result<R>,
{
    let mut mapped = Vec::with_capacity(records.len());
    let mut failed = Vec::new();
    for (index, raw) in records.iter().enumerate() {
        let raw: &'a RawValue = raw;
        match decode_json::<T>(raw.get().as_bytes()).and_then(&mut map) {
            Ok(record) => mapped.push(record),
            Err(e) => {
                let id = record_id(raw, id_key);
                let named = match &id {
                    Some(id) => format!("record {index} ({id_key} {id:?})"),
                    None => format!("record {index} (no {id_key})"),
                };
                failed.push(FailedRecord::new(
                    id,
                    format!("{what}: {named}: {}", e.message()),
                ));
            }
        }
    }
    (mapped, failed)
}

/// The string member `id_key` of a record that failed, when it has one.
fn record_id(raw: &RawValue, id_key: &str) -> Option<String> {
    // Members kept raw: a record that fails elsewhere (a number out of range, say) still
    // names itself.
    let members: BTreeMap<String, &RawValue> = serde_json::from_str(raw.get()).ok()?;
    let id: String = serde_json::from_str(members.get(id_key)?.get()).ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use cmdb_core::{Host, Vendor};

    use super::*;

    #[derive(Deserialize)]
    struct Record<'a> {
        #[serde(borrow)]
        id: crate::JsonText<'a>,
        #[serde(default)]
        size: u64,
    }

    fn map(r: Record<'_>) -> Result<Host> {
        if r.size > 10 {
            return Err(cmdb_core::Error::decode("size is too large"));
        }
        Ok(Host::new(Vendor::Huawei, r.id.into_string(), "r"))
    }

    #[test]
    fn every_record_is_a_host_or_a_failed_record() {
        let page: Vec<&RawValue> = serde_json::from_str(
            r#"[{"id": "a", "size": 1}, {"id": "b", "size": "x"}, {"size": 2},
                {"id": "c", "size": 11}, 7, {"id": " ", "size": []}, {"id": "d\u0021"}]"#,
        )
        .unwrap();
        let (hosts, failed) = map_records("ListServersDetails", &page, "id", map);
        let ids: Vec<&str> = hosts.iter().map(|h| h.instance_id.as_str()).collect();
        assert_eq!(ids, ["a", "d!"]);
        let failed: Vec<(Option<&str>, &str)> = failed
            .iter()
            .map(|f| (f.instance_id.as_deref(), f.reason.as_str()))
            .collect();
        assert_eq!(failed.len(), 5, "{failed:?}");
        assert_eq!(failed[0].0, Some("b"));
        assert!(failed[0]
            .1
            .starts_with("ListServersDetails: record 1 (id \"b\"): field `size`"));
        assert_eq!(failed[1].0, None);
        assert!(failed[1].1.contains("record 2 (no id)"), "{}", failed[1].1);
        assert_eq!(
            failed[2],
            (
                Some("c"),
                "ListServersDetails: record 3 (id \"c\"): size is too large"
            )
        );
        assert_eq!(failed[3].0, None);
        assert_eq!(failed[4].0, None);
    }

    #[test]
    fn reasons_are_bounded() {
        let long = "x".repeat(5000);
        let text = format!(r#"[{{"id": "a", "size": "{long}"}}]"#);
        let page: Vec<&RawValue> = serde_json::from_str(&text).unwrap();
        let (_, failed) = map_records("L", &page, "id", map);
        assert!(failed[0].reason.len() < 400, "{}", failed[0].reason.len());
    }
}
