//! Serde DTOs of the ECS API (version 2014-05-26), exactly as the JSON comes: every list
//! is wrapped in an object, empty strings stand for absent values.
//!
//! Reference: ECS API "DescribeInstances" and "DescribeRegions" (help.aliyun.com /
//! alibabacloud.com, ECS API reference), checked against the documentation's examples.

use serde::Deserialize;
use serde_json::Value;

/// The body of a `DescribeInstances` answer. Instances are kept as raw JSON here and
/// decoded one by one, so that a malformed instance names itself.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct DescribeInstancesResponse {
    pub(crate) request_id: String,
    pub(crate) total_count: Option<u64>,
    pub(crate) next_token: Option<String>,
    pub(crate) instances: Option<InstanceList>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct InstanceList {
    #[serde(rename = "Instance")]
    pub(crate) instance: Vec<Value>,
}

/// Only the `NextToken` of a `DescribeInstances` answer: read to send the next request
/// before the instances are decoded. Everything else is skipped without being built.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct NextTokenOnly {
    pub(crate) next_token: Option<String>,
}

/// [`DescribeInstancesResponse`] with its instances decoded in the same pass: the fast
/// path, for answers that fit the schema.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct TypedDescribeInstancesResponse {
    pub(crate) request_id: String,
    pub(crate) total_count: Option<u64>,
    pub(crate) next_token: Option<String>,
    pub(crate) instances: Option<TypedInstanceList>,
}

/// `Instances` of [`TypedDescribeInstancesResponse`].
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TypedInstanceList {
    #[serde(rename = "Instance")]
    pub(crate) instance: Vec<Instance>,
}

/// One instance of `Instances.Instance[]`, the fields cmdb keeps.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Instance {
    #[serde(rename = "InstanceId")]
    pub(crate) instance_id: String,
    #[serde(rename = "InstanceName")]
    pub(crate) instance_name: String,
    #[serde(rename = "Description")]
    pub(crate) description: String,
    #[serde(rename = "HostName")]
    pub(crate) host_name: String,
    #[serde(rename = "RegionId")]
    pub(crate) region_id: String,
    #[serde(rename = "ZoneId")]
    pub(crate) zone_id: String,
    #[serde(rename = "Status")]
    pub(crate) status: String,
    #[serde(rename = "InstanceType")]
    pub(crate) instance_type: String,
    #[serde(rename = "Cpu")]
    pub(crate) cpu: Option<u32>,
    /// MiB.
    #[serde(rename = "Memory")]
    pub(crate) memory: Option<u64>,
    #[serde(rename = "GPUAmount")]
    pub(crate) gpu_amount: Option<u32>,
    #[serde(rename = "GPUSpec")]
    pub(crate) gpu_spec: String,
    #[serde(rename = "OSType")]
    pub(crate) os_type: String,
    #[serde(rename = "OSName")]
    pub(crate) os_name: String,
    #[serde(rename = "OSNameEn")]
    pub(crate) os_name_en: String,
    #[serde(rename = "ImageId")]
    pub(crate) image_id: String,
    #[serde(rename = "InstanceNetworkType")]
    pub(crate) instance_network_type: String,
    #[serde(rename = "PublicIpAddress")]
    pub(crate) public_ip_address: IpAddressList,
    #[serde(rename = "InnerIpAddress")]
    pub(crate) inner_ip_address: IpAddressList,
    #[serde(rename = "EipAddress")]
    pub(crate) eip_address: EipAddress,
    #[serde(rename = "VpcAttributes")]
    pub(crate) vpc_attributes: VpcAttributes,
    #[serde(rename = "NetworkInterfaces")]
    pub(crate) network_interfaces: NetworkInterfaces,
    #[serde(rename = "SecurityGroupIds")]
    pub(crate) security_group_ids: SecurityGroupIds,
    #[serde(rename = "Tags")]
    pub(crate) tags: Tags,
    #[serde(rename = "OperationLocks")]
    pub(crate) operation_locks: OperationLocks,
    #[serde(rename = "InstanceChargeType")]
    pub(crate) instance_charge_type: String,
    #[serde(rename = "SpotStrategy")]
    pub(crate) spot_strategy: String,
    #[serde(rename = "CreationTime")]
    pub(crate) creation_time: String,
    #[serde(rename = "ExpiredTime")]
    pub(crate) expired_time: String,
    #[serde(rename = "KeyPairName")]
    pub(crate) key_pair_name: String,
    #[serde(rename = "SerialNumber")]
    pub(crate) serial_number: String,
    #[serde(rename = "ResourceGroupId")]
    pub(crate) resource_group_id: String,
}

