//! Serde DTOs, exactly the JSON of Huawei Cloud's IAM, ECS and RDS APIs.
//!
//! Every field may be absent or `null`, and several come as a string or a number
//! depending on the API version (`flavor.vcpus`, `addresses[].version`): every field has
//! a default, `null` reads as that default, and scalars are read leniently.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use serde_with::{serde_as, DefaultOnNull};

/// A string; a number or a boolean as its text; `null`, arrays and objects as absent.
///
/// Read as a [`Value`], so a number out of range is an error, not an absent field.
/// (`serde_with` has no adapter that turns a number into its text.)
fn text<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    })
}

/// A number, or a string of one (spaces around allowed), as `u64`; anything else as
/// absent.
///
/// Read as a [`Value`], so a number out of range is an error, not an absent field.
/// (`serde_with`'s `PickFirst<(_, DisplayFromStr)>` does not trim, and the
/// `DefaultOnError` it would need for garbage swallows an out-of-range number too.)
fn count<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// `GET /v3/projects` (IAM KeystoneListProjects).
#[serde_as]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ProjectsResponse {
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) projects: Vec<Project>,
}

/// One IAM project; a region's project is named after the region.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Project {
    #[serde(deserialize_with = "text")]
    pub(crate) id: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) name: Option<String>,
}

/// `GET /v1/{project_id}/cloudservers/detail` (ECS ListServersDetails).
#[serde_as]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ServersResponse<'a> {
    /// Servers in the whole listing.
    #[serde(deserialize_with = "count")]
    pub(crate) count: Option<u64>,
    /// Each server kept raw and decoded on its own ([`cmdb_http::map_records`]), so that
    /// one malformed server is a failed record naming itself, not the loss of the page.
    #[serde(borrow)]
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) servers: Vec<&'a RawValue>,
}

/// `GET /v3/{project_id}/instances` (RDS ListInstances).
#[serde_as]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DbInstancesResponse<'a> {
    /// Instances in the whole listing.
    #[serde(deserialize_with = "count")]
    pub(crate) total_count: Option<u64>,
    /// Each instance kept raw and decoded on its own, as servers are.
    #[serde(borrow)]
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) instances: Vec<&'a RawValue>,
}

/// One RDS instance of ListInstances, the fields cmdb keeps. `cpu` and `mem` (GB) are
/// documented as strings; numbers are read too.
#[serde_as]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DbInstance {
    #[serde(deserialize_with = "text")]
    pub(crate) id: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) name: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) status: Option<String>,
    /// Single, Ha or Replica.
    #[serde(rename = "type", deserialize_with = "text")]
    pub(crate) kind: Option<String>,
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) datastore: Datastore,
    #[serde(deserialize_with = "text")]
    pub(crate) flavor_ref: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) cpu: Option<String>,
    /// GB, as a string.
    #[serde(deserialize_with = "text")]
    pub(crate) mem: Option<String>,
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) volume: Volume,
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) private_ips: Vec<String>,
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) public_ips: Vec<String>,
    #[serde(deserialize_with = "count")]
    pub(crate) port: Option<u64>,
    #[serde(deserialize_with = "text")]
    pub(crate) vpc_id: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) subnet_id: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) security_group_id: Option<String>,
    /// `2018-08-20T02:33:49+0800`.
    #[serde(deserialize_with = "text")]
    pub(crate) created: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) expiration_time: Option<String>,
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) charge_info: ChargeInfo,
    #[serde(deserialize_with = "text")]
    pub(crate) enterprise_project_id: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) time_zone: Option<String>,
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) nodes: Vec<DbNode>,
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) related_instance: Vec<RelatedInstance>,
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) tags: Vec<Value>,
}

/// `datastore` of an RDS instance.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Datastore {
    #[serde(rename = "type", deserialize_with = "text")]
    pub(crate) kind: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) version: Option<String>,
}

/// `volume` of an RDS instance; `size` in GB.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Volume {
    #[serde(rename = "type", deserialize_with = "text")]
    pub(crate) kind: Option<String>,
    #[serde(deserialize_with = "count")]
    pub(crate) size: Option<u64>,
}

/// `charge_info` of an RDS instance.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ChargeInfo {
    /// prePaid or postPaid.
    #[serde(deserialize_with = "text")]
    pub(crate) charge_mode: Option<String>,
}

/// One of `nodes[]`: the primary's zone is its `availability_zone`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DbNode {
    #[serde(deserialize_with = "text")]
    pub(crate) role: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) availability_zone: Option<String>,
}

