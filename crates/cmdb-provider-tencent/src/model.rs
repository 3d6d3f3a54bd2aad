//! Serde DTOs, exactly Tencent Cloud's JSON (field names as the API spells them).
//!
//! Checked against the official Go SDK's `tencentcloud/cvm/v20170312/models.go`
//! (`Instance`, `Placement`, `GPUInfo`, `DescribeInstancesResponseParams`) and
//! `tencentcloud/region/v20220627/models.go` (`RegionInfo`). Every field is optional:
//! the API documents many as "may return null", and what is required for cmdb is checked
//! when mapping, with an error naming the field.
//!
//! The instances of `DescribeInstances` borrow their strings from the answer (unless a
//! string has escapes): most are only looked at, or copied once into the host, so
//! decoding each into a `String` of its own was an allocation (and a copy) wasted.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `{"Response": {...}}`, the envelope of every answer.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<T> {
    #[serde(rename = "Response")]
    pub(crate) response: T,
}

/// `Response.Error` of a failed call (which still has HTTP 200).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ApiError {
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
}

/// The part of every `Response` that says whether it failed.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ErrorResponse {
    pub(crate) error: Option<ApiError>,
    pub(crate) request_id: Option<String>,
}

/// The body of `DescribeInstances` (CVM 2017-03-12).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeInstancesRequest {
    pub(crate) offset: u64,
    pub(crate) limit: u64,
}

/// The body of `DescribeInstances` looking instances up by id (at most 100).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeInstancesByIdsRequest<'a> {
    pub(crate) instance_ids: &'a [String],
    pub(crate) limit: u64,
}

/// `Response` of `DescribeInstances`. Each instance is kept raw and decoded on its own
/// ([`cmdb_http::map_records`]), so that one malformed instance is a failed record naming
/// itself, not the loss of the page.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeInstancesResponse<'a> {
    pub(crate) total_count: Option<u64>,
    pub(crate) request_id: Option<String>,
    #[serde(borrow)]
    pub(crate) instance_set: Option<Vec<&'a RawValue>>,
}

/// The body of CDB `DescribeDBInstances` (2017-03-20): one page, `Offset` from 0.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeDbInstancesRequest {
    pub(crate) offset: u64,
    pub(crate) limit: u64,
}

/// The body of CDB `DescribeDBInstances` looking instances up by id.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeDbInstancesByIdsRequest<'a> {
    pub(crate) instance_ids: &'a [String],
    pub(crate) limit: u64,
}

/// `Response` of CDB `DescribeDBInstances`; each instance of `Items` is kept raw and
/// decoded on its own, as CVM instances are.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeDbInstancesResponse<'a> {
    pub(crate) total_count: Option<u64>,
    pub(crate) request_id: Option<String>,
    #[serde(borrow)]
    pub(crate) items: Option<Vec<&'a RawValue>>,
}

/// One CDB instance of `Items`, the fields cmdb keeps (checked against the official
/// example output of `DescribeDBInstances`). Every field may be null.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DbInstance {
    pub(crate) instance_id: Option<String>,
    pub(crate) instance_name: Option<String>,
    pub(crate) zone: Option<String>,
    /// 0 creating, 1 running, 4 isolating, 5 isolated.
    pub(crate) status: Option<i64>,
    pub(crate) task_status: Option<i64>,
    pub(crate) vip: Option<String>,
    pub(crate) vport: Option<u16>,
    /// 1 while the public endpoint is on.
    pub(crate) wan_status: Option<i64>,
    pub(crate) wan_domain: Option<String>,
    pub(crate) wan_port: Option<u16>,
    pub(crate) cpu: Option<u32>,
    /// MB.
    pub(crate) memory: Option<u64>,
    /// GB.
    pub(crate) volume: Option<u64>,
    pub(crate) engine_version: Option<String>,
    pub(crate) device_type: Option<String>,
    pub(crate) disk_type: Option<String>,
    /// 1 primary, 2 disaster recovery, 3 read-only.
    pub(crate) instance_type: Option<i64>,
    /// 0 prepaid, 1 postpaid.
    pub(crate) pay_type: Option<i64>,
    /// China Standard Time, no offset.
    pub(crate) create_time: Option<String>,
    /// China Standard Time, no offset; `0000-00-00 00:00:00` when none.
    pub(crate) deadline_time: Option<String>,
    pub(crate) project_id: Option<i64>,
    pub(crate) uniq_vpc_id: Option<String>,
    pub(crate) uniq_subnet_id: Option<String>,
    pub(crate) master_info: Option<MasterInfo>,
    pub(crate) tag_list: Option<Vec<CdbTag>>,
}

