//! ListServersDetails servers -> normalized [`Host`]s.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use cmdb_core::{Host, HostStatus, OsType, PayMode, Vendor};
use serde_json::{json, Value};

use crate::model::{SecurityGroup, Server};

/// The host of `server` in `region`; `None` for a server without an id, which could not
/// be stored.
pub(crate) fn server_to_host(server: Server, region: &str) -> Option<Host> {
    let id = server.id.filter(|id| !id.trim().is_empty())?;
    let mut host = Host::new(Vendor::Huawei, id, region);
    let metadata: BTreeMap<String, String> = server
        .metadata
        .into_iter()
        .filter_map(|(k, v)| value_text(v).map(|v| (k, v)))
        .collect();
    let meta = |key: &str| metadata.get(key).filter(|v| !v.is_empty()).cloned();

    host.name = server.name.unwrap_or_default();
    host.description = non_empty(server.description);
    host.hostname = non_empty(server.hostname);
    host.zone = non_empty(server.availability_zone);
    let raw_status = server.status.unwrap_or_default();
    host.status = status(&raw_status);
    host.raw_status = raw_status;

    host.instance_type = non_empty(server.flavor.name).or(non_empty(server.flavor.id));
    host.cpu = server.flavor.vcpus.and_then(|v| u32::try_from(v).ok());
    // ListServersDetails reports `ram` in MB, which Huawei means as MiB.
    host.memory_mib = server.flavor.ram;

    host.os_name = meta("image_name");
    host.os_type = match meta("os_type").or_else(|| host.os_name.clone()) {
        Some(word) => OsType::from_vendor(&word),
        None => OsType::Other,
    };
    host.image_id = non_empty(server.image.id).or_else(|| meta("metering.image_id"));
    host.vpc_id = meta("vpc_id");
    host.pay_mode = pay_mode(meta("charging_mode").as_deref());

    for address in server.addresses.into_values().flatten().flatten() {
        let Some(addr) = non_empty(address.addr) else {
            continue;
        };
        let list = if address.kind.as_deref() == Some("floating") {
            &mut host.public_ips
        } else {
            &mut host.private_ips
        };
        if !list.contains(&addr) {
            list.push(addr);
        }
    }

    host.created_at = server
        .created
        .as_deref()
        .and_then(parse_time)
        .or_else(|| server.launched_at.as_deref().and_then(parse_time));

    // System tags first, so that a user tag of the same name wins.
    for tag in server.sys_tags.iter().chain(&server.tags) {
        if let Some((k, v)) = tag_pair(tag) {
            host.tags.insert(k, v);
        }
    }

    host.security_groups = server
        .security_groups
        .iter()
        .filter_map(|g| non_empty(g.id.clone()).or_else(|| non_empty(g.name.clone())))
        .collect();
    host.key_pairs = non_empty(server.key_name.clone()).into_iter().collect();

    let enterprise_project = non_empty(server.enterprise_project_id)
        .or_else(|| host.tags.get("_sys_enterprise_project_id").cloned());
    if let Some(ep) = enterprise_project {
        host.extra.insert("enterprise_project_id".into(), json!(ep));
    }
    if !server.security_groups.is_empty() {
        host.extra.insert(
            "security_groups".into(),
            Value::Array(server.security_groups.iter().map(group_json).collect()),
        );
    }
    if let Some(key) = non_empty(server.key_name) {
        host.extra.insert("key_name".into(), json!(key));
    }
    if let Some(fault) = server.fault.filter(|f| !f.is_null()) {
        host.extra.insert("fault".into(), fault);
    }
    if let Some(launched) = server.launched_at.as_deref().and_then(parse_time) {
        host.extra
            .insert("launched_at".into(), json!(launched.to_rfc3339()));
    }
    Some(host)
}

/// The normalization table of VENDORS.md.
pub(crate) fn status(raw: &str) -> HostStatus {
    match raw.trim().to_ascii_uppercase().as_str() {
        "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE" | "REVERT_RESIZE" | "MIGRATING" => {
            HostStatus::Pending
        }
        "ACTIVE" => HostStatus::Running,
        "SHUTOFF" => HostStatus::Stopped,
        "REBOOT" | "HARD_REBOOT" => HostStatus::Rebooting,
        "SUSPENDED" | "PAUSED" => HostStatus::Suspended,
        "ERROR" => HostStatus::Error,
        "SHELVED" | "SHELVED_OFFLOADED" => HostStatus::Shutdown,
        "DELETED" | "SOFT_DELETED" => HostStatus::Destroyed,
        _ => HostStatus::Unknown,
    }
}

/// `metadata.charging_mode`: "0" on demand, "1" prepaid, "2" spot (the words some API
/// versions use are accepted too).
pub(crate) fn pay_mode(charging_mode: Option<&str>) -> PayMode {
    match charging_mode
        .map(|m| m.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("0" | "postpaid") => PayMode::Postpaid,
        Some("1" | "prepaid") => PayMode::Prepaid,
        Some("2" | "spot") => PayMode::Spot,
        _ => PayMode::Unknown,
    }
}