/// One of `related_instance[]`: `replica_of` names a replica's primary.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RelatedInstance {
    #[serde(deserialize_with = "text")]
    pub(crate) id: Option<String>,
    #[serde(rename = "type", deserialize_with = "text")]
    pub(crate) kind: Option<String>,
}

/// A ShowServer answer: `{"server": {…}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ServerResponse {
    pub(crate) server: Option<Server>,
}

/// One server of ListServersDetails.
#[serde_as]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Server {
    #[serde(deserialize_with = "text")]
    pub(crate) id: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) name: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) description: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) status: Option<String>,
    /// RFC 3339.
    #[serde(deserialize_with = "text")]
    pub(crate) created: Option<String>,
    /// An ISO date-time without offset.
    #[serde(rename = "OS-SRV-USG:launched_at", deserialize_with = "text")]
    pub(crate) launched_at: Option<String>,
    #[serde(rename = "OS-EXT-AZ:availability_zone", deserialize_with = "text")]
    pub(crate) availability_zone: Option<String>,
    #[serde(rename = "OS-EXT-SRV-ATTR:hostname", deserialize_with = "text")]
    pub(crate) hostname: Option<String>,
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) flavor: Flavor,
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) image: Image,
    /// Strings in practice, any JSON value in principle. cmdb reads `charging_mode`,
    /// `image_name`, `metering.image_id`, `os_type` and `vpc_id`.
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) metadata: Map<String, Value>,
    /// Network id -> addresses on it (in the order of the ids, as a map iterates).
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) addresses: BTreeMap<String, Option<Vec<Address>>>,
    /// `"key=value"` strings (a bare `key` has an empty value); `{key, value}` objects
    /// are accepted too.
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) tags: Vec<Value>,
    /// System tags, `{key, value}` objects (e.g. `_sys_enterprise_project_id`).
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) sys_tags: Vec<Value>,
    #[serde_as(as = "DefaultOnNull")]
    pub(crate) security_groups: Vec<SecurityGroup>,
    #[serde(deserialize_with = "text")]
    pub(crate) key_name: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) enterprise_project_id: Option<String>,
    pub(crate) fault: Option<Value>,
}

/// The server's flavor; `vcpus` and `ram` (MB) are strings.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Flavor {
    #[serde(deserialize_with = "text")]
    pub(crate) id: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) name: Option<String>,
    #[serde(deserialize_with = "count")]
    pub(crate) vcpus: Option<u64>,
    #[serde(deserialize_with = "count")]
    pub(crate) ram: Option<u64>,
}

/// The server's image.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Image {
    #[serde(deserialize_with = "text")]
    pub(crate) id: Option<String>,
}

/// One address of a server on one network.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Address {
    #[serde(deserialize_with = "text")]
    pub(crate) addr: Option<String>,
    /// `"4"` / `"6"`, or a number.
    #[serde(deserialize_with = "text")]
    pub(crate) version: Option<String>,
    /// `fixed` (private) or `floating` (an elastic IP, public).
    #[serde(rename = "OS-EXT-IPS:type", deserialize_with = "text")]
    pub(crate) kind: Option<String>,
}

