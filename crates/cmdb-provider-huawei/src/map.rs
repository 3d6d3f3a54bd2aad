//! ListServersDetails servers -> normalized [`Host`]s.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use cmdb_core::{
    Database, DatabaseEndpoint, DatabaseEngine, DatabaseStatus, Error, Host, HostStatus, OsType,
    PayMode, Result, Vendor,
};
use cmdb_http::TimeFormats;
use serde_json::{Map, Value};

use crate::model::{DbInstance, SecurityGroup, Server};

/// The host of `server` in `region`; an error for a server without an id, which could
/// not be stored.
pub(crate) fn server_to_host(server: Server, region: &str) -> Result<Host> {
    let name = server.name.unwrap_or_default();
    let Some(id) = non_blank(server.id) else {
        return Err(Error::decode(format!(
            "the server (name {name:?}) has no id"
        )));
    };
    let mut host = Host::new(Vendor::Huawei, id, region);
    host.name = name;
    host.description = non_blank(server.description);
    host.hostname = non_blank(server.hostname);
    host.zone = non_blank(server.availability_zone);
    host.raw_status = server.status.unwrap_or_default();
    host.status = status(&host.raw_status);

    let flavor = server.flavor;
    host.instance_type = non_blank(flavor.name).or_else(|| non_blank(flavor.id));
    host.cpu = flavor.vcpus.and_then(|v| u32::try_from(v).ok());
    // ListServersDetails reports `ram` in MB, which Huawei means as MiB.
    host.memory_mib = flavor.ram;

    let metadata = &server.metadata;
    host.os_name = meta(metadata, "image_name");
    host.os_type = match meta(metadata, "os_type").or_else(|| host.os_name.clone()) {
        Some(word) => OsType::from_vendor(&word),
        None => OsType::Other,
    };
    host.image_id = non_blank(server.image.id).or_else(|| meta(metadata, "metering.image_id"));
    host.vpc_id = meta(metadata, "vpc_id");
    host.pay_mode = pay_mode(meta(metadata, "charging_mode").as_deref());

    for address in server.addresses.into_values().flatten().flatten() {
        let Some(addr) = non_blank(address.addr) else {
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

    let launched = server.launched_at.as_deref().and_then(parse_time);
    host.created_at = server.created.as_deref().and_then(parse_time).or(launched);

    // Only the user's tags: users filter and own machines by them. System tags (set by
    // the cloud, `_sys_*`) go to `extra`, the enterprise project to its own field.
    for tag in &server.tags {
        if let Some((k, v)) = tag_pair(tag) {
            host.tags.insert(k, v);
        }
    }
    let mut sys_tags: BTreeMap<String, String> =
        server.sys_tags.iter().filter_map(tag_pair).collect();

    let groups = &server.security_groups;
    host.security_groups = groups
        .iter()
        .filter_map(|g| non_blank(g.id.clone()).or_else(|| non_blank(g.name.clone())))
        .collect();
    let key_name = non_blank(server.key_name);
    host.key_pairs = key_name.iter().cloned().collect();

    let tagged_project = sys_tags.remove("_sys_enterprise_project_id");
    let enterprise_project = non_blank(server.enterprise_project_id)
        .or_else(|| tagged_project.and_then(|p| non_blank(Some(p))));
    if let Some(ep) = enterprise_project {
        host.extra
            .insert("enterprise_project_id".into(), Value::String(ep));
    }
    if !sys_tags.is_empty() {
        host.extra.insert(
            "sys_tags".into(),
            Value::Object(
                sys_tags
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            ),
        );
    }
    if !groups.is_empty() {
        host.extra.insert(
            "security_groups".into(),
            Value::Array(groups.iter().map(group_json).collect()),
        );
    }
    if let Some(key) = key_name {
        host.extra.insert("key_name".into(), Value::String(key));
    }
    if let Some(fault) = server.fault.filter(|f| !f.is_null()) {
        host.extra.insert("fault".into(), fault);
    }
    if let Some(launched) = launched {
        host.extra
            .insert("launched_at".into(), Value::String(launched.to_rfc3339()));
    }
    Ok(host)
}

/// MiB per GB: RDS reports `mem` in GB.
const MIB_PER_GB: f64 = 1024.0;

/// The normalized status of an RDS instance, as [`DatabaseStatus`] documents it (in any
/// case, spaces around ignored).
pub(crate) fn database_status(raw: &str) -> DatabaseStatus {
    match raw.trim().to_ascii_uppercase().as_str() {
        "BUILD" => DatabaseStatus::Creating,
        "ACTIVE" => DatabaseStatus::Running,
        "MODIFYING"
        | "MODIFYING INSTANCE TYPE"
        | "MODIFYING DATABASE PORT"
        | "SWITCHOVER"
        | "MIGRATING" => DatabaseStatus::Modifying,
        "REBOOTING" => DatabaseStatus::Rebooting,
        "RESTORING" => DatabaseStatus::Restoring,
        "BACKING UP" => DatabaseStatus::BackingUp,
        "STORAGE FULL" => DatabaseStatus::StorageFull,
        "FROZEN" => DatabaseStatus::Isolated,
        "FAILED" => DatabaseStatus::Error,
        _ => DatabaseStatus::Unknown,
    }
}

/// An RDS time, `2018-08-20T02:33:49+0800` (an offset without a colon), or RFC 3339, as
/// UTC. Blank is `None`.
fn rds_time(id: &str, field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z"))
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| {
            Error::decode(format!(
                "instance {id}: field `{field}` {text:?} is not a time such as \
                 \"2018-08-20T02:33:49+0800\""
            ))
        })
}

/// Maps one RDS instance of `region` to a [`Database`].
///
/// `cpu` and `mem` are strings (`mem` in GB, stored as MiB); the endpoints are every
/// `private_ips` and `public_ips` address with the instance's `port`; the zone is the
/// primary node's; times carry their `+0800` offset and are converted to UTC. `extra`
/// keeps the role (`type`: Single and Ha are primaries, Replica read-only), the primary's
/// id (`related_instance` of type `replica_of`), `type`, `subnet_id`,
/// `security_group_id`, `enterprise_project_id` and `time_zone`.
pub(crate) fn db_instance_to_database(instance: DbInstance, region: &str) -> Result<Database> {
    let Some(id) = non_blank(instance.id).map(|id| id.trim().to_owned()) else {
        return Err(Error::decode("field `id` is missing or empty"));
    };
    let bad = |field: &str, value: &str| {
        Error::decode(format!(
            "instance {id}: field `{field}` {value:?} is not a number"
        ))
    };
    let cpu = match non_blank(instance.cpu) {
        None => None,
        Some(cpu) => Some(cpu.trim().parse::<u32>().map_err(|_| bad("cpu", &cpu))?),
    };
    let memory_mib = match non_blank(instance.mem) {
        None => None,
        Some(mem) => {
            let gb = mem
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|gb| gb.is_finite() && *gb >= 0.0)
                .ok_or_else(|| bad("mem", &mem))?;
            // `as` saturates; a size in GB fits comfortably.
            Some((gb * MIB_PER_GB).round() as u64)
        }
    };
    let created_at = rds_time(&id, "created", instance.created.as_deref())?;
    let expire_at = rds_time(&id, "expiration_time", instance.expiration_time.as_deref())?;
    let port = match instance.port {
        None => None,
        Some(port) => Some(u16::try_from(port).map_err(|_| bad("port", &port.to_string()))?),
    };

    let mut db = Database::new(Vendor::Huawei, id, region);
    db.name = instance.name.unwrap_or_default();
    let primary = instance
        .nodes
        .iter()
        .find(|n| n.role.as_deref() == Some("master"))
        .or_else(|| instance.nodes.first());
    db.zone = primary.and_then(|n| non_blank(n.availability_zone.clone()));
    db.engine = DatabaseEngine::from_vendor(instance.datastore.kind.as_deref().unwrap_or_default());
    db.engine_version = non_blank(instance.datastore.version);
    let raw_status = instance.status.unwrap_or_default();
    db.status = database_status(&raw_status);
    db.raw_status = raw_status;
    db.instance_class = non_blank(instance.flavor_ref);
    db.cpu = cpu;
    db.memory_mib = memory_mib;
    db.storage_gb = instance.volume.size;
    db.storage_type = non_blank(instance.volume.kind);
    for ip in instance
        .private_ips
        .into_iter()
        .filter_map(|ip| non_blank(Some(ip)))
    {
        db.endpoints.push(DatabaseEndpoint::private(ip, port));
    }
    for ip in instance
        .public_ips
        .into_iter()
        .filter_map(|ip| non_blank(Some(ip)))
    {
        db.endpoints.push(DatabaseEndpoint::public(ip, port));
    }
    db.vpc_id = non_blank(instance.vpc_id);
    db.pay_mode = match instance.charge_info.charge_mode.as_deref().map(str::trim) {
        Some(mode) if mode.eq_ignore_ascii_case("prePaid") => PayMode::Prepaid,
        Some(mode) if mode.eq_ignore_ascii_case("postPaid") => PayMode::Postpaid,
        _ => PayMode::Unknown,
    };
    db.created_at = created_at;
    db.expire_at = expire_at;
    db.tags = instance.tags.iter().filter_map(tag_pair).collect();

    let kind = non_blank(instance.kind);
    let role = match kind.as_deref().map(str::trim) {
        Some(k) if k.eq_ignore_ascii_case("Single") || k.eq_ignore_ascii_case("Ha") => {
            Some("primary")
        }
        Some(k) if k.eq_ignore_ascii_case("Replica") => Some("readonly"),
        _ => None,
    };
    if let Some(role) = role {
        db.extra.insert("role".into(), Value::String(role.into()));
    }
    let primary_id = instance
        .related_instance
        .into_iter()
        .find(|r| r.kind.as_deref() == Some("replica_of"))
        .and_then(|r| non_blank(r.id));
    if let Some(primary_id) = primary_id {
        db.extra
            .insert("primary_instance_id".into(), Value::String(primary_id));
    }
    let mut keep = |key: &str, value: Option<String>| {
        if let Some(v) = non_blank(value) {
            db.extra.insert(key.into(), Value::String(v));
        }
    };
    keep("type", kind);
    keep("subnet_id", instance.subnet_id);
    keep("security_group_id", instance.security_group_id);
    keep("enterprise_project_id", instance.enterprise_project_id);
    keep("time_zone", instance.time_zone);
    Ok(db)
}