/// `{"IpAddress": [..]}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct IpAddressList {
    #[serde(rename = "IpAddress")]
    pub(crate) ip_address: Vec<String>,
}

/// `EipAddress`: its `IpAddress` is a plain string, `""` when none.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EipAddress {
    #[serde(rename = "IpAddress")]
    pub(crate) ip_address: String,
    #[serde(rename = "AllocationId")]
    pub(crate) allocation_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct VpcAttributes {
    #[serde(rename = "VpcId")]
    pub(crate) vpc_id: String,
    #[serde(rename = "VSwitchId")]
    pub(crate) v_switch_id: String,
    #[serde(rename = "PrivateIpAddress")]
    pub(crate) private_ip_address: IpAddressList,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NetworkInterfaces {
    #[serde(rename = "NetworkInterface")]
    pub(crate) network_interface: Vec<NetworkInterface>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NetworkInterface {
    #[serde(rename = "Type")]
    pub(crate) kind: String,
    #[serde(rename = "PrimaryIpAddress")]
    pub(crate) primary_ip_address: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SecurityGroupIds {
    #[serde(rename = "SecurityGroupId")]
    pub(crate) security_group_id: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Tags {
    #[serde(rename = "Tag")]
    pub(crate) tag: Vec<Tag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Tag {
    #[serde(rename = "TagKey")]
    pub(crate) tag_key: String,
    #[serde(rename = "TagValue")]
    pub(crate) tag_value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct OperationLocks {
    #[serde(rename = "LockReason")]
    pub(crate) lock_reason: Vec<LockReason>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LockReason {
    #[serde(rename = "LockReason")]
    pub(crate) lock_reason: String,
    #[serde(rename = "LockMsg")]
    pub(crate) lock_msg: String,
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

/// Decodes `value` into `T` (a struct whose fields all have defaults). On failure it
/// also answers which top-level field broke it, found by decoding each field alone.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    value: &Value,
) -> Result<T, (Option<String>, serde_json::Error)> {
    match T::deserialize(value) {
        Ok(t) => Ok(t),
        Err(e) => {
            let field = value.as_object().and_then(|object| {
                object
                    .iter()
                    .find(|(k, v)| {
                        let mut single = serde_json::Map::new();
                        single.insert((*k).clone(), (*v).clone());
                        T::deserialize(&Value::Object(single)).is_err()
                    })
                    .map(|(k, _)| k.clone())
            });
            Err((field, e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_names_the_broken_field() {
        let v = serde_json::json!({"InstanceId": "i-1", "Cpu": "two", "Memory": 1024});
        let (field, _) = decode::<Instance>(&v).unwrap_err();
        assert_eq!(field.as_deref(), Some("Cpu"));
        let v = serde_json::json!({"InstanceId": "i-1", "Tags": {"Tag": "x"}});
        let (field, _) = decode::<Instance>(&v).unwrap_err();
        assert_eq!(field.as_deref(), Some("Tags"));
        let ok: Instance = decode(&serde_json::json!({"InstanceId": "i-1", "Unknown": 1})).unwrap();
        assert_eq!(ok.instance_id, "i-1");
    }
}