/// A security group: an id, a name, or both.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SecurityGroup {
    #[serde(deserialize_with = "text")]
    pub(crate) id: Option<String>,
    #[serde(deserialize_with = "text")]
    pub(crate) name: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn server(json: Value) -> Server {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn escaped_strings_and_keys_decode_to_what_they_spell() {
        let body = r#"{"count": "2", "servers": [{
            "id": "s-1", "name": "web \"01\"", "OS-EXT-SRV-ATTR:hostname": "caf\u00e9",
            "metadata": {"vpc_id": "vpc-1", "image_name": "a\/b", "os\u005ftype": "Linux"},
            "addresses": {"net-1": [{"addr": "10.0.0.1", "OS-EXT-IPS:type": "fixed"}]},
            "tags": ["env=prod", {"key": "k", "value": "v"}]
        }]}"#;
        let page: ServersResponse<'_> = serde_json::from_str(body).unwrap();
        assert_eq!(page.count, Some(2));
        let s: Server = serde_json::from_str(page.servers[0].get()).unwrap();
        assert_eq!(s.id.as_deref(), Some("s-1"));
        assert_eq!(s.name.as_deref(), Some("web \"01\""));
        assert_eq!(s.hostname.as_deref(), Some("café"));
        assert_eq!(s.metadata["vpc_id"], "vpc-1");
        assert_eq!(s.metadata["image_name"], "a/b");
        // An escaped key is still the key it spells.
        assert_eq!(s.metadata["os_type"], "Linux");
        let (net, addresses) = s.addresses.iter().next().unwrap();
        assert_eq!(net, "net-1");
        let address = &addresses.as_ref().unwrap()[0];
        assert_eq!(address.addr.as_deref(), Some("10.0.0.1"));
        assert_eq!(address.kind.as_deref(), Some("fixed"));
        assert_eq!(
            s.tags,
            [json!("env=prod"), json!({"key": "k", "value": "v"})]
        );

        // A tree decodes the same.
        let s = server(json!({"id": "s-2", "status": "ACTIVE"}));
        assert_eq!(s.id.as_deref(), Some("s-2"));
        assert_eq!(s.status.as_deref(), Some("ACTIVE"));
    }

    #[test]
    fn scalars_are_read_leniently_but_as_strictly_as_a_value() {
        let name = |v: Value| server(json!({ "name": v })).name;
        assert_eq!(name(json!("a")).as_deref(), Some("a"));
        assert_eq!(name(json!(7)).as_deref(), Some("7"));
        assert_eq!(name(json!(-1)).as_deref(), Some("-1"));
        assert_eq!(
            name(json!(u64::MAX)).as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(name(json!(false)).as_deref(), Some("false"));
        assert_eq!(name(json!([1])), None);
        assert_eq!(name(json!({})), None);
        assert_eq!(name(json!(null)), None);
        let s: Server = serde_json::from_str(r#"{"name": 2.50}"#).unwrap();
        assert_eq!(s.name.as_deref(), Some("2.5"));

        let vcpus = |v: &str| {
            let s: Server =
                serde_json::from_str(&format!(r#"{{"flavor": {{"vcpus": {v}}}}}"#)).unwrap();
            s.flavor.vcpus
        };
        assert_eq!(vcpus(r#"" 8 ""#), Some(8));
        assert_eq!(vcpus("8"), Some(8));
        assert_eq!(vcpus("18446744073709551615"), Some(u64::MAX));
        assert_eq!(vcpus("-8"), None);
        assert_eq!(vcpus("8.0"), None);
        assert_eq!(vcpus(r#""eight""#), None);
        assert_eq!(vcpus("true"), None);
        assert_eq!(vcpus("[8]"), None);
        assert_eq!(vcpus("null"), None);

        // Refused where a `Value` is refused: a number out of range, even where ignored.
        for body in [
            r#"{"id": 1e999}"#,
            r#"{"flavor": {"ram": 1e999}}"#,
            r#"{"metadata": {"other": 1e999}}"#,
            r#"{"tags": [{"k": [1e999]}]}"#,
        ] {
            let e = serde_json::from_str::<Server>(body).unwrap_err();
            assert!(e.to_string().contains("number out of range"), "{body}: {e}");
        }
    }

    #[test]
    fn metadata_and_tags_keep_the_last_of_an_entry_given_twice_and_metadata_is_a_map() {
        let s: Server = serde_json::from_str(
            r#"{"metadata": {"vpc_id": "a", "charging_mode": "0", "vpc_id": null, "charging_mode": 2},
                "tags": [{"key": "a", "key": {"x": 1}, "value": 1, "other": []}]}"#,
        )
        .unwrap();
        assert_eq!(s.metadata["vpc_id"], Value::Null);
        assert_eq!(s.metadata["charging_mode"], 2);
        assert_eq!(s.tags, [json!({"key": {"x": 1}, "value": 1, "other": []})]);
        let e = serde_json::from_str::<Server>(r#"{"metadata": "x"}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid type: string "x", expected a map at line 1 column 16"#
        );
    }

    #[test]
    fn null_reads_as_the_default() {
        let page: ServersResponse<'_> =
            serde_json::from_str(r#"{"count": null, "servers": null}"#).unwrap();
        assert!(page.servers.is_empty() && page.count.is_none());
        let projects: ProjectsResponse = serde_json::from_str(r#"{"projects": null}"#).unwrap();
        assert!(projects.projects.is_empty());
        let s = server(json!({
            "flavor": null, "image": null, "metadata": null, "addresses": {"n": null},
            "tags": null, "sys_tags": null, "security_groups": null
        }));
        assert!(s.flavor.name.is_none() && s.image.id.is_none() && s.metadata.is_empty());
        assert!(s.addresses["n"].is_none() && s.tags.is_empty() && s.sys_tags.is_empty());
        assert!(s.security_groups.is_empty());
    }
}
