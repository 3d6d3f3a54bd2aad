//! Serde DTOs of the ECS API (version 2014-05-26), exactly as the JSON comes: every list
//! is wrapped in an object, empty strings stand for absent values.
//!
//! Reference: ECS API "DescribeInstances" and "DescribeRegions" (help.aliyun.com /
//! alibabacloud.com, ECS API reference), checked against the documentation's examples;
//! RDS API "DescribeDBInstances" (version 2014-08-15).

use serde::Deserialize;
use serde_json::value::RawValue;

/// The body of a `DescribeInstances` answer. Each instance is kept raw and decoded on its
/// own ([`cmdb_http::map_records`]), so that one malformed instance is a failed record
/// naming itself, not the loss of the page.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct DescribeInstancesResponse<'a> {
    pub(crate) request_id: String,
    pub(crate) total_count: Option<u64>,
    pub(crate) next_token: Option<String>,
    #[serde(borrow)]
    pub(crate) instances: Option<InstanceList<'a>>,
}

/// `Instances` of [`DescribeInstancesResponse`].
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct InstanceList<'a> {
    #[serde(rename = "Instance", borrow)]
    pub(crate) instance: Vec<&'a RawValue>,
}

/// A JSON string borrowed from the answer unless it has escapes.
pub(crate) use cmdb_http::JsonText as Text;

/// One instance of `Instances.Instance[]`, the fields cmdb keeps.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Instance<'a> {
    #[serde(rename = "InstanceId", borrow)]
    pub(crate) instance_id: Text<'a>,
    #[serde(rename = "InstanceName", borrow)]
    pub(crate) instance_name: Text<'a>,
    #[serde(rename = "Description", borrow)]
    pub(crate) description: Text<'a>,
    #[serde(rename = "HostName", borrow)]
    pub(crate) host_name: Text<'a>,
    #[serde(rename = "RegionId", borrow)]
    pub(crate) region_id: Text<'a>,
    #[serde(rename = "ZoneId", borrow)]
    pub(crate) zone_id: Text<'a>,
    #[serde(rename = "Status", borrow)]
    pub(crate) status: Text<'a>,
    #[serde(rename = "InstanceType", borrow)]
    pub(crate) instance_type: Text<'a>,
    #[serde(rename = "Cpu")]
    pub(crate) cpu: Option<u32>,
    /// MiB.
    #[serde(rename = "Memory")]
    pub(crate) memory: Option<u64>,
    #[serde(rename = "GPUAmount")]
    pub(crate) gpu_amount: Option<u32>,
    #[serde(rename = "GPUSpec", borrow)]
    pub(crate) gpu_spec: Text<'a>,
    #[serde(rename = "OSType", borrow)]
    pub(crate) os_type: Text<'a>,
    #[serde(rename = "OSName", borrow)]
    pub(crate) os_name: Text<'a>,
    #[serde(rename = "OSNameEn", borrow)]
    pub(crate) os_name_en: Text<'a>,
    #[serde(rename = "ImageId", borrow)]
    pub(crate) image_id: Text<'a>,
    #[serde(rename = "InstanceNetworkType", borrow)]
    pub(crate) instance_network_type: Text<'a>,
    #[serde(rename = "PublicIpAddress", borrow)]
    pub(crate) public_ip_address: IpAddressList<'a>,
    #[serde(rename = "InnerIpAddress", borrow)]
    pub(crate) inner_ip_address: IpAddressList<'a>,
    #[serde(rename = "EipAddress", borrow)]
    pub(crate) eip_address: EipAddress<'a>,
    #[serde(rename = "VpcAttributes", borrow)]
    pub(crate) vpc_attributes: VpcAttributes<'a>,
    #[serde(rename = "NetworkInterfaces", borrow)]
    pub(crate) network_interfaces: NetworkInterfaces<'a>,
    #[serde(rename = "SecurityGroupIds", borrow)]
    pub(crate) security_group_ids: SecurityGroupIds<'a>,
    #[serde(rename = "Tags", borrow)]
    pub(crate) tags: Tags<'a>,
    #[serde(rename = "OperationLocks", borrow)]
    pub(crate) operation_locks: OperationLocks<'a>,
    #[serde(rename = "InstanceChargeType", borrow)]
    pub(crate) instance_charge_type: Text<'a>,
    #[serde(rename = "SpotStrategy", borrow)]
    pub(crate) spot_strategy: Text<'a>,
    #[serde(rename = "CreationTime", borrow)]
    pub(crate) creation_time: Text<'a>,
    #[serde(rename = "ExpiredTime", borrow)]
    pub(crate) expired_time: Text<'a>,
    #[serde(rename = "KeyPairName", borrow)]
    pub(crate) key_pair_name: Text<'a>,
    #[serde(rename = "SerialNumber", borrow)]
    pub(crate) serial_number: Text<'a>,
    #[serde(rename = "ResourceGroupId", borrow)]
    pub(crate) resource_group_id: Text<'a>,
}

