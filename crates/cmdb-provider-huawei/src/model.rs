//! Serde DTOs, exactly the JSON of Huawei Cloud's IAM and ECS APIs.
//!
//! Every field may be absent or `null`, and several come as a string or a number
//! depending on the API version (`flavor.vcpus`, `addresses[].version`), so every field
//! has a default and scalars are read leniently.
//!
//! The servers of ListServersDetails borrow their strings from the answer (unless a
//! string has escapes): most are only looked at, or copied once into the host, so
//! decoding each into a `String` (or a [`Value`]) of its own was an allocation wasted.
//! Every value is still parsed as strictly as a [`Value`] would be.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Number, Value};

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
    Ok(Json::deserialize(de)?.lenient_string().map(Cow::into_owned))
}

/// A number or a numeric string as `u64`; anything else as `None`.
fn lenient_u64<'de, D>(de: D) -> Result<Option<u64>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Json::deserialize(de)?.lenient_u64())
}

/// Any JSON value, read without building a [`Value`] for the common cases: `null`, and
/// strings (borrowed from the answer unless they have escapes). Numbers, booleans,
/// arrays and objects are [`Value`]s, built exactly as [`Value`]'s own `Deserialize`
/// builds them, so that a value is accepted or refused as a [`Value`] would be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    /// `null` (or a number a [`Value`] cannot hold, read as `null` as [`Value`] does).
    Null,
    /// A string.
    Str(Cow<'a, str>),
    /// Anything else.
    Other(Value),
}

impl<'a> Json<'a> {
    /// A string, a number or a boolean as a string; `null`, objects and arrays as `None`.
    pub(crate) fn lenient_string(self) -> Option<Cow<'a, str>> {
        match self {
            Json::Str(s) => Some(s),
            Json::Other(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
            Json::Other(Value::Bool(b)) => Some(Cow::Owned(b.to_string())),
            Json::Null | Json::Other(_) => None,
        }
    }

    /// `null` as `None`, a string as itself, anything else as its JSON text.
    pub(crate) fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Json::Null => None,
            Json::Str(s) => Some(s),
            Json::Other(v) => Some(Cow::Owned(v.to_string())),
        }
    }

    /// A number or a numeric string (spaces around it allowed) as `u64`; anything else
    /// as `None`.
    pub(crate) fn lenient_u64(self) -> Option<u64> {
        match self {
            Json::Other(Value::Number(n)) => n.as_u64(),
            Json::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Json<'a> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Other(Value::Bool(b)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Other(Value::Number(n.into())))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Other(Value::Number(n.into())))
    }

    fn visit_i128<E: de::Error>(self, n: i128) -> Result<Json<'de>, E> {
        let de = de::value::I128Deserializer::new(n);
        Number::deserialize(de).map(|n| Json::Other(Value::Number(n)))
    }

    fn visit_u128<E: de::Error>(self, n: u128) -> Result<Json<'de>, E> {
        let de = de::value::U128Deserializer::new(n);
        Number::deserialize(de).map(|n| Json::Other(Value::Number(n)))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Json<'de>, E> {
        Ok(Number::from_f64(n).map_or(Json::Null, |n| Json::Other(Value::Number(n))))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Json<'de>, D::Error> {
        Json::deserialize(de)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Json<'de>, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Json::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Json<'de>, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(Json::Other)
    }
}

/// A string field read leniently: a string, a number or a boolean as a string; `null`,
/// objects and arrays as absent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub(crate) Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        Ok(Text(Json::deserialize(de)?.lenient_string()))
    }
}

impl<'a> Text<'a> {
    /// The string, if any.
    pub(crate) fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The string, unless absent or blank; not trimmed.
    pub(crate) fn non_blank(&self) -> Option<&str> {
        self.as_deref().filter(|s| !is_blank(s))
    }

    /// [`non_blank`](Self::non_blank), owned: a string the answer spelled with escapes
    /// is moved, the others copied once.
    pub(crate) fn non_empty(self) -> Option<String> {
        self.0.filter(|s| !is_blank(s)).map(Cow::into_owned)
    }

    /// The string, `""` when absent.
    pub(crate) fn into_string(self) -> String {
        self.0.map(Cow::into_owned).unwrap_or_default()
    }
}

/// Whether `s` is empty once trimmed (found without trimming it).
fn is_blank(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}

/// An object key, borrowed from the answer unless it has escapes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }

            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }

            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }

        de.deserialize_string(KeyVisitor)
    }
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
pub(crate) struct ServersResponse<'a> {
    /// Servers in the whole listing.
    #[serde(deserialize_with = "lenient_u64")]
    pub(crate) count: Option<u64>,
    /// Each server kept raw and decoded on its own ([`cmdb_http::map_records`]), so that
    /// one malformed server is a failed record naming itself, not the loss of the page.
    #[serde(borrow, deserialize_with = "null_default")]
    pub(crate) servers: Vec<&'a RawValue>,
}

