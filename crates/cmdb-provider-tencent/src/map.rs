//! Tencent Cloud DTOs -> the normalized [`Host`] (CVM) and [`Database`] (CDB).

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use cmdb_core::{
    Database, DatabaseEndpoint, DatabaseEngine, DatabaseStatus, Error, Host, HostStatus, OsType,
    PayMode, Result, Vendor,
};
use serde_json::{json, Value};

use crate::model::{DbInstance, Instance, Text};

/// MiB per GiB: CVM reports `Memory` in GiB, cmdb stores MiB.
const MIB_PER_GIB: u64 = 1024;

/// The normalized status of an `InstanceState`.
///
/// | Tencent | cmdb | why |
/// |---|---|---|
/// | PENDING | PENDING | |
/// | LAUNCH_FAILED | CREATE_FAILED | |
/// | RUNNING | RUNNING | |
/// | STOPPED | STOPPED | |
/// | STARTING | STARTING | |
/// | STOPPING | STOPPING | |
/// | REBOOTING | REBOOTING | |
/// | SHUTDOWN | SHUTDOWN | stopped, waiting to be destroyed |
/// | TERMINATING | DELETING | |
/// | ENTER_RESCUE_MODE, EXIT_RESCUE_MODE | REBOOTING | the instance restarts into or out of the rescue system |
/// | RESCUE_MODE | SUSPENDED | the instance's own OS is not running until rescue ends |
/// | ENTER_SERVICE_LIVE_MIGRATE, SERVICE_LIVE_MIGRATE, EXIT_SERVICE_LIVE_MIGRATE | RUNNING | a live migration keeps the guest running |
/// | anything else | UNKNOWN | `raw_status` keeps the word |
pub(crate) fn status(state: &str) -> HostStatus {
    match state {
        "PENDING" => HostStatus::Pending,
        "LAUNCH_FAILED" => HostStatus::CreateFailed,
        "RUNNING" => HostStatus::Running,
        "STOPPED" => HostStatus::Stopped,
        "STARTING" => HostStatus::Starting,
        "STOPPING" => HostStatus::Stopping,
        "REBOOTING" => HostStatus::Rebooting,
        "SHUTDOWN" => HostStatus::Shutdown,
        "TERMINATING" => HostStatus::Deleting,
        "ENTER_RESCUE_MODE" | "EXIT_RESCUE_MODE" => HostStatus::Rebooting,
        "RESCUE_MODE" => HostStatus::Suspended,
        "ENTER_SERVICE_LIVE_MIGRATE" | "SERVICE_LIVE_MIGRATE" | "EXIT_SERVICE_LIVE_MIGRATE" => {
            HostStatus::Running
        }
        _ => HostStatus::Unknown,
    }
}

/// The normalized pay mode of an `InstanceChargeType`. `CDHPAID` / `CDCPAID` instances
/// are paid through their dedicated host or cluster, not by themselves: RESERVED.
pub(crate) fn pay_mode(charge_type: &str) -> PayMode {
    match charge_type {
        "PREPAID" => PayMode::Prepaid,
        "POSTPAID_BY_HOUR" => PayMode::Postpaid,
        "SPOTPAID" => PayMode::Spot,
        "CDHPAID" | "CDCPAID" => PayMode::Reserved,
        _ => PayMode::Unknown,
    }
}

/// The normalized status of a CDB integer `Status`, as [`DatabaseStatus`] documents it.
pub(crate) fn database_status(status: i64) -> DatabaseStatus {
    match status {
        0 => DatabaseStatus::Creating,
        1 => DatabaseStatus::Running,
        4 => DatabaseStatus::Isolating,
        5 => DatabaseStatus::Isolated,
        _ => DatabaseStatus::Unknown,
    }
}

/// A CDB time, `"2023-08-29 08:37:33"` in China Standard Time (UTC+8, no offset
/// written), as UTC. Null, empty and the zero date `0000-00-00 00:00:00` are `None`.
fn china_time(id: &str, field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.starts_with("0000-00-00") {
        return Ok(None);
    }
    let china = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S")
        .ok()
        .and_then(|t| china.from_local_datetime(&t).single())
        .map(|t| Some(t.with_timezone(&Utc)))
        .ok_or_else(|| {
            Error::decode(format!(
                "instance {id}: {field} {value:?} is not a time such as \"2023-08-29 08:37:33\""
            ))
        })
}

