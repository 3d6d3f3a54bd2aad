//! `Instance` DTO -> normalized [`Host`], `DbInstance` DTO -> normalized [`Database`],
//! with every ECS and RDS quirk handled here.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use cmdb_core::{
    Database, DatabaseEndpoint, DatabaseEngine, DatabaseStatus, Error, Host, HostStatus, OsType,
    PayMode, Result, Vendor,
};
use cmdb_http::TimeFormats;
use serde_json::Value;

use crate::model::{DbInstance, Instance, Text};

/// Pay-as-you-go instances report this `ExpiredTime` (or a later one): no expiry.
/// `2099-12-31T00:00:00Z`, in seconds since the epoch.
const NO_EXPIRY_FROM: i64 = 4_102_358_400;

/// Normalizes an ECS `Status` (Pending, Starting, Running, Stopping, Stopped).
pub(crate) fn status(raw: &str) -> HostStatus {
    match raw {
        "Pending" => HostStatus::Pending,
        "Starting" => HostStatus::Starting,
        "Running" => HostStatus::Running,
        "Stopping" => HostStatus::Stopping,
        "Stopped" => HostStatus::Stopped,
        _ => HostStatus::Unknown,
    }
}

/// Normalizes `InstanceChargeType` and `SpotStrategy`: a pay-as-you-go instance with a
/// spot strategy other than `NoSpot` is a spot instance.
pub(crate) fn pay_mode(charge_type: &str, spot_strategy: &str) -> PayMode {
    match charge_type {
        "PrePaid" => PayMode::Prepaid,
        "PostPaid" if !spot_strategy.is_empty() && spot_strategy != "NoSpot" => PayMode::Spot,
        "PostPaid" => PayMode::Postpaid,
        _ => PayMode::Unknown,
    }
}

/// Parses an ECS time: second precision (`2024-01-02T03:04:05Z`, RFC 3339 in general) or
/// minute precision (`2017-12-10T04:04Z`). `""` is `None`.
pub(crate) fn parse_time(value: &str) -> std::result::Result<Option<DateTime<Utc>>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    NAIVE_FORMATS
        .parse_utc(value)
        .map(Some)
        .ok_or_else(|| format!("{value:?} is not a time"))
}

/// The times without offset ECS answers with, minute precision first (`CreationTime`).
static NAIVE_FORMATS: LazyLock<TimeFormats> = LazyLock::new(|| {
    TimeFormats::new(&["%Y-%m-%dT%H:%MZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S"])
});

fn push_unique(list: &mut Vec<String>, ip: &str) {
    let ip = ip.trim();
    if !ip.is_empty() && !list.iter().any(|i| i == ip) {
        list.push(ip.to_owned());
    }
}