/// `MasterInfo` of a read-only or disaster-recovery instance.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct MasterInfo {
    pub(crate) instance_id: Option<String>,
}

/// One entry of `TagList`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CdbTag {
    pub(crate) tag_key: Option<String>,
    pub(crate) tag_value: Option<String>,
}

/// The body of `DescribeRegions` (region 2022-06-27).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeRegionsRequest<'a> {
    pub(crate) product: &'a str,
}

/// `Response` of `DescribeRegions`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeRegionsResponse {
    #[serde(default)]
    pub(crate) region_set: Option<Vec<RegionInfo>>,
}

/// One entry of `RegionSet`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RegionInfo {
    pub(crate) region: Option<String>,
    pub(crate) region_name: Option<String>,
    pub(crate) region_state: Option<String>,
}

/// A JSON string borrowed from the answer unless it has escapes.
pub(crate) use cmdb_http::JsonText as Text;

/// One CVM instance of `InstanceSet`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Instance<'a> {
    #[serde(borrow)]
    pub(crate) instance_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) instance_name: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) instance_state: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) instance_type: Option<Text<'a>>,
    #[serde(rename = "CPU")]
    pub(crate) cpu: Option<u32>,
    /// GiB.
    pub(crate) memory: Option<u64>,
    #[serde(borrow)]
    pub(crate) placement: Option<Placement<'a>>,
    #[serde(borrow)]
    pub(crate) restrict_state: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) instance_charge_type: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) private_ip_addresses: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    pub(crate) public_ip_addresses: Option<Vec<Text<'a>>>,
    #[serde(rename = "IPv6Addresses", borrow)]
    pub(crate) ipv6_addresses: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    pub(crate) virtual_private_cloud: Option<VirtualPrivateCloud<'a>>,
    #[serde(borrow)]
    pub(crate) image_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) created_time: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) expired_time: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) os_name: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) security_group_ids: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    pub(crate) login_settings: Option<LoginSettings<'a>>,
    #[serde(borrow)]
    pub(crate) tags: Option<Vec<Tag<'a>>>,
    #[serde(borrow)]
    pub(crate) uuid: Option<Text<'a>>,
    #[serde(rename = "GPUInfo", borrow)]
    pub(crate) gpu_info: Option<GpuInfo<'a>>,
    #[serde(borrow)]
    pub(crate) isolated_source: Option<Text<'a>>,
}

/// `Instance.Placement`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Placement<'a> {
    #[serde(borrow)]
    pub(crate) zone: Option<Text<'a>>,
    pub(crate) project_id: Option<i64>,
}

/// `Instance.VirtualPrivateCloud`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct VirtualPrivateCloud<'a> {
    #[serde(borrow)]
    pub(crate) vpc_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) subnet_id: Option<Text<'a>>,
}

/// `Instance.LoginSettings` (only the key ids are ever returned; passwords never are).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct LoginSettings<'a> {
    #[serde(borrow)]
    pub(crate) key_ids: Option<Vec<Text<'a>>>,
}

/// One of `Instance.Tags`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Tag<'a> {
    #[serde(borrow)]
    pub(crate) key: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) value: Option<Text<'a>>,
}