/// `Some(trimmed)` unless absent or blank.
fn present(value: Option<String>) -> Option<String> {
    let value = value?;
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Maps one CDB (MySQL) instance of `region` to a [`Database`].
///
/// CDB is MySQL only (`EngineType` is the storage engine, InnoDB or RocksDB, kept in
/// nothing). `Memory` (MB) is taken as MiB, `Volume` is GB; `Vip:Vport` is the private
/// endpoint, `WanDomain:WanPort` the public one while `WanStatus` is 1; times are China
/// Standard Time, converted to UTC. `extra` keeps the role (`InstanceType`), the primary's
/// id (`MasterInfo.InstanceId`), `ProjectId`, `UniqSubnetId` and `TaskStatus`.
pub(crate) fn to_database(instance: DbInstance, region: &str) -> Result<Database> {
    let Some(id) = present(instance.instance_id) else {
        return Err(Error::decode("field `InstanceId` is missing or empty"));
    };
    let created_at = china_time(&id, "CreateTime", instance.create_time.as_deref())?;
    let expire_at = china_time(&id, "DeadlineTime", instance.deadline_time.as_deref())?;
    let mut db = Database::new(Vendor::Tencent, id, region);
    db.name = instance.instance_name.unwrap_or_default();
    db.zone = present(instance.zone);
    db.engine = DatabaseEngine::MySql;
    db.engine_version = present(instance.engine_version);
    if let Some(status) = instance.status {
        db.status = database_status(status);
        db.raw_status = status.to_string();
    }
    db.instance_class = present(instance.device_type);
    db.cpu = instance.cpu.filter(|c| *c > 0);
    db.memory_mib = instance.memory.filter(|m| *m > 0);
    db.storage_gb = instance.volume.filter(|v| *v > 0);
    db.storage_type = present(instance.disk_type);
    if let Some(vip) = present(instance.vip) {
        db.endpoints.push(DatabaseEndpoint::private(
            vip,
            instance.vport.filter(|p| *p > 0),
        ));
    }
    if instance.wan_status == Some(1) {
        if let Some(domain) = present(instance.wan_domain) {
            db.endpoints.push(DatabaseEndpoint::public(
                domain,
                instance.wan_port.filter(|p| *p > 0),
            ));
        }
    }
    db.vpc_id = present(instance.uniq_vpc_id);
    db.pay_mode = match instance.pay_type {
        Some(0) => PayMode::Prepaid,
        Some(1) => PayMode::Postpaid,
        _ => PayMode::Unknown,
    };
    db.created_at = created_at;
    db.expire_at = expire_at;
    for tag in instance.tag_list.unwrap_or_default() {
        if let Some(key) = present(tag.tag_key) {
            db.tags.insert(key, tag.tag_value.unwrap_or_default());
        }
    }
    if let Some(kind) = instance.instance_type {
        let role = match kind {
            1 => Some("primary"),
            2 => Some("disaster_recovery"),
            3 => Some("readonly"),
            _ => None,
        };
        if let Some(role) = role {
            db.extra.insert("role".into(), json!(role));
        }
        db.extra.insert("InstanceType".into(), json!(kind));
    }
    if let Some(primary) = instance.master_info.and_then(|m| present(m.instance_id)) {
        db.extra
            .insert("primary_instance_id".into(), json!(primary));
    }
    if let Some(project) = instance.project_id {
        db.extra.insert("ProjectId".into(), json!(project));
    }
    if let Some(subnet) = present(instance.uniq_subnet_id) {
        db.extra.insert("UniqSubnetId".into(), json!(subnet));
    }
    if let Some(task) = instance.task_status {
        db.extra.insert("TaskStatus".into(), json!(task));
    }
    Ok(db)
}

/// An RFC 3339 time, with `Z` or an offset such as `+00:00`; null or empty is `None`.
fn time(id: &str, field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(value)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| {
            Error::decode(format!(
                "instance {id}: {field} {value:?} is not an RFC 3339 time: {e}"
            ))
        })
}

/// The string as it is, unless absent or blank.
fn non_empty(value: Option<Text<'_>>) -> Option<String> {
    value.filter(|v| !v.is_blank()).map(Text::into_string)
}

/// The strings that are not blank, each as it is.
fn list(value: Option<Vec<Text<'_>>>) -> Vec<String> {
    value
        .unwrap_or_default()
        .into_iter()
        .filter(|v| !v.is_blank())
        .map(Text::into_string)
        .collect()
}

