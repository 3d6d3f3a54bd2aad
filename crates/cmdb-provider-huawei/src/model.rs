//! Serde DTOs, exactly the JSON of Huawei Cloud's IAM and ECS APIs.
//!
//! Every field may be absent or `null`, and several come as a string or a number
//! depending on the API version (`flavor.vcpus`, `addresses[].version`), so every field
//! has a default and scalars are read leniently.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `null` as the type's default (serde's `default` only covers an absent field).
pub(crate) fn null_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

/// A string, a number or a boolean as a string; `null`, objects and arrays as `None`.
pub(crate) fn lenient_string<'de, D>(de: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(match Option::<Value>::deserialize(de)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    })
}

/// A number or a numeric string as `u64`; anything else as `None`.
fn lenient_u64<'de, D>(de: D) -> Result<Option<u64>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(match Option::<Value>::deserialize(de)? {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// `GET /v3/projects` (IAM KeystoneListProjects).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ProjectsResponse {
    #[serde(deserialize_with = "null_default")]
    pub(crate) projects: Vec<Project>,
}

/// One IAM project; a region's project is named after the region.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Project {
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) name: Option<String>,
}

/// `GET /v1/{project_id}/cloudservers/detail` (ECS ListServersDetails).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ServersResponse {
    /// Servers in the whole listing.
    #[serde(deserialize_with = "lenient_u64")]
    pub(crate) count: Option<u64>,
    #[serde(deserialize_with = "null_default")]
    pub(crate) servers: Vec<Server>,
}

/// One server of ListServersDetails.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Server {
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) name: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) description: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) status: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) created: Option<String>,
    #[serde(rename = "OS-SRV-USG:launched_at", deserialize_with = "lenient_string")]
    pub(crate) launched_at: Option<String>,
    #[serde(
        rename = "OS-EXT-AZ:availability_zone",
        deserialize_with = "lenient_string"
    )]
    pub(crate) availability_zone: Option<String>,
    #[serde(
        rename = "OS-EXT-SRV-ATTR:hostname",
        deserialize_with = "lenient_string"
    )]
    pub(crate) hostname: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub(crate) flavor: Flavor,
    #[serde(deserialize_with = "null_default")]
    pub(crate) image: Image,
    /// Values are strings in practice; anything else is kept as its JSON text.
    #[serde(deserialize_with = "null_default")]
    pub(crate) metadata: BTreeMap<String, Value>,
    /// Network id -> addresses on it.
    #[serde(deserialize_with = "null_default")]
    pub(crate) addresses: BTreeMap<String, Option<Vec<Address>>>,
    /// `"key=value"` strings (a bare `key` has an empty value); `{key, value}` objects
    /// are accepted too.
    #[serde(deserialize_with = "null_default")]
    pub(crate) tags: Vec<Value>,
    /// System tags, `{key, value}` objects (e.g. `_sys_enterprise_project_id`).
    #[serde(deserialize_with = "null_default")]
    pub(crate) sys_tags: Vec<Value>,
    #[serde(deserialize_with = "null_default")]
    pub(crate) security_groups: Vec<SecurityGroup>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) key_name: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) enterprise_project_id: Option<String>,
    pub(crate) fault: Option<Value>,
}

/// The server's flavor; `vcpus` and `ram` (MB) are strings.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Flavor {
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) name: Option<String>,
    #[serde(deserialize_with = "lenient_u64")]
    pub(crate) vcpus: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub(crate) ram: Option<u64>,
}

/// The server's image.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Image {
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) id: Option<String>,
}

/// One address of a server on one network.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Address {
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) addr: Option<String>,
    /// `"4"` / `"6"`, or a number.
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) version: Option<String>,
    /// `fixed` (private) or `floating` (an elastic IP, public).
    #[serde(rename = "OS-EXT-IPS:type", deserialize_with = "lenient_string")]
    pub(crate) kind: Option<String>,
}

/// A security group: an id, a name, or both.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SecurityGroup {
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) name: Option<String>,
}