/// A ShowServer answer: `{"server": {…}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ServerResponse<'a> {
    #[serde(borrow)]
    pub(crate) server: Option<Server<'a>>,
}

/// One server of ListServersDetails.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Server<'a> {
    #[serde(borrow)]
    pub(crate) id: Text<'a>,
    #[serde(borrow)]
    pub(crate) name: Text<'a>,
    #[serde(borrow)]
    pub(crate) description: Text<'a>,
    #[serde(borrow)]
    pub(crate) status: Text<'a>,
    #[serde(borrow)]
    pub(crate) created: Text<'a>,
    #[serde(rename = "OS-SRV-USG:launched_at", borrow)]
    pub(crate) launched_at: Text<'a>,
    #[serde(rename = "OS-EXT-AZ:availability_zone", borrow)]
    pub(crate) availability_zone: Text<'a>,
    #[serde(rename = "OS-EXT-SRV-ATTR:hostname", borrow)]
    pub(crate) hostname: Text<'a>,
    #[serde(borrow, deserialize_with = "null_default")]
    pub(crate) flavor: Flavor<'a>,
    #[serde(borrow, deserialize_with = "null_default")]
    pub(crate) image: Image<'a>,
    #[serde(borrow, deserialize_with = "null_default")]
    pub(crate) metadata: Metadata<'a>,
    /// Network id -> addresses on it (in the order of the ids, as a map iterates).
    #[serde(borrow, deserialize_with = "null_default")]
    pub(crate) addresses: BTreeMap<Key<'a>, Option<Vec<Address<'a>>>>,
    /// `"key=value"` strings (a bare `key` has an empty value); `{key, value}` objects
    /// are accepted too.
    #[serde(borrow, deserialize_with = "null_default")]
    pub(crate) tags: Vec<Tag<'a>>,
    /// System tags, `{key, value}` objects (e.g. `_sys_enterprise_project_id`).
    #[serde(borrow, deserialize_with = "null_default")]
    pub(crate) sys_tags: Vec<Tag<'a>>,
    #[serde(borrow, deserialize_with = "null_default")]
    pub(crate) security_groups: Vec<SecurityGroup<'a>>,
    #[serde(borrow)]
    pub(crate) key_name: Text<'a>,
    #[serde(borrow)]
    pub(crate) enterprise_project_id: Text<'a>,
    pub(crate) fault: Option<Value>,
}

/// The server's flavor; `vcpus` and `ram` (MB) are strings.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Flavor<'a> {
    #[serde(borrow)]
    pub(crate) id: Text<'a>,
    #[serde(borrow)]
    pub(crate) name: Text<'a>,
    #[serde(deserialize_with = "lenient_u64")]
    pub(crate) vcpus: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub(crate) ram: Option<u64>,
}

/// The server's image.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Image<'a> {
    #[serde(borrow)]
    pub(crate) id: Text<'a>,
}

/// The entries of a server's `metadata` that cmdb reads, each as text: values are
/// strings in practice; anything else is kept as its JSON text, `null` as absent. The
/// other entries are read (as strictly as a [`Value`] would be) and dropped; of an entry
/// given twice the last counts, as in a map.
#[derive(Debug, Default)]
pub(crate) struct Metadata<'a> {
    pub(crate) charging_mode: Option<Cow<'a, str>>,
    pub(crate) image_name: Option<Cow<'a, str>>,
    pub(crate) metering_image_id: Option<Cow<'a, str>>,
    pub(crate) os_type: Option<Cow<'a, str>>,
    pub(crate) vpc_id: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Metadata<'a> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct MetadataVisitor;

        impl<'de> Visitor<'de> for MetadataVisitor {
            type Value = Metadata<'de>;

            // What a map would expect, so that errors read as they did.
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata<'de>, A::Error> {
                let mut metadata = Metadata::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let value = map.next_value::<Json<'de>>()?;
                    let slot = match &*key.0 {
                        "charging_mode" => &mut metadata.charging_mode,
                        "image_name" => &mut metadata.image_name,
                        "metering.image_id" => &mut metadata.metering_image_id,
                        "os_type" => &mut metadata.os_type,
                        "vpc_id" => &mut metadata.vpc_id,
                        _ => continue,
                    };
                    *slot = value.text();
                }
                Ok(metadata)
            }
        }

        de.deserialize_map(MetadataVisitor)
    }
}

