//! Serde DTOs, exactly Tencent Cloud's JSON (field names as the API spells them).
//!
//! Checked against the official Go SDK's `tencentcloud/cvm/v20170312/models.go`
//! (`Instance`, `Placement`, `GPUInfo`, `DescribeInstancesResponseParams`) and
//! `tencentcloud/region/v20220627/models.go` (`RegionInfo`). Every field is optional:
//! the API documents many as "may return null", and what is required for cmdb is checked
//! when mapping, with an error naming the field.

use serde::{Deserialize, Serialize};

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

/// `Response` of `DescribeInstances`, instances decoded in the same pass (the fast path;
/// an answer that does not fit is decoded again field by field to say what is wrong).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeInstancesResponse {
    pub(crate) total_count: Option<u64>,
    pub(crate) request_id: Option<String>,
    pub(crate) instance_set: Option<Vec<Instance>>,
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

/// One CVM instance of `InstanceSet`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Instance {
    pub(crate) instance_id: Option<String>,
    pub(crate) instance_name: Option<String>,
    pub(crate) instance_state: Option<String>,
    pub(crate) instance_type: Option<String>,
    #[serde(rename = "CPU")]
    pub(crate) cpu: Option<u32>,
    /// GiB.
    pub(crate) memory: Option<u64>,
    pub(crate) placement: Option<Placement>,
    pub(crate) restrict_state: Option<String>,
    pub(crate) instance_charge_type: Option<String>,
    pub(crate) private_ip_addresses: Option<Vec<String>>,
    pub(crate) public_ip_addresses: Option<Vec<String>>,
    #[serde(rename = "IPv6Addresses")]
    pub(crate) ipv6_addresses: Option<Vec<String>>,
    pub(crate) virtual_private_cloud: Option<VirtualPrivateCloud>,
    pub(crate) image_id: Option<String>,
    pub(crate) created_time: Option<String>,
    pub(crate) expired_time: Option<String>,
    pub(crate) os_name: Option<String>,
    pub(crate) security_group_ids: Option<Vec<String>>,
    pub(crate) login_settings: Option<LoginSettings>,
    pub(crate) tags: Option<Vec<Tag>>,
    pub(crate) uuid: Option<String>,
    #[serde(rename = "GPUInfo")]
    pub(crate) gpu_info: Option<GpuInfo>,
    pub(crate) isolated_source: Option<String>,
}

/// `Instance.Placement`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Placement {
    pub(crate) zone: Option<String>,
    pub(crate) project_id: Option<i64>,
}

/// `Instance.VirtualPrivateCloud`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct VirtualPrivateCloud {
    pub(crate) vpc_id: Option<String>,
    pub(crate) subnet_id: Option<String>,
}

/// `Instance.LoginSettings` (only the key ids are ever returned; passwords never are).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct LoginSettings {
    pub(crate) key_ids: Option<Vec<String>>,
}

/// One of `Instance.Tags`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Tag {
    pub(crate) key: Option<String>,
    pub(crate) value: Option<String>,
}

/// `Instance.GPUInfo`: `GPUCount` is a float, below 1 for a vGPU share.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct GpuInfo {
    #[serde(rename = "GPUCount")]
    pub(crate) gpu_count: Option<f64>,
    #[serde(rename = "GPUType")]
    pub(crate) gpu_type: Option<String>,
}