/// Maps one instance to a [`Host`] of `region`. Fails with a
/// [`Decode`](cmdb_core::ErrorKind::Decode) error naming the field and the request id
/// when a time does not parse or the id is missing.
///
/// The instance's strings are moved into the host, or copied once from the answer; those
/// only looked at are never copied.
pub(crate) fn to_host(instance: Instance<'_>, region: &str, request_id: &str) -> Result<Host> {
    let bad = |field: &str, why: String| {
        Error::decode(format!(
            "DescribeInstances: field `{field}` of instance {:?}: {why} [request id {request_id}]",
            &*instance.instance_id
        ))
    };
    if instance.instance_id.trim().is_empty() {
        return Err(bad("InstanceId", "is missing or empty".into()));
    }
    let created_at = parse_time(&instance.creation_time).map_err(|e| bad("CreationTime", e))?;
    // Whole seconds compare as the times do: the bound has no fraction.
    let expire_at = parse_time(&instance.expired_time)
        .map_err(|e| bad("ExpiredTime", e))?
        .filter(|t| t.timestamp() < NO_EXPIRY_FROM);

    let Instance {
        instance_id,
        instance_name,
        description,
        host_name,
        zone_id,
        status: raw_status,
        instance_type,
        cpu,
        memory,
        gpu_amount,
        gpu_spec,
        os_type,
        os_name,
        os_name_en,
        image_id,
        instance_network_type,
        public_ip_address,
        inner_ip_address,
        eip_address,
        vpc_attributes,
        network_interfaces,
        security_group_ids,
        tags,
        operation_locks,
        instance_charge_type,
        spot_strategy,
        key_pair_name,
        serial_number,
        resource_group_id,
        ..
    } = instance;
    let mut host = Host::new(Vendor::Aliyun, instance_id.trim(), region);
    host.zone = zone_id.non_empty();
    host.name = instance_name.into_string();
    host.description = description.non_empty();
    host.hostname = host_name.non_empty();
    host.status = status(&raw_status);
    host.raw_status = raw_status.into_string();
    host.instance_type = instance_type.non_empty();
    host.cpu = cpu;
    host.memory_mib = memory;
    host.gpu_count = gpu_amount;
    host.gpu_spec = gpu_spec.non_empty();
    host.os_type = if os_type.trim().is_empty() {
        OsType::from_vendor(&os_name_en)
    } else {
        OsType::from_vendor(&os_type)
    };
    host.os_name = os_name.non_empty().or_else(|| os_name_en.non_empty());
    host.image_id = image_id.non_empty();

    for ip in &public_ip_address.ip_address {
        push_unique(&mut host.public_ips, ip);
    }
    push_unique(&mut host.public_ips, &eip_address.ip_address);

    // VPC instances list their addresses under VpcAttributes, classic ones under
    // InnerIpAddress; some answers carry only the network interfaces.
    for ip in &vpc_attributes.private_ip_address.ip_address {
        push_unique(&mut host.private_ips, ip);
    }
    if host.private_ips.is_empty() {
        for ip in &inner_ip_address.ip_address {
            push_unique(&mut host.private_ips, ip);
        }
    }
    if host.private_ips.is_empty() {
        let nics = &network_interfaces.network_interface;
        if let Some(nic) = nics
            .iter()
            .find(|n| n.kind.eq_ignore_ascii_case("Primary"))
            .or_else(|| nics.first())
        {
            push_unique(&mut host.private_ips, &nic.primary_ip_address);
        }
    }

    host.pay_mode = pay_mode(&instance_charge_type, &spot_strategy);
    host.created_at = created_at;
    host.expire_at = expire_at;
    host.tags = tags
        .tag
        .into_iter()
        .filter(|t| !t.tag_key.is_empty())
        .map(|t| (t.tag_key.into_string(), t.tag_value.into_string()))
        .collect::<BTreeMap<_, _>>();
    host.vpc_id = vpc_attributes.vpc_id.non_empty();
    host.security_groups = security_group_ids
        .security_group_id
        .into_iter()
        .filter_map(Text::non_empty)
        .collect();
    host.key_pairs = key_pair_name.non_empty().into_iter().collect();
    host.serial_number = serial_number.non_empty();

    let locks: Vec<Value> = operation_locks
        .lock_reason
        .into_iter()
        .filter_map(|l| l.lock_reason.non_empty())
        .map(Value::String)
        .collect();
    if !locks.is_empty() {
        host.extra
            .insert("OperationLocks".into(), Value::Array(locks));
    }
    let mut keep = |key: &str, value: Text<'_>| {
        if let Some(v) = value.non_empty() {
            host.extra.insert(key.into(), Value::String(v));
        }
    };
    keep("InstanceNetworkType", instance_network_type);
    keep("VSwitchId", vpc_attributes.v_switch_id);
    keep("ResourceGroupId", resource_group_id);
    keep("EipAllocationId", eip_address.allocation_id);
    keep("InstanceChargeType", instance_charge_type);
    if host.pay_mode == PayMode::Spot {
        keep("SpotStrategy", spot_strategy);
    }
    Ok(host)
}