/// One tag: `"key=value"` text, a `{key, value}` object (each read as text: a string as
/// itself, anything else as its JSON text, `null` as absent), or anything else (no tag).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tag<'a> {
    /// `"key=value"`, or a bare `"key"`.
    Text(Cow<'a, str>),
    /// `{"key": .., "value": ..}`; other members are read and dropped.
    Pair {
        key: Option<Cow<'a, str>>,
        value: Option<Cow<'a, str>>,
    },
    /// Neither a string nor an object.
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Tag<'a> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct TagVisitor;

        impl<'de> Visitor<'de> for TagVisitor {
            type Value = Tag<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any valid JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tag<'de>, A::Error> {
                let (mut key, mut value) = (None, None);
                while let Some(name) = map.next_key::<Key<'de>>()? {
                    let text = map.next_value::<Json<'de>>()?;
                    match &*name.0 {
                        "key" => key = text.text(),
                        "value" => value = text.text(),
                        _ => {}
                    }
                }
                Ok(Tag::Pair { key, value })
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Tag<'de>, A::Error> {
                Value::deserialize(SeqAccessDeserializer::new(seq))?;
                Ok(Tag::Other)
            }

            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Tag<'de>, E> {
                Ok(Tag::Text(Cow::Borrowed(s)))
            }

            fn visit_str<E>(self, s: &str) -> Result<Tag<'de>, E> {
                Ok(Tag::Text(Cow::Owned(s.to_owned())))
            }

            fn visit_string<E>(self, s: String) -> Result<Tag<'de>, E> {
                Ok(Tag::Text(Cow::Owned(s)))
            }

            // Scalars are no tags, but are read as a `Value` would be.
            fn visit_bool<E>(self, _: bool) -> Result<Tag<'de>, E> {
                Ok(Tag::Other)
            }

            fn visit_i64<E>(self, _: i64) -> Result<Tag<'de>, E> {
                Ok(Tag::Other)
            }

            fn visit_u64<E>(self, _: u64) -> Result<Tag<'de>, E> {
                Ok(Tag::Other)
            }

            fn visit_i128<E: de::Error>(self, n: i128) -> Result<Tag<'de>, E> {
                JsonVisitor.visit_i128(n).map(|_| Tag::Other)
            }

            fn visit_u128<E: de::Error>(self, n: u128) -> Result<Tag<'de>, E> {
                JsonVisitor.visit_u128(n).map(|_| Tag::Other)
            }

            fn visit_f64<E>(self, _: f64) -> Result<Tag<'de>, E> {
                Ok(Tag::Other)
            }

            fn visit_unit<E>(self) -> Result<Tag<'de>, E> {
                Ok(Tag::Other)
            }

            fn visit_none<E>(self) -> Result<Tag<'de>, E> {
                Ok(Tag::Other)
            }

            fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Tag<'de>, D::Error> {
                Tag::deserialize(de)
            }
        }

        de.deserialize_any(TagVisitor)
    }
}

/// One address of a server on one network.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Address<'a> {
    #[serde(borrow)]
    pub(crate) addr: Text<'a>,
    /// `"4"` / `"6"`, or a number.
    #[serde(borrow)]
    pub(crate) version: Text<'a>,
    /// `fixed` (private) or `floating` (an elastic IP, public).
    #[serde(rename = "OS-EXT-IPS:type", borrow)]
    pub(crate) kind: Text<'a>,
}