/// RFC 3339, or an ISO date-time without offset (`OS-SRV-USG:launched_at`), read as UTC.
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%MZ",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .map(|t| t.and_utc())
}

/// `"k=v"` (split at the first `=`; a bare key has an empty value) or `{key, value}`.
fn tag_pair(tag: &Value) -> Option<(String, String)> {
    let (k, v) = match tag {
        Value::String(s) => match s.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (s.clone(), String::new()),
        },
        Value::Object(o) => (
            o.get("key").cloned().and_then(value_text)?,
            o.get("value")
                .cloned()
                .and_then(value_text)
                .unwrap_or_default(),
        ),
        _ => return None,
    };
    let k = k.trim().to_owned();
    (!k.is_empty()).then_some((k, v))
}

fn group_json(group: &SecurityGroup) -> Value {
    let mut o = serde_json::Map::new();
    if let Some(id) = &group.id {
        o.insert("id".into(), json!(id));
    }
    if let Some(name) = &group.name {
        o.insert("name".into(), json!(name));
    }
    Value::Object(o)
}

fn value_text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServersResponse;

    fn hosts(json: Value) -> Vec<Host> {
        let page: ServersResponse = serde_json::from_value(json).unwrap();
        page.servers
            .into_iter()
            .filter_map(|s| server_to_host(s, "cn-north-4"))
            .collect()
    }

    /// A server as ListServersDetails documents it, written for these tests.
    fn full_server() -> Value {
        json!({
            "id": "9c2b1f3e-5a77-4c0e-8f1d-0a1b2c3d4e5f",
            "name": "订单-服务-01",
            "description": "order service",
            "status": "ACTIVE",
            "created": "2024-03-05T08:09:10Z",
            "updated": "2024-03-06T00:00:00Z",
            "OS-SRV-USG:launched_at": "2024-03-05T08:09:42.123456",
            "OS-EXT-AZ:availability_zone": "cn-north-4a",
            "OS-EXT-SRV-ATTR:hostname": "order-01",
            "flavor": {"id": "s6.large.2", "name": "s6.large.2", "vcpus": "2", "ram": "4096", "disk": "0"},
            "image": {"id": "img-0001"},
            "metadata": {
                "charging_mode": "1",
                "os_type": "Linux",
                "image_name": "CentOS 7.9 64bit",
                "vpc_id": "vpc-01",
                "os_bit": "64",
                "odd": 5
            },
            "addresses": {
                "vpc-01": [
                    {"addr": "192.168.0.10", "version": "4", "OS-EXT-IPS:type": "fixed"},
                    {"addr": "121.36.0.10", "version": 4, "OS-EXT-IPS:type": "floating"},
                    {"addr": "fd00::10", "version": 6, "OS-EXT-IPS:type": "fixed"}
                ],
                "net-02": null
            },
            "tags": ["env=prod", "owner=张三", "backup", "expr=a=b"],
            "sys_tags": [{"key": "_sys_enterprise_project_id", "value": "ep-1"}],
            "security_groups": [{"id": "sg-1", "name": "default"}, {"name": "web"}],
            "key_name": "kp-ops",
            "fault": {"code": 500, "message": "host went away"},
            "locked": false,
            "an_unknown_field": {"nested": [1, 2]}
        })
    }

    #[test]
    fn a_full_server_maps_every_field() {
        let h = hosts(json!({"count": 1, "servers": [full_server()]})).remove(0);
        assert_eq!(h.vendor, Vendor::Huawei);
        assert_eq!(h.instance_id, "9c2b1f3e-5a77-4c0e-8f1d-0a1b2c3d4e5f");
        assert_eq!(h.region, "cn-north-4");
        assert_eq!(h.zone.as_deref(), Some("cn-north-4a"));
        assert_eq!(h.name, "订单-服务-01");
        assert_eq!(h.description.as_deref(), Some("order service"));
        assert_eq!(h.hostname.as_deref(), Some("order-01"));
        assert_eq!(
            (h.status, h.raw_status.as_str()),
            (HostStatus::Running, "ACTIVE")
        );
        assert_eq!(h.instance_type.as_deref(), Some("s6.large.2"));
        assert_eq!((h.cpu, h.memory_mib), (Some(2), Some(4096)));
        assert_eq!(h.os_type, OsType::Linux);
        assert_eq!(h.os_name.as_deref(), Some("CentOS 7.9 64bit"));
        assert_eq!(h.image_id.as_deref(), Some("img-0001"));
        assert_eq!(h.vpc_id.as_deref(), Some("vpc-01"));
        assert_eq!(h.pay_mode, PayMode::Prepaid);
        assert_eq!(h.public_ips, vec!["121.36.0.10"]);
        assert_eq!(h.private_ips, vec!["192.168.0.10", "fd00::10"]);
        assert_eq!(h.created_at, Some("2024-03-05T08:09:10Z".parse().unwrap()));
        assert_eq!(h.tags["env"], "prod");
        assert_eq!(h.tags["owner"], "张三");
        assert_eq!(h.tags["backup"], "");
        assert_eq!(h.tags["expr"], "a=b");
        assert_eq!(h.tags["_sys_enterprise_project_id"], "ep-1");
        assert_eq!(h.security_groups, vec!["sg-1", "web"]);
        assert_eq!(h.key_pairs, vec!["kp-ops"]);
        assert_eq!(h.extra["enterprise_project_id"], json!("ep-1"));
        assert_eq!(h.extra["key_name"], json!("kp-ops"));
        assert_eq!(h.extra["fault"]["message"], json!("host went away"));
        assert_eq!(
            h.extra["security_groups"],
            json!([{"id": "sg-1", "name": "default"}, {"name": "web"}])
        );
        assert_eq!(
            h.extra["launched_at"],
            json!("2024-03-05T08:09:42.123456+00:00")
        );
    }

    #[test]
    fn missing_and_null_fields_leave_the_host_unknown() {
        let hs = hosts(json!({
            "count": null,
            "servers": [
                {"id": "only-id"},
                {
                    "id": "all-null", "name": null, "status": null, "flavor": null, "image": null,
                    "metadata": null, "addresses": null, "tags": null, "sys_tags": null,
                    "security_groups": null, "created": null, "fault": null,
                    "OS-EXT-AZ:availability_zone": null
                },
                {"name": "no id is skipped"},
                {"id": "  "}
            ]
        }));
        assert_eq!(hs.len(), 2);
        for h in hs {
            assert_eq!(h.status, HostStatus::Unknown);
            assert_eq!(h.pay_mode, PayMode::Unknown);
            assert_eq!(h.os_type, OsType::Other);
            assert!(h.cpu.is_none() && h.memory_mib.is_none() && h.created_at.is_none());
            assert!(h.public_ips.is_empty() && h.tags.is_empty() && h.extra.is_empty());
        }
        let empty: ServersResponse = serde_json::from_value(json!({})).unwrap();
        assert!(empty.servers.is_empty() && empty.count.is_none());
    }

    #[test]
    fn numbers_where_strings_are_documented_and_the_reverse() {
        let h = hosts(json!({"count": "1", "servers": [{
            "id": 42,
            "flavor": {"vcpus": 8, "ram": 16384, "id": "c7.2xlarge.2"},
            "metadata": {"charging_mode": 2, "os_type": "Windows"},
            "OS-SRV-USG:launched_at": "2024-01-02T03:04:05"
        }]}))
        .remove(0);
        assert_eq!(h.instance_id, "42");
        assert_eq!((h.cpu, h.memory_mib), (Some(8), Some(16384)));
        assert_eq!(h.instance_type.as_deref(), Some("c7.2xlarge.2"));
        assert_eq!(h.pay_mode, PayMode::Spot);
        assert_eq!(h.os_type, OsType::Windows);
        // No `created`: the launch time, without `Z`, read as UTC.
        assert_eq!(h.created_at, Some("2024-01-02T03:04:05Z".parse().unwrap()));
    }

    #[test]
    fn every_documented_status_normalizes() {
        use HostStatus::*;
        let table = [
            ("ACTIVE", Running),
            ("BUILD", Pending),
            ("REBUILD", Pending),
            ("RESIZE", Pending),
            ("VERIFY_RESIZE", Pending),
            ("REVERT_RESIZE", Pending),
            ("MIGRATING", Pending),
            ("REBOOT", Rebooting),
            ("HARD_REBOOT", Rebooting),
            ("SHUTOFF", Stopped),
            ("ERROR", Error),
            ("DELETED", Destroyed),
            ("SOFT_DELETED", Destroyed),
            ("SHELVED", Shutdown),
            ("SUSPENDED", Suspended),
            ("PAUSED", Suspended),
            ("UNKNOWN", Unknown),
            ("SOMETHING_NEW", Unknown),
        ];
        for (raw, want) in table {
            assert_eq!(status(raw), want, "{raw}");
        }
        assert_eq!(pay_mode(Some("0")), PayMode::Postpaid);
        assert_eq!(pay_mode(Some("prePaid")), PayMode::Prepaid);
        assert_eq!(pay_mode(Some("9")), PayMode::Unknown);
        assert_eq!(pay_mode(None), PayMode::Unknown);
    }

    #[test]
    fn times_with_and_without_zone() {
        let z: DateTime<Utc> = "2018-08-13T13:46:09Z".parse().unwrap();
        assert_eq!(parse_time("2018-08-13T13:46:09Z"), Some(z));
        assert_eq!(parse_time("2018-08-13T21:46:09+08:00"), Some(z));
        assert_eq!(parse_time("2018-08-13T13:46:09.000000"), Some(z));
        assert_eq!(parse_time("2018-08-13 13:46:09"), Some(z));
        assert_eq!(parse_time(""), None);
        assert_eq!(parse_time("yesterday"), None);
    }
}