/// The string, unless absent or blank; not trimmed.
fn non_blank(text: Option<String>) -> Option<String> {
    text.filter(|s| !s.trim().is_empty())
}

/// `null` as absent, a string as itself, anything else as its JSON text.
fn json_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The metadata entry `key` as text ([`json_text`]), when it is not empty.
fn meta(metadata: &Map<String, Value>, key: &str) -> Option<String> {
    metadata
        .get(key)
        .and_then(json_text)
        .filter(|v| !v.is_empty())
}

/// The normalization table of VENDORS.md (statuses in any case, spaces around ignored).
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
/// versions use are accepted too, in any case; spaces around are ignored).
pub(crate) fn pay_mode(charging_mode: Option<&str>) -> PayMode {
    let Some(mode) = charging_mode.map(str::trim) else {
        return PayMode::Unknown;
    };
    let is = |word: &str| mode.eq_ignore_ascii_case(word);
    if mode == "0" || is("postpaid") {
        PayMode::Postpaid
    } else if mode == "1" || is("prepaid") {
        PayMode::Prepaid
    } else if mode == "2" || is("spot") {
        PayMode::Spot
    } else {
        PayMode::Unknown
    }
}

/// The ISO date-times without offset that `launched_at` comes in.
static NAIVE_FORMATS: LazyLock<TimeFormats> = LazyLock::new(|| {
    TimeFormats::new(&[
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%MZ",
    ])
});