/// A security group: an id, a name, or both.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SecurityGroup<'a> {
    #[serde(borrow)]
    pub(crate) id: Text<'a>,
    #[serde(borrow)]
    pub(crate) name: Text<'a>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn json(text: &str) -> Json<'_> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn strings_borrow_from_the_answer_unless_escaped() {
        let body = r#"{"count": "2", "servers": [{
            "id": "s-1", "name": "web \"01\"", "OS-EXT-SRV-ATTR:hostname": "caf\u00e9",
            "metadata": {"vpc_id": "vpc-1", "image_name": "a\/b", "os\u005ftype": "Linux"},
            "addresses": {"net-1": [{"addr": "10.0.0.1", "OS-EXT-IPS:type": "fixed"}]},
            "tags": ["env=prod", {"key": "k", "value": "v"}]
        }]}"#;
        let page: ServersResponse<'_> = serde_json::from_str(body).unwrap();
        assert_eq!(page.count, Some(2));
        let s: Server<'_> = serde_json::from_str(page.servers[0].get()).unwrap();
        let s = &s;
        assert!(matches!(s.id.0, Some(Cow::Borrowed("s-1"))));
        assert!(matches!(&s.name.0, Some(Cow::Owned(n)) if n == "web \"01\""));
        assert!(matches!(&s.hostname.0, Some(Cow::Owned(n)) if n == "café"));
        assert!(matches!(s.metadata.vpc_id, Some(Cow::Borrowed("vpc-1"))));
        assert!(matches!(&s.metadata.image_name, Some(Cow::Owned(n)) if n == "a/b"));
        // An escaped key is still the key it spells.
        assert_eq!(s.metadata.os_type.as_deref(), Some("Linux"));
        let (net, addresses) = s.addresses.iter().next().unwrap();
        assert!(matches!(net.0, Cow::Borrowed("net-1")));
        let address = &addresses.as_ref().unwrap()[0];
        assert!(matches!(address.addr.0, Some(Cow::Borrowed("10.0.0.1"))));
        assert_eq!(s.tags[0], Tag::Text(Cow::Borrowed("env=prod")));
        assert!(matches!(
            s.tags[1],
            Tag::Pair {
                key: Some(Cow::Borrowed("k")),
                value: Some(Cow::Borrowed("v"))
            }
        ));

        // A tree lends its strings too.
        let tree = json!({"id": "s-2", "status": "ACTIVE"});
        let server = Server::deserialize(&tree).unwrap();
        assert!(matches!(server.id.0, Some(Cow::Borrowed("s-2"))));
        assert_eq!(server.status.as_deref(), Some("ACTIVE"));
    }

    #[test]
    fn lenient_values_read_as_a_value_would() {
        assert_eq!(json("null"), Json::Null);
        assert_eq!(json(r#""a""#), Json::Str(Cow::Borrowed("a")));
        assert_eq!(json("-1"), Json::Other(json!(-1)));
        assert_eq!(json("18446744073709551615"), Json::Other(json!(u64::MAX)));
        assert_eq!(json("1.5"), Json::Other(json!(1.5)));
        assert_eq!(
            json(r#"{"a": [1, null]}"#),
            Json::Other(json!({"a": [1, null]}))
        );

        assert_eq!(json("7").lenient_string().as_deref(), Some("7"));
        assert_eq!(json("2.50").lenient_string().as_deref(), Some("2.5"));
        assert_eq!(json("false").lenient_string().as_deref(), Some("false"));
        assert_eq!(json("[1]").lenient_string(), None);
        assert_eq!(json("{}").lenient_string(), None);
        assert_eq!(json("null").lenient_string(), None);

        assert_eq!(json("[1, \"x\"]").text().as_deref(), Some("[1,\"x\"]"));
        assert_eq!(
            json(r#"{"b": 1, "a": 2}"#).text().as_deref(),
            Some(r#"{"a":2,"b":1}"#)
        );
        assert_eq!(json("true").text().as_deref(), Some("true"));
        assert_eq!(json("null").text(), None);

        assert_eq!(json(r#"" 8 ""#).lenient_u64(), Some(8));
        assert_eq!(json("8").lenient_u64(), Some(8));
        assert_eq!(json("-8").lenient_u64(), None);
        assert_eq!(json("8.0").lenient_u64(), None);
        assert_eq!(json(r#""eight""#).lenient_u64(), None);

        // Refused where a `Value` is refused: a number out of range, even where ignored.
        let e = serde_json::from_str::<Metadata<'_>>(r#"{"other": 1e999}"#).unwrap_err();
        assert!(e.to_string().contains("number out of range"), "{e}");
        let e = serde_json::from_str::<Vec<Tag<'_>>>(r#"[{"k": [1e999]}]"#).unwrap_err();
        assert!(e.to_string().contains("number out of range"), "{e}");
    }

    #[test]
    fn metadata_keeps_the_last_of_an_entry_given_twice_and_must_be_a_map() {
        let m: Metadata<'_> = serde_json::from_str(
            r#"{"vpc_id": "a", "charging_mode": "0", "vpc_id": null, "charging_mode": 2}"#,
        )
        .unwrap();
        assert_eq!(m.vpc_id, None);
        assert_eq!(m.charging_mode.as_deref(), Some("2"));
        let e = serde_json::from_str::<Metadata<'_>>(r#""x""#).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid type: string "x", expected a map at line 1 column 3"#
        );
        let t: Tag<'_> =
            serde_json::from_str(r#"{"key": "a", "key": {"x": 1}, "value": 1, "other": []}"#)
                .unwrap();
        assert_eq!(
            t,
            Tag::Pair {
                key: Some(Cow::Borrowed(r#"{"x":1}"#)),
                value: Some(Cow::Borrowed("1"))
            }
        );
    }

    #[test]
    fn text_keeps_strings_as_they_are_and_moves_what_it_owns() {
        let text = |s: &'static str| Text(Some(Cow::Borrowed(s)));
        assert_eq!(text(" a ").non_empty().as_deref(), Some(" a "));
        assert_eq!(text(" \u{3000}\t").non_empty(), None);
        assert_eq!(text("").non_blank(), None);
        assert_eq!(text(" x").non_blank(), Some(" x"));
        assert_eq!(Text(None).non_empty(), None);
        assert_eq!(Text(None).into_string(), "");
        let owned = String::from("moved");
        let at = owned.as_ptr();
        let kept = Text(Some(Cow::Owned(owned))).non_empty().unwrap();
        assert_eq!((kept.as_str(), kept.as_ptr()), ("moved", at));
    }
}