/// `Instance.GPUInfo`: `GPUCount` is a float, below 1 for a vGPU share.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct GpuInfo<'a> {
    #[serde(rename = "GPUCount")]
    pub(crate) gpu_count: Option<f64>,
    #[serde(rename = "GPUType", borrow)]
    pub(crate) gpu_type: Option<Text<'a>>,
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::json;

    use super::*;

    #[test]
    fn strings_borrow_from_the_answer_unless_escaped() {
        let body = r#"{"Response": {"TotalCount": 1, "RequestId": "r-1", "InstanceSet": [{
            "InstanceId": "ins-1", "InstanceName": "web \"01\"", "OsName": "caf\u00e9",
            "PrivateIpAddresses": ["10.0.0.1", "10.0.0.\u0032"],
            "Placement": {"Zone": "ap-guangzhou-3", "ProjectId": 0},
            "Tags": [{"Key": "env", "Value": "prod"}], "Uuid": null
        }]}}"#;
        let answer: Envelope<DescribeInstancesResponse<'_>> = serde_json::from_str(body).unwrap();
        let r = answer.response;
        assert_eq!(
            (r.total_count, r.request_id.as_deref()),
            (Some(1), Some("r-1"))
        );
        let raw = r.instance_set.unwrap()[0];
        let i: Instance<'_> = serde_json::from_str(raw.get()).unwrap();
        assert!(matches!(i.instance_id, Some(Text(Cow::Borrowed("ins-1")))));
        assert!(matches!(&i.instance_name, Some(Text(Cow::Owned(s))) if s == "web \"01\""));
        assert!(matches!(&i.os_name, Some(Text(Cow::Owned(s))) if s == "café"));
        let ips = i.private_ip_addresses.as_ref().unwrap();
        assert!(matches!(ips[0].0, Cow::Borrowed("10.0.0.1")));
        assert!(matches!(&ips[1].0, Cow::Owned(s) if s == "10.0.0.2"));
        let zone = i.placement.as_ref().and_then(|p| p.zone.as_ref());
        assert!(matches!(zone, Some(Text(Cow::Borrowed("ap-guangzhou-3")))));
        let tag = &i.tags.as_ref().unwrap()[0];
        assert!(matches!(tag.value, Some(Text(Cow::Borrowed("prod")))));
        assert_eq!(i.uuid, None);

        // The tree of the diagnosing path lends its strings too.
        let tree = json!({"InstanceId": "ins-2", "Tags": [{"Key": "k"}]});
        let i = Instance::deserialize(&tree).unwrap();
        assert!(matches!(i.instance_id, Some(Text(Cow::Borrowed("ins-2")))));
    }

    #[test]
    fn strings_are_refused_as_strings_were() {
        // The same message as a `String` field gave, so errors read as they did.
        let e = serde_json::from_str::<Instance<'_>>(r#"{"InstanceName": 3}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid type: integer `3`, expected a string at line 1 column 18"
        );
        let tree = json!({"Placement": {"Zone": ["a"]}});
        let e = Instance::deserialize(&tree).unwrap_err();
        assert_eq!(e.to_string(), "invalid type: sequence, expected a string");
    }

    #[test]
    fn blank_is_found_without_trimming_and_owned_strings_are_moved() {
        let text = |s: &'static str| Text(Cow::Borrowed(s));
        assert!(text("").is_blank());
        assert!(text(" \t\n\u{3000}").is_blank());
        assert!(!text(" a ").is_blank());
        assert_eq!(text(" kept as is ").into_string(), " kept as is ");
        assert_eq!(&*text("deref"), "deref");
        let owned = String::from("moved");
        let at = owned.as_ptr();
        let kept = Text(Cow::Owned(owned)).into_string();
        assert_eq!((kept.as_str(), kept.as_ptr()), ("moved", at));
    }
}