/// `{"IpAddress": [..]}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct IpAddressList<'a> {
    #[serde(rename = "IpAddress", borrow)]
    pub(crate) ip_address: Vec<Text<'a>>,
}

/// `EipAddress`: its `IpAddress` is a plain string, `""` when none.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EipAddress<'a> {
    #[serde(rename = "IpAddress", borrow)]
    pub(crate) ip_address: Text<'a>,
    #[serde(rename = "AllocationId", borrow)]
    pub(crate) allocation_id: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct VpcAttributes<'a> {
    #[serde(rename = "VpcId", borrow)]
    pub(crate) vpc_id: Text<'a>,
    #[serde(rename = "VSwitchId", borrow)]
    pub(crate) v_switch_id: Text<'a>,
    #[serde(rename = "PrivateIpAddress", borrow)]
    pub(crate) private_ip_address: IpAddressList<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NetworkInterfaces<'a> {
    #[serde(rename = "NetworkInterface", borrow)]
    pub(crate) network_interface: Vec<NetworkInterface<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NetworkInterface<'a> {
    #[serde(rename = "Type", borrow)]
    pub(crate) kind: Text<'a>,
    #[serde(rename = "PrimaryIpAddress", borrow)]
    pub(crate) primary_ip_address: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SecurityGroupIds<'a> {
    #[serde(rename = "SecurityGroupId", borrow)]
    pub(crate) security_group_id: Vec<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Tags<'a> {
    #[serde(rename = "Tag", borrow)]
    pub(crate) tag: Vec<Tag<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Tag<'a> {
    #[serde(rename = "TagKey", borrow)]
    pub(crate) tag_key: Text<'a>,
    #[serde(rename = "TagValue", borrow)]
    pub(crate) tag_value: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct OperationLocks<'a> {
    #[serde(rename = "LockReason", borrow)]
    pub(crate) lock_reason: Vec<LockReason<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LockReason<'a> {
    #[serde(rename = "LockReason", borrow)]
    pub(crate) lock_reason: Text<'a>,
    #[serde(rename = "LockMsg", borrow)]
    pub(crate) lock_msg: Text<'a>,
}

/// The body of a `DescribeRegions` answer.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct DescribeRegionsResponse {
    pub(crate) request_id: String,
    pub(crate) regions: RegionList,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RegionList {
    #[serde(rename = "Region")]
    pub(crate) region: Vec<RegionDto>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RegionDto {
    #[serde(rename = "RegionId")]
    pub(crate) region_id: String,
    #[serde(rename = "RegionEndpoint")]
    pub(crate) region_endpoint: String,
    #[serde(rename = "LocalName")]
    pub(crate) local_name: String,
}

/// The body of an RDS `DescribeDBInstances` answer (version 2014-08-15): the instances in
/// `Items.DBInstance[]`, each kept raw and decoded on its own as ECS instances are.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct DescribeDbInstancesResponse<'a> {
    pub(crate) request_id: String,
    pub(crate) total_record_count: Option<u64>,
    pub(crate) next_token: Option<String>,
    #[serde(borrow)]
    pub(crate) items: Option<DbInstanceList<'a>>,
}

/// `Items` of [`DescribeDbInstancesResponse`].
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DbInstanceList<'a> {
    #[serde(rename = "DBInstance", borrow)]
    pub(crate) db_instance: Vec<&'a RawValue>,
}