/// RFC 3339, or an ISO date-time without offset (`OS-SRV-USG:launched_at`), read as UTC.
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NAIVE_FORMATS.parse_utc(text)
}

/// `"k=v"` (split at the first `=`; a bare key has an empty value) or `{key, value}`
/// (each as [`json_text`]); the key trimmed, the value as it is.
fn tag_pair(tag: &Value) -> Option<(String, String)> {
    let (k, v) = match tag {
        Value::String(s) => {
            let (k, v) = s.split_once('=').unwrap_or((s, ""));
            (k.to_owned(), v.to_owned())
        }
        Value::Object(o) => (
            json_text(o.get("key")?)?,
            o.get("value").and_then(json_text).unwrap_or_default(),
        ),
        _ => return None,
    };
    let k = k.trim();
    (!k.is_empty()).then(|| (k.to_owned(), v))
}

/// `{id, name}` of a group, each only when given (blank or not).
fn group_json(group: &SecurityGroup) -> Value {
    let mut o = Map::new();
    for (key, text) in [("id", &group.id), ("name", &group.name)] {
        if let Some(v) = text {
            o.insert(key.into(), Value::String(v.clone()));
        }
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::ServersResponse;

    fn hosts(json: Value) -> Vec<Host> {
        let text = json.to_string();
        let page: ServersResponse<'_> = serde_json::from_str(&text).unwrap();
        page.servers
            .iter()
            .filter_map(|s| {
                server_to_host(serde_json::from_str(s.get()).unwrap(), "cn-north-4").ok()
            })
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
            "sys_tags": [
                {"key": "_sys_enterprise_project_id", "value": "ep-1"},
                {"key": "_sys_other", "value": "x"}
            ],
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
        assert_eq!(
            h.tags.len(),
            4,
            "system tags are not the user's: {:?}",
            h.tags
        );
        assert_eq!(h.extra["sys_tags"], json!({"_sys_other": "x"}));
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
        let empty: ServersResponse<'_> = serde_json::from_str("{}").unwrap();
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
        assert_eq!(
            parse_time(" 2018-08-13T13:46Z "),
            Some(z - chrono::Duration::seconds(9))
        );
        assert_eq!(parse_time("2018-08-13   13:46:09"), Some(z));
        assert_eq!(parse_time("2018-08-13T13:46:09x"), None);
    }

    #[test]
    fn statuses_and_pay_modes_in_any_case_with_spaces_around() {
        assert_eq!(status(" active\t"), HostStatus::Running);
        assert_eq!(status("Shelved_Offloaded"), HostStatus::Shutdown);
        assert_eq!(status(" SHELVED_OFFLOADED "), HostStatus::Shutdown);
        // Longer than any status of the table, or not ASCII: unknown.
        assert_eq!(status("SHELVED_OFFLOADEDX"), HostStatus::Unknown);
        assert_eq!(status("ACTİVE"), HostStatus::Unknown);
        assert_eq!(status("ａctive"), HostStatus::Unknown);
        assert_eq!(status(""), HostStatus::Unknown);
        assert_eq!(pay_mode(Some(" PostPaid ")), PayMode::Postpaid);
        assert_eq!(pay_mode(Some(" 2\n")), PayMode::Spot);
        assert_eq!(pay_mode(Some("SPOT")), PayMode::Spot);
        assert_eq!(pay_mode(Some("02")), PayMode::Unknown);
        assert_eq!(pay_mode(Some("")), PayMode::Unknown);
    }

    #[test]
    fn tags_split_at_the_first_equals_sign_and_trim_the_key_only() {
        let owned = |k: &str, v: &str| Some((k.to_owned(), v.to_owned()));
        assert_eq!(tag_pair(&json!(" k = v ")), owned("k", " v "));
        assert_eq!(tag_pair(&json!("k")), owned("k", ""));
        assert_eq!(tag_pair(&json!("a=b=c")), owned("a", "b=c"));
        assert_eq!(tag_pair(&json!(" =v")), None);
        let pair = tag_pair(&json!({"key": " k ", "value": " v "}));
        assert_eq!(pair, owned("k", " v "));
        assert_eq!(tag_pair(&json!({"key": "k"})), owned("k", ""));
        assert_eq!(
            tag_pair(&json!({"key": "k", "value": null})),
            owned("k", "")
        );
        assert_eq!(tag_pair(&json!({"key": null, "value": "v"})), None);
        assert_eq!(tag_pair(&json!({"value": "v"})), None);
        let pair = tag_pair(&json!({"key": {"x": 1}, "value": 1, "other": []}));
        assert_eq!(pair, owned(r#"{"x":1}"#, "1"));
        for other in [json!(5), json!(null), json!(true), json!(["x=y"])] {
            assert_eq!(tag_pair(&other), None, "{other}");
        }
    }

    #[test]
    fn text_is_kept_as_it_is_unless_blank_and_values_read_as_their_json_text() {
        let text = |s: &str| non_blank(Some(s.to_owned()));
        assert_eq!(text(" a ").as_deref(), Some(" a "));
        assert_eq!(text(" \u{3000}\t"), None);
        assert_eq!(text(""), None);
        assert_eq!(non_blank(None), None);

        assert_eq!(json_text(&json!([1, "x"])).as_deref(), Some(r#"[1,"x"]"#));
        let object = json_text(&json!({"b": 1, "a": 2}));
        assert_eq!(object.as_deref(), Some(r#"{"a":2,"b":1}"#));
        assert_eq!(json_text(&json!(true)).as_deref(), Some("true"));
        assert_eq!(json_text(&json!(2.5)).as_deref(), Some("2.5"));
        assert_eq!(json_text(&json!(" s ")).as_deref(), Some(" s "));
        assert_eq!(json_text(&json!(null)), None);

        let metadata = json!({"a": "", "b": null, "c": 0, "d": "x"});
        let metadata = metadata.as_object().unwrap();
        let got: Vec<_> = ["a", "b", "c", "d", "e"].map(|k| meta(metadata, k)).into();
        assert_eq!(got, [None, None, Some("0".into()), Some("x".into()), None]);
    }

    #[test]
    fn non_string_metadata_and_tags_read_as_their_json_text() {
        let h = hosts(json!({"servers": [{
            "id": "s-1",
            "status": " shutoff ",
            "metadata": {"charging_mode": 1, "os_type": {"name": "Windows"}, "image_name": null,
                         "vpc_id": "", "metering.image_id": "img-meta"},
            "image": {"id": "  "},
            "tags": [{"key": 7, "value": [true]}, {"key": "k", "value": null}, 5, null, ["x=y"]],
            "security_groups": [{"id": " ", "name": ""}, {}],
            "addresses": {"b": [{"addr": "10.0.0.2"}], "a": [{"addr": "10.0.0.1"}, {"addr": "10.0.0.2"}]}
        }]}))
        .remove(0);
        assert_eq!(h.status, HostStatus::Stopped);
        assert_eq!(h.raw_status, " shutoff ");
        assert_eq!(h.pay_mode, PayMode::Prepaid);
        // `{"name": "Windows"}` as text still names Windows.
        assert_eq!(h.os_type, OsType::Windows);
        assert_eq!(h.os_name, None);
        assert_eq!(h.vpc_id, None);
        assert_eq!(h.image_id.as_deref(), Some("img-meta"));
        assert_eq!(h.tags.len(), 2);
        assert_eq!((h.tags["7"].as_str(), h.tags["k"].as_str()), ("[true]", ""));
        assert!(h.security_groups.is_empty());
        assert_eq!(
            h.extra["security_groups"],
            json!([{"id": " ", "name": ""}, {}])
        );
        // Networks in the order of their ids, each address once.
        assert_eq!(h.private_ips, vec!["10.0.0.1", "10.0.0.2"]);
    }

    fn database(value: Value) -> Result<Database> {
        db_instance_to_database(serde_json::from_value(value).unwrap(), "cn-north-4")
    }

    #[test]
    fn rds_times_with_and_without_a_colon_in_the_offset() {
        for created in ["2018-08-20T02:33:49+0800", "2018-08-20T02:33:49+08:00"] {
            let db = database(json!({"id": "db-1", "created": created})).unwrap();
            assert_eq!(db.created_at, Some("2018-08-19T18:33:49Z".parse().unwrap()));
        }
        let e = database(json!({"id": "db-1", "expiration_time": "soon"})).unwrap_err();
        assert!(e.message().contains("expiration_time"), "{e}");
    }

    #[test]
    fn rds_numbers_come_as_strings_or_numbers() {
        let db = database(json!({"id": "db-1", "cpu": 4, "mem": "0.5", "port": "5432",
            "private_ips": ["10.0.0.1", " "], "charge_info": null, "nodes": null}))
        .unwrap();
        assert_eq!((db.cpu, db.memory_mib), (Some(4), Some(512)));
        assert_eq!(
            db.endpoints,
            [DatabaseEndpoint::private("10.0.0.1", Some(5432))]
        );
        assert_eq!(db.pay_mode, PayMode::Unknown);
        for bad in [
            json!({"id": "db-1", "cpu": "two"}),
            json!({"id": "db-1", "port": 70000}),
        ] {
            assert_eq!(
                database(bad).unwrap_err().kind(),
                cmdb_core::ErrorKind::Decode
            );
        }
    }

    #[test]
    fn every_documented_rds_status_normalizes() {
        for (raw, want) in [
            ("BUILD", DatabaseStatus::Creating),
            ("ACTIVE", DatabaseStatus::Running),
            ("FAILED", DatabaseStatus::Error),
            ("FROZEN", DatabaseStatus::Isolated),
            ("MODIFYING", DatabaseStatus::Modifying),
            ("REBOOTING", DatabaseStatus::Rebooting),
            ("RESTORING", DatabaseStatus::Restoring),
            ("MODIFYING INSTANCE TYPE", DatabaseStatus::Modifying),
            ("SWITCHOVER", DatabaseStatus::Modifying),
            ("MIGRATING", DatabaseStatus::Modifying),
            ("BACKING UP", DatabaseStatus::BackingUp),
            ("MODIFYING DATABASE PORT", DatabaseStatus::Modifying),
            ("STORAGE FULL", DatabaseStatus::StorageFull),
            (" active ", DatabaseStatus::Running),
            ("SHUTDOWN", DatabaseStatus::Unknown),
        ] {
            assert_eq!(database_status(raw), want, "{raw}");
        }
    }
}