/// Maps one instance of `region`.
///
/// `hostname` stays `None`: `DescribeInstances` does not report the guest hostname.
/// `extra` keeps `RestrictState`, `ProjectId`, `InstanceChargeType`, `SubnetId`,
/// `IPv6Addresses`, `IsolatedSource` and the exact `GPUCount` when present.
///
/// The instance's strings are moved into the host, or copied once from the answer; those
/// only looked at (the times) are never copied.
pub(crate) fn to_host(instance: Instance<'_>, region: &str) -> Result<Host> {
    let Instance {
        instance_id,
        instance_name,
        instance_state,
        instance_type,
        cpu,
        memory,
        placement,
        restrict_state,
        instance_charge_type,
        private_ip_addresses,
        public_ip_addresses,
        ipv6_addresses,
        virtual_private_cloud,
        image_id,
        created_time,
        expired_time,
        os_name,
        security_group_ids,
        login_settings,
        tags,
        uuid,
        gpu_info,
        isolated_source,
    } = instance;
    let Some(id) = instance_id.filter(|id| !id.is_blank()) else {
        return Err(Error::decode("an instance has no InstanceId"));
    };
    // Everything that can fail is read first, naming the id still borrowed: the id is
    // then moved into the host, not cloned for the messages.
    let memory_mib = memory
        .map(|gib| {
            gib.checked_mul(MIB_PER_GIB).ok_or_else(|| {
                Error::decode(format!(
                    "instance {}: Memory {gib} GiB is out of range",
                    &*id
                ))
            })
        })
        .transpose()?;
    let created_at = time(&id, "CreatedTime", created_time.as_deref())?;
    let expire_at = time(&id, "ExpiredTime", expired_time.as_deref())?;

    let mut host = Host::new(Vendor::Tencent, id.into_string(), region);
    host.name = instance_name.map(Text::into_string).unwrap_or_default();
    host.raw_status = instance_state.map(Text::into_string).unwrap_or_default();
    host.status = status(&host.raw_status);
    host.instance_type = non_empty(instance_type);
    host.cpu = cpu;
    host.memory_mib = memory_mib;
    if let Some(gpu) = gpu_info {
        host.gpu_spec = non_empty(gpu.gpu_type);
        if let Some(count) = gpu.gpu_count.filter(|c| c.is_finite() && *c > 0.0) {
            // Whole GPUs are counted; a vGPU share (below 1) has no whole GPU, and the
            // exact share is kept in `extra`.
            if count >= 1.0 {
                host.gpu_count = Some(count.floor() as u32);
            }
            host.extra.insert("GPUCount".into(), json!(count));
        }
    }
    host.os_name = non_empty(os_name);
    host.os_type = host
        .os_name
        .as_deref()
        .map_or(OsType::Other, OsType::from_vendor);
    host.image_id = non_empty(image_id);
    host.public_ips = list(public_ip_addresses);
    host.private_ips = list(private_ip_addresses);
    if let Some(charge) = non_empty(instance_charge_type) {
        host.pay_mode = pay_mode(&charge);
        host.extra
            .insert("InstanceChargeType".into(), Value::String(charge));
    }
    host.created_at = created_at;
    host.expire_at = expire_at;
    for tag in tags.unwrap_or_default() {
        if let Some(key) = non_empty(tag.key) {
            host.tags
                .insert(key, tag.value.map(Text::into_string).unwrap_or_default());
        }
    }
    if let Some(placement) = placement {
        host.zone = non_empty(placement.zone);
        if let Some(project) = placement.project_id {
            host.extra.insert("ProjectId".into(), json!(project));
        }
    }
    if let Some(vpc) = virtual_private_cloud {
        host.vpc_id = non_empty(vpc.vpc_id);
        if let Some(subnet) = non_empty(vpc.subnet_id) {
            host.extra.insert("SubnetId".into(), Value::String(subnet));
        }
    }
    host.security_groups = list(security_group_ids);
    host.key_pairs = list(login_settings.and_then(|l| l.key_ids));
    host.serial_number = non_empty(uuid);
    if let Some(restrict) = non_empty(restrict_state) {
        host.extra
            .insert("RestrictState".into(), Value::String(restrict));
    }
    if let Some(isolated) = non_empty(isolated_source) {
        host.extra
            .insert("IsolatedSource".into(), Value::String(isolated));
    }
    let ipv6 = list(ipv6_addresses);
    if !ipv6.is_empty() {
        host.extra.insert(
            "IPv6Addresses".into(),
            Value::Array(ipv6.into_iter().map(Value::String).collect()),
        );
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use cmdb_core::ErrorKind;

    use super::*;

    /// A prepaid GPU instance as DescribeInstances returns it (written from the
    /// documented schema: GiB memory, `+00:00` times, project id, restrict state).
    fn prepaid_gpu() -> Value {
        json!({
            "InstanceId": "ins-gpu00001",
            "InstanceName": "训练节点-01",
            "InstanceState": "RUNNING",
            "InstanceType": "GN7.2XLARGE32",
            "CPU": 8,
            "Memory": 32,
            "RestrictState": "EXPIRED",
            "InstanceChargeType": "PREPAID",
            "Placement": {"Zone": "ap-shanghai-2", "ProjectId": 1003, "HostIds": []},
            "PrivateIpAddresses": ["10.0.1.5"],
            "PublicIpAddresses": ["203.0.113.7", "203.0.113.8"],
            "IPv6Addresses": ["2001:db8::5"],
            "VirtualPrivateCloud": {
                "VpcId": "vpc-abcd1234",
                "SubnetId": "subnet-1a2b3c4d",
                "AsVpcGateway": false,
                "PrivateIpAddresses": ["10.0.1.5"]
            },
            "ImageId": "img-eb30mz89",
            "CreatedTime": "2024-05-06T07:08:09+00:00",
            "ExpiredTime": "2025-05-06T07:08:09+00:00",
            "OsName": "Ubuntu Server 22.04 LTS 64bit",
            "SecurityGroupIds": ["sg-aaaa1111", "sg-bbbb2222"],
            "LoginSettings": {"KeyIds": ["skey-k1", "skey-k2"]},
            "Tags": [{"Key": "env", "Value": "prod"}, {"Key": "团队", "Value": "算法"}],
            "Uuid": "6a1b2c3d-0000-4000-8000-000000000001",
            "GPUInfo": {"GPUCount": 1.0, "GPUType": "NVIDIA T4", "GPUId": ["gpu-1"]},
            "IsolatedSource": "NOTISOLATED",
            "RenewFlag": "NOTIFY_AND_AUTO_RENEW",
            "SystemDisk": {"DiskType": "CLOUD_PREMIUM", "DiskSize": 50},
            "DataDisks": null
        })
    }

    fn map(value: Value) -> Result<Host> {
        let text = value.to_string();
        to_host(cmdb_http::decode_json(text.as_bytes())?, "ap-shanghai")
    }

    #[test]
    fn maps_a_prepaid_gpu_instance() {
        let h = map(prepaid_gpu()).unwrap();
        assert_eq!(h.vendor, Vendor::Tencent);
        assert_eq!(h.instance_id, "ins-gpu00001");
        assert_eq!(h.region, "ap-shanghai");
        assert_eq!(h.zone.as_deref(), Some("ap-shanghai-2"));
        assert_eq!(h.name, "训练节点-01");
        assert_eq!(
            (h.status, h.raw_status.as_str()),
            (HostStatus::Running, "RUNNING")
        );
        assert_eq!(h.instance_type.as_deref(), Some("GN7.2XLARGE32"));
        assert_eq!((h.cpu, h.memory_mib), (Some(8), Some(32 * 1024)));
        assert_eq!(
            (h.gpu_count, h.gpu_spec.as_deref()),
            (Some(1), Some("NVIDIA T4"))
        );
        assert_eq!(h.os_type, OsType::Linux);
        assert_eq!(h.os_name.as_deref(), Some("Ubuntu Server 22.04 LTS 64bit"));
        assert_eq!(h.image_id.as_deref(), Some("img-eb30mz89"));
        assert_eq!(h.public_ips, vec!["203.0.113.7", "203.0.113.8"]);
        assert_eq!(h.private_ips, vec!["10.0.1.5"]);
        assert_eq!(h.pay_mode, PayMode::Prepaid);
        assert_eq!(h.created_at, Some("2024-05-06T07:08:09Z".parse().unwrap()));
        assert_eq!(h.expire_at, Some("2025-05-06T07:08:09Z".parse().unwrap()));
        assert_eq!(h.tags.get("env").map(String::as_str), Some("prod"));
        assert_eq!(h.tags.get("团队").map(String::as_str), Some("算法"));
        assert_eq!(h.vpc_id.as_deref(), Some("vpc-abcd1234"));
        assert_eq!(h.security_groups, vec!["sg-aaaa1111", "sg-bbbb2222"]);
        assert_eq!(h.key_pairs, vec!["skey-k1", "skey-k2"]);
        assert_eq!(
            h.serial_number.as_deref(),
            Some("6a1b2c3d-0000-4000-8000-000000000001")
        );
        assert_eq!(h.hostname, None);
        assert_eq!(h.extra["RestrictState"], json!("EXPIRED"));
        assert_eq!(h.extra["ProjectId"], json!(1003));
        assert_eq!(h.extra["InstanceChargeType"], json!("PREPAID"));
        assert_eq!(h.extra["SubnetId"], json!("subnet-1a2b3c4d"));
        assert_eq!(h.extra["IPv6Addresses"], json!(["2001:db8::5"]));
        assert_eq!(h.extra["GPUCount"], json!(1.0));
    }

    #[test]
    fn postpaid_nulls_and_z_times() {
        let mut v = prepaid_gpu();
        v["InstanceChargeType"] = json!("POSTPAID_BY_HOUR");
        v["PublicIpAddresses"] = Value::Null;
        v["ExpiredTime"] = Value::Null;
        v["CreatedTime"] = json!("2023-12-31T16:30:00Z");
        v["GPUInfo"] = Value::Null;
        v["Tags"] = json!([]);
        v["LoginSettings"] = json!({"KeyIds": null});
        v["OsName"] = json!("Windows Server 2019 数据中心版 64位中文版");
        let h = map(v).unwrap();
        assert_eq!(h.pay_mode, PayMode::Postpaid);
        assert!(h.public_ips.is_empty());
        assert_eq!(h.expire_at, None);
        assert_eq!(h.created_at, Some("2023-12-31T16:30:00Z".parse().unwrap()));
        assert_eq!((h.gpu_count, h.gpu_spec.as_deref()), (None, None));
        assert!(h.tags.is_empty() && h.key_pairs.is_empty());
        assert_eq!(h.os_type, OsType::Windows);
        // An empty ExpiredTime is no expiry too.
        let mut v = prepaid_gpu();
        v["ExpiredTime"] = json!("");
        assert_eq!(map(v).unwrap().expire_at, None);
    }

    #[test]
    fn offsets_other_than_utc_are_converted() {
        let mut v = prepaid_gpu();
        v["CreatedTime"] = json!("2024-01-01T08:00:00+08:00");
        assert_eq!(
            map(v).unwrap().created_at,
            Some("2024-01-01T00:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn every_instance_state_is_normalized() {
        let cases = [
            ("PENDING", HostStatus::Pending),
            ("LAUNCH_FAILED", HostStatus::CreateFailed),
            ("RUNNING", HostStatus::Running),
            ("STOPPED", HostStatus::Stopped),
            ("STARTING", HostStatus::Starting),
            ("STOPPING", HostStatus::Stopping),
            ("REBOOTING", HostStatus::Rebooting),
            ("SHUTDOWN", HostStatus::Shutdown),
            ("TERMINATING", HostStatus::Deleting),
            ("ENTER_RESCUE_MODE", HostStatus::Rebooting),
            ("RESCUE_MODE", HostStatus::Suspended),
            ("EXIT_RESCUE_MODE", HostStatus::Rebooting),
            ("ENTER_SERVICE_LIVE_MIGRATE", HostStatus::Running),
            ("SERVICE_LIVE_MIGRATE", HostStatus::Running),
            ("EXIT_SERVICE_LIVE_MIGRATE", HostStatus::Running),
            ("SOMETHING_NEW", HostStatus::Unknown),
            ("", HostStatus::Unknown),
        ];
        for (state, expected) in cases {
            assert_eq!(status(state), expected, "{state}");
            let mut v = prepaid_gpu();
            v["InstanceState"] = json!(state);
            let h = map(v).unwrap();
            assert_eq!((h.status, h.raw_status.as_str()), (expected, state));
        }
    }

    #[test]
    fn every_charge_type_is_normalized() {
        for (charge, expected) in [
            ("PREPAID", PayMode::Prepaid),
            ("POSTPAID_BY_HOUR", PayMode::Postpaid),
            ("SPOTPAID", PayMode::Spot),
            ("CDHPAID", PayMode::Reserved),
            ("CDCPAID", PayMode::Reserved),
            ("UNDEFINED", PayMode::Unknown),
        ] {
            assert_eq!(pay_mode(charge), expected, "{charge}");
        }
    }

    #[test]
    fn a_vgpu_share_has_no_whole_gpu_but_keeps_the_share() {
        let mut v = prepaid_gpu();
        v["GPUInfo"] = json!({"GPUCount": 0.25, "GPUType": "NVIDIA A10"});
        let h = map(v).unwrap();
        assert_eq!(h.gpu_count, None);
        assert_eq!(h.gpu_spec.as_deref(), Some("NVIDIA A10"));
        assert_eq!(h.extra["GPUCount"], json!(0.25));
    }

    #[test]
    fn a_minimal_instance_maps_with_everything_unknown() {
        let h = map(json!({"InstanceId": "ins-min"})).unwrap();
        assert_eq!(h.instance_id, "ins-min");
        assert_eq!(h.status, HostStatus::Unknown);
        assert_eq!((h.cpu, h.memory_mib, h.zone), (None, None, None));
        assert!(h.extra.is_empty());
    }

    #[test]
    fn malformed_fields_are_decode_errors_naming_the_field() {
        let mut v = prepaid_gpu();
        v["Memory"] = json!("32");
        let e = map(v).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert!(e.message().contains("field `Memory`"), "{e}");

        let mut v = prepaid_gpu();
        v["Placement"] = json!({"Zone": 3});
        let e = map(v).unwrap_err();
        assert!(e.message().contains("field `Placement.Zone`"), "{e}");

        let mut v = prepaid_gpu();
        v["CreatedTime"] = json!("2024-05-06 07:08:09");
        let e = map(v).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert!(e.message().contains("CreatedTime"), "{e}");
        assert!(e.message().contains("ins-gpu00001"), "{e}");

        let mut v = prepaid_gpu();
        v["Memory"] = json!(u64::MAX);
        let e = map(v).unwrap_err();
        assert!(
            e.message()
                .contains("instance ins-gpu00001: Memory 18446744073709551615 GiB is out of range"),
            "{e}"
        );

        let e = map(json!({"InstanceName": "no id"})).unwrap_err();
        assert!(e.message().contains("InstanceId"), "{e}");
        let e = map(json!({"InstanceId": " \t"})).unwrap_err();
        assert!(e.message().contains("InstanceId"), "{e}");
    }

    fn database(value: Value) -> Result<Database> {
        to_database(serde_json::from_value(value).unwrap(), "ap-guangzhou")
    }

    #[test]
    fn cdb_times_are_china_standard_time_and_the_zero_date_is_none() {
        let db = database(json!({
            "InstanceId": "cdb-1", "Status": 1, "PayType": 0,
            "CreateTime": "2024-01-01 07:59:59", "DeadlineTime": "2025-01-01 08:00:00"
        }))
        .unwrap();
        assert_eq!(db.created_at, Some("2023-12-31T23:59:59Z".parse().unwrap()));
        assert_eq!(db.expire_at, Some("2025-01-01T00:00:00Z".parse().unwrap()));
        let db = database(json!({
            "InstanceId": "cdb-2", "CreateTime": "", "DeadlineTime": "0000-00-00 00:00:00"
        }))
        .unwrap();
        assert_eq!((db.created_at, db.expire_at), (None, None));
        let e = database(json!({"InstanceId": "cdb-3", "CreateTime": "2024-01-01T00:00:00Z"}))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert!(e.message().contains("CreateTime"), "{e}");
    }

    #[test]
    fn cdb_statuses_pay_types_and_roles_normalize() {
        for (status, want) in [
            (0, DatabaseStatus::Creating),
            (1, DatabaseStatus::Running),
            (4, DatabaseStatus::Isolating),
            (5, DatabaseStatus::Isolated),
            (7, DatabaseStatus::Unknown),
        ] {
            let db = database(json!({"InstanceId": "cdb-1", "Status": status})).unwrap();
            assert_eq!((db.status, db.raw_status), (want, status.to_string()));
        }
        let db = database(
            json!({"InstanceId": "cdb-1", "PayType": 1, "InstanceType": 2,
            "WanStatus": 0, "WanDomain": "x.sql.tencentcdb.com", "WanPort": 1}),
        )
        .unwrap();
        assert_eq!(db.pay_mode, PayMode::Postpaid);
        assert_eq!(db.extra["role"], "disaster_recovery");
        assert!(db.endpoints.is_empty(), "the public endpoint is off");
        let e = database(json!({"InstanceName": "no id"})).unwrap_err();
        assert!(e.message().contains("InstanceId"), "{e}");
    }
}