/// One instance of `Items.DBInstance[]`, the fields cmdb keeps. Empty strings stand for
/// absent values (`ExpireTime` of a pay-as-you-go instance, `VpcId` of a classic one).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DbInstance {
    #[serde(rename = "DBInstanceId")]
    pub(crate) id: Option<String>,
    #[serde(rename = "DBInstanceDescription")]
    pub(crate) description: Option<String>,
    #[serde(rename = "Engine")]
    pub(crate) engine: Option<String>,
    #[serde(rename = "EngineVersion")]
    pub(crate) engine_version: Option<String>,
    #[serde(rename = "DBInstanceStatus")]
    pub(crate) status: Option<String>,
    #[serde(rename = "DBInstanceClass")]
    pub(crate) class: Option<String>,
    /// vCPUs, as a string.
    #[serde(rename = "DBInstanceCPU")]
    pub(crate) cpu: Option<String>,
    /// MB.
    #[serde(rename = "DBInstanceMemory")]
    pub(crate) memory: Option<u64>,
    #[serde(rename = "DBInstanceStorageType")]
    pub(crate) storage_type: Option<String>,
    /// Primary, Readonly, Guard or Temp.
    #[serde(rename = "DBInstanceType")]
    pub(crate) kind: Option<String>,
    /// Internet or Intranet: where `ConnectionString` is reached from.
    #[serde(rename = "DBInstanceNetType")]
    pub(crate) net_type: Option<String>,
    #[serde(rename = "InstanceNetworkType")]
    pub(crate) network_type: Option<String>,
    #[serde(rename = "ConnectionString")]
    pub(crate) connection_string: Option<String>,
    #[serde(rename = "Category")]
    pub(crate) category: Option<String>,
    #[serde(rename = "PayType")]
    pub(crate) pay_type: Option<String>,
    #[serde(rename = "CreateTime")]
    pub(crate) create_time: Option<String>,
    #[serde(rename = "ExpireTime")]
    pub(crate) expire_time: Option<String>,
    #[serde(rename = "ZoneId")]
    pub(crate) zone_id: Option<String>,
    #[serde(rename = "VpcId")]
    pub(crate) vpc_id: Option<String>,
    #[serde(rename = "VSwitchId")]
    pub(crate) vswitch_id: Option<String>,
    #[serde(rename = "ResourceGroupId")]
    pub(crate) resource_group_id: Option<String>,
    #[serde(rename = "MasterInstanceId")]
    pub(crate) master_instance_id: Option<String>,
    #[serde(rename = "ReadOnlyDBInstanceIds")]
    pub(crate) read_only_ids: Option<ReadOnlyIds>,
    #[serde(rename = "LockMode")]
    pub(crate) lock_mode: Option<String>,
}

/// `ReadOnlyDBInstanceIds`: `{"ReadOnlyDBInstanceId": [{"DBInstanceId": ..}]}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ReadOnlyIds {
    #[serde(rename = "ReadOnlyDBInstanceId")]
    pub(crate) ids: Vec<ReadOnlyId>,
}

/// One entry of [`ReadOnlyIds`].
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ReadOnlyId {
    #[serde(rename = "DBInstanceId")]
    pub(crate) id: Option<String>,
}

/// Only the `RequestId` of an answer, to name it when the rest does not decode.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct RequestIdOnly {
    pub(crate) request_id: Option<String>,
}

/// The error envelope `{RequestId, HostId, Code, Message, Recommend}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct ErrorBody {
    pub(crate) request_id: Option<String>,
    pub(crate) host_id: Option<String>,
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) recommend: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn strings_borrow_from_the_answer_unless_escaped() {
        let body = r#"{"Instances": {"Instance": [{
            "InstanceId": "i-1", "InstanceName": "web \"01\"", "HostName": "caf\u00e9",
            "PublicIpAddress": {"IpAddress": ["1.2.3.4", "5.6.7.\u0038"]},
            "Tags": {"Tag": [{"TagKey": "env", "TagValue": "prod"}]}
        }]}}"#;
        let answer: DescribeInstancesResponse<'_> = serde_json::from_str(body).unwrap();
        let raw = answer.instances.unwrap().instance[0];
        let instance: Instance<'_> = serde_json::from_str(raw.get()).unwrap();
        let instance = &instance;
        assert!(matches!(instance.instance_id.0, Cow::Borrowed("i-1")));
        assert!(matches!(&instance.instance_name.0, Cow::Owned(s) if s == "web \"01\""));
        assert!(matches!(&instance.host_name.0, Cow::Owned(s) if s == "café"));
        let ips = &instance.public_ip_address.ip_address;
        assert!(matches!(ips[0].0, Cow::Borrowed("1.2.3.4")));
        assert!(matches!(&ips[1].0, Cow::Owned(s) if s == "5.6.7.8"));
        assert!(matches!(
            instance.tags.tag[0].tag_value.0,
            Cow::Borrowed("prod")
        ));
        assert!(matches!(instance.description.0, Cow::Owned(ref s) if s.is_empty()));
    }

    #[test]
    fn non_empty_trims_and_moves_what_it_can() {
        let text = |s: &'static str| Text(Cow::Borrowed(s));
        assert_eq!(text("  a b \t").non_empty().as_deref(), Some("a b"));
        assert_eq!(text("x").non_empty().as_deref(), Some("x"));
        assert_eq!(text(" \n ").non_empty(), None);
        assert_eq!(text("").non_empty(), None);
        assert_eq!(
            Text(Cow::Owned(" y ".into())).non_empty().as_deref(),
            Some("y")
        );
        let owned = String::from("moved");
        let at = owned.as_ptr();
        let kept = Text(Cow::Owned(owned)).non_empty().unwrap();
        assert_eq!((kept.as_str(), kept.as_ptr()), ("moved", at));
        assert_eq!(text(" kept as is ").into_string(), " kept as is ");
    }
}