/// Normalizes an RDS `DBInstanceStatus`, as the table of [`DatabaseStatus`] says.
pub(crate) fn database_status(raw: &str) -> DatabaseStatus {
    match raw {
        "Creating" | "GuardDBInstanceCreating" | "INS_CLONING" => DatabaseStatus::Creating,
        "Running" => DatabaseStatus::Running,
        "DBInstanceClassChanging"
        | "EngineVersionUpgrading"
        | "DBInstanceNetTypeChanging"
        | "TRANSING"
        | "TransingToOthers"
        | "GuardSwitching" => DatabaseStatus::Modifying,
        "Rebooting" => DatabaseStatus::Rebooting,
        "Restoring" | "Importing" | "ImportingFromOthers" => DatabaseStatus::Restoring,
        "Deleting" => DatabaseStatus::Deleting,
        "Released" => DatabaseStatus::Released,
        _ => DatabaseStatus::Unknown,
    }
}

/// The normalized role of an RDS `DBInstanceType` (Primary, Readonly, Guard, Temp).
fn database_role(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Primary" => "primary",
        "Readonly" => "readonly",
        "Guard" => "disaster_recovery",
        "Temp" => "temporary",
        _ => return None,
    })
}

/// `Some(trimmed)` unless the string is absent or blank.
fn present(value: Option<String>) -> Option<String> {
    let value = value?;
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Maps one RDS instance to a [`Database`] of `region`. Fails with a
/// [`Decode`](cmdb_core::ErrorKind::Decode) error naming the field and the request id
/// when the id is missing, `DBInstanceCPU` is not a number or a time does not parse.
///
/// The list carries neither the storage size nor tags (`DescribeDBInstanceAttribute` and
/// the tag API do): they stay unknown and empty.
pub(crate) fn to_database(
    instance: DbInstance,
    region: &str,
    request_id: &str,
) -> Result<Database> {
    let id = present(instance.id.clone()).unwrap_or_default();
    let bad = |field: &str, why: String| {
        Error::decode(format!(
            "DescribeDBInstances: field `{field}` of instance {id:?}: {why} [request id {request_id}]"
        ))
    };
    if id.is_empty() {
        return Err(bad("DBInstanceId", "is missing or empty".into()));
    }
    let cpu = match present(instance.cpu) {
        None => None,
        Some(cpu) => Some(
            cpu.parse::<u32>()
                .map_err(|_| bad("DBInstanceCPU", format!("{cpu:?} is not a number")))?,
        ),
    };
    let created_at = parse_time(instance.create_time.as_deref().unwrap_or_default())
        .map_err(|e| bad("CreateTime", e))?;
    let expire_at = parse_time(instance.expire_time.as_deref().unwrap_or_default())
        .map_err(|e| bad("ExpireTime", e))?
        .filter(|t| t.timestamp() < NO_EXPIRY_FROM);

    let mut db = Database::new(Vendor::Aliyun, id, region);
    db.name = instance.description.unwrap_or_default();
    db.zone = present(instance.zone_id);
    db.engine = DatabaseEngine::from_vendor(instance.engine.as_deref().unwrap_or_default());
    db.engine_version = present(instance.engine_version);
    let raw_status = instance.status.unwrap_or_default();
    db.status = database_status(raw_status.trim());
    db.raw_status = raw_status;
    db.instance_class = present(instance.class);
    db.cpu = cpu;
    // RDS reports MB meaning MiB (2048, 4096, ...).
    db.memory_mib = instance.memory;
    db.storage_type = present(instance.storage_type);
    if let Some(host) = present(instance.connection_string) {
        // The list has no port: `DescribeDBInstanceNetInfo` does.
        let public = instance
            .net_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("Internet"));
        db.endpoints.push(if public {
            DatabaseEndpoint::public(host, None)
        } else {
            DatabaseEndpoint::private(host, None)
        });
    }
    db.vpc_id = present(instance.vpc_id);
    db.pay_mode = match instance.pay_type.as_deref().map(str::trim) {
        Some("Prepaid") => PayMode::Prepaid,
        Some("Postpaid") => PayMode::Postpaid,
        _ => PayMode::Unknown,
    };
    db.created_at = created_at;
    db.expire_at = expire_at;

    let kind = present(instance.kind);
    if let Some(role) = kind.as_deref().and_then(database_role) {
        db.extra.insert("role".into(), Value::String(role.into()));
    }
    if let Some(primary) = present(instance.master_instance_id) {
        db.extra
            .insert("primary_instance_id".into(), Value::String(primary));
    }
    let read_only: Vec<Value> = instance
        .read_only_ids
        .unwrap_or_default()
        .ids
        .into_iter()
        .filter_map(|r| present(r.id))
        .map(Value::String)
        .collect();
    if !read_only.is_empty() {
        db.extra
            .insert("read_only_instance_ids".into(), Value::Array(read_only));
    }
    let mut keep = |key: &str, value: Option<String>| {
        if let Some(v) = present(value) {
            db.extra.insert(key.into(), Value::String(v));
        }
    };
    keep("DBInstanceType", kind);
    keep("Category", instance.category);
    keep("InstanceNetworkType", instance.network_type);
    keep("DBInstanceNetType", instance.net_type);
    keep("VSwitchId", instance.vswitch_id);
    keep("ResourceGroupId", instance.resource_group_id);
    keep("LockMode", instance.lock_mode);
    Ok(db)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use serde::Deserialize;

    fn decode(v: &Value) -> serde_json::Result<Instance<'_>> {
        Instance::deserialize(v)
    }

    fn host(v: Value) -> Host {
        let instance: Instance<'_> = decode(&v).expect("decodes");
        to_host(instance, "cn-shenzhen", "RID-TEST").expect("maps")
    }

    /// A VPC, subscription, GPU instance as DescribeInstances shows it.
    fn vpc_prepaid() -> Value {
        json!({
            "InstanceId": "i-wz9gpu0000000001",
            "InstanceName": "训练节点-01",
            "Description": "gpu trainer",
            "HostName": "trainer-01",
            "RegionId": "cn-shenzhen",
            "ZoneId": "cn-shenzhen-e",
            "Status": "Running",
            "InstanceType": "ecs.gn6i-c4g1.xlarge",
            "Cpu": 4,
            "Memory": 15360,
            "GPUAmount": 1,
            "GPUSpec": "NVIDIA T4",
            "OSType": "linux",
            "OSName": "Ubuntu  22.04 64位",
            "OSNameEn": "Ubuntu  22.04 64 bit",
            "ImageId": "ubuntu_22_04_x64_20G_alibase_20240101.vhd",
            "InstanceNetworkType": "vpc",
            "PublicIpAddress": {"IpAddress": []},
            "InnerIpAddress": {"IpAddress": []},
            "EipAddress": {"IpAddress": "47.106.10.20", "AllocationId": "eip-wz9abc", "InternetChargeType": "PayByTraffic"},
            "VpcAttributes": {
                "VpcId": "vpc-wz9main",
                "VSwitchId": "vsw-wz9a",
                "NatIpAddress": "",
                "PrivateIpAddress": {"IpAddress": ["172.16.3.7", "172.16.3.8"]}
            },
            "NetworkInterfaces": {"NetworkInterface": [
                {"Type": "Primary", "PrimaryIpAddress": "172.16.3.7", "NetworkInterfaceId": "eni-1"}
            ]},
            "SecurityGroupIds": {"SecurityGroupId": ["sg-wz9a", "sg-wz9b"]},
            "Tags": {"Tag": [
                {"TagKey": "env", "TagValue": "prod"},
                {"TagKey": "团队", "TagValue": "算法"}
            ]},
            "OperationLocks": {"LockReason": []},
            "InstanceChargeType": "PrePaid",
            "SpotStrategy": "NoSpot",
            "CreationTime": "2024-03-01T08:30Z",
            "ExpiredTime": "2025-03-01T16:00Z",
            "KeyPairName": "ops-key",
            "SerialNumber": "4b1f0c7e-1111-2222-3333-444455556666",
            "ResourceGroupId": "rg-acfm0001",
            "DeletionProtection": true,
            "CpuOptions": {"CoreCount": 2, "ThreadsPerCore": 2, "Numa": ""}
        })
    }

    #[test]
    fn vpc_subscription_gpu_instance_maps_every_field() {
        let h = host(vpc_prepaid());
        assert_eq!(h.vendor, Vendor::Aliyun);
        assert_eq!(h.instance_id, "i-wz9gpu0000000001");
        assert_eq!(h.region, "cn-shenzhen");
        assert_eq!(h.zone.as_deref(), Some("cn-shenzhen-e"));
        assert_eq!(h.name, "训练节点-01");
        assert_eq!(h.description.as_deref(), Some("gpu trainer"));
        assert_eq!(h.hostname.as_deref(), Some("trainer-01"));
        assert_eq!(
            (h.status, h.raw_status.as_str()),
            (HostStatus::Running, "Running")
        );
        assert_eq!(h.instance_type.as_deref(), Some("ecs.gn6i-c4g1.xlarge"));
        assert_eq!((h.cpu, h.memory_mib), (Some(4), Some(15360)));
        assert_eq!(
            (h.gpu_count, h.gpu_spec.as_deref()),
            (Some(1), Some("NVIDIA T4"))
        );
        assert_eq!(h.os_type, OsType::Linux);
        assert_eq!(h.os_name.as_deref(), Some("Ubuntu  22.04 64位"));
        assert_eq!(
            h.image_id.as_deref(),
            Some("ubuntu_22_04_x64_20G_alibase_20240101.vhd")
        );
        assert_eq!(
            h.public_ips,
            vec!["47.106.10.20"],
            "the EIP is a public address"
        );
        assert_eq!(h.private_ips, vec!["172.16.3.7", "172.16.3.8"]);
        assert_eq!(h.pay_mode, PayMode::Prepaid);
        assert_eq!(h.created_at, Some("2024-03-01T08:30:00Z".parse().unwrap()));
        assert_eq!(h.expire_at, Some("2025-03-01T16:00:00Z".parse().unwrap()));
        assert_eq!(h.tags.get("团队").map(String::as_str), Some("算法"));
        assert_eq!(h.tags.len(), 2);
        assert_eq!(h.vpc_id.as_deref(), Some("vpc-wz9main"));
        assert_eq!(h.security_groups, vec!["sg-wz9a", "sg-wz9b"]);
        assert_eq!(h.key_pairs, vec!["ops-key"]);
        assert_eq!(
            h.serial_number.as_deref(),
            Some("4b1f0c7e-1111-2222-3333-444455556666")
        );
        assert!(
            !h.extra.contains_key("OperationLocks"),
            "no locks, no entry"
        );
        assert_eq!(h.extra["VSwitchId"], json!("vsw-wz9a"));
        assert_eq!(h.extra["EipAllocationId"], json!("eip-wz9abc"));
    }

    #[test]
    fn classic_postpaid_instance_uses_inner_ips_and_the_2099_sentinel() {
        let h = host(json!({
            "InstanceId": "i-bp1classic01",
            "InstanceName": "legacy",
            "Status": "Stopped",
            "Cpu": 2,
            "Memory": 8192,
            "GPUAmount": 0,
            "GPUSpec": "",
            "OSType": "windows",
            "OSName": "Windows Server  2019 数据中心版 64位中文版",
            "InstanceNetworkType": "classic",
            "PublicIpAddress": {"IpAddress": ["121.40.1.2"]},
            "InnerIpAddress": {"IpAddress": ["10.80.1.2"]},
            "EipAddress": {"IpAddress": "", "AllocationId": "", "InternetChargeType": ""},
            "VpcAttributes": {"VpcId": "", "VSwitchId": "", "NatIpAddress": "", "PrivateIpAddress": {"IpAddress": []}},
            "SecurityGroupIds": {"SecurityGroupId": ["sg-bp1"]},
            "Tags": {"Tag": []},
            "InstanceChargeType": "PostPaid",
            "SpotStrategy": "NoSpot",
            "CreationTime": "2019-11-11T08:35Z",
            "ExpiredTime": "2099-12-31T15:59Z",
            "KeyPairName": "",
            "SerialNumber": ""
        }));
        assert_eq!(h.status, HostStatus::Stopped);
        assert_eq!(h.os_type, OsType::Windows);
        assert_eq!(
            h.public_ips,
            vec!["121.40.1.2"],
            "an empty EIP adds nothing"
        );
        assert_eq!(
            h.private_ips,
            vec!["10.80.1.2"],
            "classic network: InnerIpAddress"
        );
        assert_eq!(h.pay_mode, PayMode::Postpaid);
        assert_eq!(h.expire_at, None, "the 2099 sentinel means no expiry");
        assert_eq!(h.created_at, Some("2019-11-11T08:35:00Z".parse().unwrap()));
        assert_eq!((h.gpu_count, h.gpu_spec), (Some(0), None));
        assert_eq!(h.vpc_id, None);
        assert!(h.key_pairs.is_empty() && h.serial_number.is_none() && h.tags.is_empty());
        assert_eq!(h.extra["InstanceNetworkType"], json!("classic"));
    }

    #[test]
    fn spot_locked_instance_with_nic_only_addresses() {
        let h = host(json!({
            "InstanceId": "i-spot0001",
            "Status": "Starting",
            "InstanceChargeType": "PostPaid",
            "SpotStrategy": "SpotAsPriceGo",
            "VpcAttributes": {"VpcId": "vpc-1", "PrivateIpAddress": {"IpAddress": []}},
            "NetworkInterfaces": {"NetworkInterface": [
                {"Type": "Secondary", "PrimaryIpAddress": "192.168.9.9"},
                {"Type": "Primary", "PrimaryIpAddress": "192.168.1.5"}
            ]},
            "OperationLocks": {"LockReason": [{"LockReason": "financial"}, {"LockReason": "security", "LockMsg": "x"}]},
            "CreationTime": "2024-05-06T07:08:09Z",
            "ExpiredTime": ""
        }));
        assert_eq!(h.status, HostStatus::Starting);
        assert_eq!(h.pay_mode, PayMode::Spot);
        assert_eq!(h.extra["SpotStrategy"], json!("SpotAsPriceGo"));
        assert_eq!(
            h.private_ips,
            vec!["192.168.1.5"],
            "the primary NIC's address"
        );
        assert_eq!(h.extra["OperationLocks"], json!(["financial", "security"]));
        assert_eq!(h.created_at, Some("2024-05-06T07:08:09Z".parse().unwrap()));
        assert_eq!(h.expire_at, None, "an empty ExpiredTime is no expiry");
        assert_eq!(h.name, "");
    }

    #[test]
    fn statuses_and_pay_modes_normalize_keeping_the_raw_word() {
        for (raw, expected) in [
            ("Pending", HostStatus::Pending),
            ("Starting", HostStatus::Starting),
            ("Running", HostStatus::Running),
            ("Stopping", HostStatus::Stopping),
            ("Stopped", HostStatus::Stopped),
            ("Expired", HostStatus::Unknown),
            ("", HostStatus::Unknown),
        ] {
            assert_eq!(status(raw), expected, "{raw}");
            let h = host(json!({"InstanceId": "i-1", "Status": raw}));
            assert_eq!(h.raw_status, raw);
        }
        assert_eq!(pay_mode("PrePaid", "NoSpot"), PayMode::Prepaid);
        assert_eq!(pay_mode("PostPaid", ""), PayMode::Postpaid);
        assert_eq!(pay_mode("PostPaid", "SpotWithPriceLimit"), PayMode::Spot);
        assert_eq!(pay_mode("Mystery", ""), PayMode::Unknown);
    }

    #[test]
    fn times_of_both_precisions_parse_and_bad_ones_name_the_field() {
        assert_eq!(
            parse_time("2017-12-10T04:04Z").unwrap(),
            Some("2017-12-10T04:04:00Z".parse().unwrap())
        );
        assert_eq!(
            parse_time("2017-12-10T04:04:05Z").unwrap(),
            Some("2017-12-10T04:04:05Z".parse().unwrap())
        );
        assert_eq!(parse_time("").unwrap(), None);
        assert!(parse_time("yesterday").is_err());
        let v = json!({"InstanceId": "i-bad", "CreationTime": "10/12/2017"});
        let instance: Instance<'_> = decode(&v).unwrap();
        let e = to_host(instance, "r", "RID-9").unwrap_err();
        assert_eq!(e.kind(), cmdb_core::ErrorKind::Decode);
        assert!(e.message().contains("CreationTime"), "{e}");
        assert!(e.message().contains("RID-9"), "{e}");
        assert!(e.message().contains("i-bad"), "{e}");
    }

    #[test]
    fn expiry_from_2099_12_31_on_means_none() {
        let bound: DateTime<Utc> = "2099-12-31T00:00:00Z".parse().unwrap();
        assert_eq!(bound.timestamp(), NO_EXPIRY_FROM);
        for (expired, kept) in [
            ("2099-12-30T23:59:59Z", true),
            ("2099-12-30T23:59Z", true),
            ("2099-12-31T00:00:00Z", false),
            ("2099-12-31T00:00Z", false),
            ("2099-12-31T15:59Z", false),
            ("2100-01-01T00:00:00Z", false),
        ] {
            let h = host(json!({"InstanceId": "i-1", "ExpiredTime": expired}));
            assert_eq!(h.expire_at.is_some(), kept, "{expired}");
        }
    }

    #[test]
    fn public_ips_dedupe_and_empty_ids_fail() {
        let h = host(json!({
            "InstanceId": "i-dup",
            "PublicIpAddress": {"IpAddress": ["1.2.3.4"]},
            "EipAddress": {"IpAddress": "1.2.3.4"}
        }));
        assert_eq!(h.public_ips, vec!["1.2.3.4"]);
        let v = json!({"InstanceName": "x"});
        let instance: Instance<'_> = decode(&v).unwrap();
        let e = to_host(instance, "r", "RID").unwrap_err();
        assert!(e.message().contains("InstanceId"), "{e}");
    }

    #[test]
    fn every_documented_rds_status_normalizes() {
        for (raw, want) in [
            ("Creating", DatabaseStatus::Creating),
            ("GuardDBInstanceCreating", DatabaseStatus::Creating),
            ("INS_CLONING", DatabaseStatus::Creating),
            ("Running", DatabaseStatus::Running),
            ("DBInstanceClassChanging", DatabaseStatus::Modifying),
            ("EngineVersionUpgrading", DatabaseStatus::Modifying),
            ("DBInstanceNetTypeChanging", DatabaseStatus::Modifying),
            ("TRANSING", DatabaseStatus::Modifying),
            ("TransingToOthers", DatabaseStatus::Modifying),
            ("GuardSwitching", DatabaseStatus::Modifying),
            ("Rebooting", DatabaseStatus::Rebooting),
            ("Restoring", DatabaseStatus::Restoring),
            ("Importing", DatabaseStatus::Restoring),
            ("ImportingFromOthers", DatabaseStatus::Restoring),
            ("Deleting", DatabaseStatus::Deleting),
            ("Released", DatabaseStatus::Released),
            ("Hibernating", DatabaseStatus::Unknown),
        ] {
            assert_eq!(database_status(raw), want, "{raw}");
        }
    }

    #[test]
    fn an_rds_instance_needs_an_id_and_numbers_where_numbers_are() {
        let db = |v: Value| to_database(serde_json::from_value(v).unwrap(), "cn-hangzhou", "R");
        let e = db(json!({"Engine": "MySQL"})).unwrap_err();
        assert!(e.message().contains("DBInstanceId"), "{e}");
        let e = db(json!({"DBInstanceId": "rm-1", "CreateTime": "yesterday"})).unwrap_err();
        assert!(e.message().contains("CreateTime") && e.message().contains("request id R"));
        let ok = db(
            json!({"DBInstanceId": "rm-1", "DBInstanceCPU": "", "ExpireTime": "",
            "PayType": "Prepaid", "Engine": "PostgreSQL", "VpcId": ""}),
        )
        .unwrap();
        assert_eq!((ok.cpu, ok.expire_at, ok.vpc_id), (None, None, None));
        assert_eq!(
            (ok.pay_mode, ok.engine),
            (PayMode::Prepaid, DatabaseEngine::PostgreSql)
        );
    }
}
