//! The vim25 data objects we read, decoded from the element tree of `soap.rs`.
//!
//! Names follow the vSphere Web Services API reference (`ServiceContent`,
//! `RetrieveResult`, `ObjectContent`, `GuestNicInfo`, ...). Unset properties are simply
//! absent from an answer, so nearly everything is optional.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cmdb_core::{Error, Result};

use crate::soap::{Element, MoRef};

/// The properties read for every virtual machine, in one `RetrievePropertiesEx` per page.
pub(crate) const VM_PROPERTIES: &[&str] = &[
    "name",
    "config.instanceUuid",
    "config.uuid",
    "config.template",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.guestFullName",
    "config.guestId",
    "config.createDate",
    "config.annotation",
    "guest.ipAddress",
    "guest.net",
    "guest.hostName",
    "runtime.powerState",
    "runtime.connectionState",
    "customValue",
    "availableField",
];

/// What `RetrieveServiceContent` tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceContent {
    pub(crate) root_folder: MoRef,
    pub(crate) property_collector: MoRef,
    pub(crate) view_manager: MoRef,
    pub(crate) session_manager: MoRef,
    /// `about.apiVersion`, e.g. `8.0.2.0`.
    pub(crate) api_version: Option<String>,
}

impl ServiceContent {
    pub(crate) fn from_answer(answer: &Element) -> Result<ServiceContent> {
        let rv = returnval(answer)?;
        let moref = |name: &str| {
            rv.child(name)
                .ok_or_else(|| missing("ServiceContent", name))
                .and_then(MoRef::from_element)
        };
        Ok(ServiceContent {
            root_folder: moref("rootFolder")?,
            property_collector: moref("propertyCollector")?,
            view_manager: moref("viewManager")?,
            session_manager: moref("sessionManager")?,
            api_version: rv
                .child("about")
                .and_then(|a| a.child_text("apiVersion"))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
        })
    }
}

/// The `returnval` of an answer.
pub(crate) fn returnval(answer: &Element) -> Result<&Element> {
    answer
        .child("returnval")
        .ok_or_else(|| missing(&answer.name, "returnval"))
}

fn missing(what: &str, field: &str) -> Error {
    Error::decode(format!("vSphere {what} has no {field}"))
}

/// One page of a `RetrievePropertiesEx` / `ContinueRetrievePropertiesEx`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RetrieveResult {
    /// Present while more objects remain.
    pub(crate) token: Option<String>,
    pub(crate) objects: Vec<ObjectContent>,
}

impl RetrieveResult {
    /// An answer without `returnval` means no objects at all. The answer is taken by
    /// value so that property values move into the result instead of being copied.
    pub(crate) fn from_answer(answer: Element) -> Result<RetrieveResult> {
        let Some(rv) = answer.children.into_iter().find(|c| c.name == "returnval") else {
            return Ok(RetrieveResult::default());
        };
        let token = rv
            .child_text("token")
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        Ok(RetrieveResult {
            token,
            objects: rv
                .children
                .into_iter()
                .filter(|c| c.name == "objects")
                .map(ObjectContent::from_element)
                .collect::<Result<_>>()?,
        })
    }
}

/// One object and the values of its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectContent {
    pub(crate) obj: MoRef,
    /// Property path -> its `val` element. The paths we ask for ([`VM_PROPERTIES`]) are
    /// shared, not allocated per object.
    pub(crate) props: BTreeMap<Cow<'static, str>, Element>,
    /// Property paths the server could not read, with the fault type.
    pub(crate) missing: BTreeMap<String, String>,
}

impl ObjectContent {
    fn from_element(objects: Element) -> Result<ObjectContent> {
        let obj = MoRef::from_element(
            objects
                .child("obj")
                .ok_or_else(|| missing("ObjectContent", "obj"))?,
        )?;
        let mut props = BTreeMap::new();
        let mut missing_sets = Vec::new();
        for p in objects.children {
            match p.name.as_ref() {
                "propSet" => {
                    let name = p
                        .child_text("name")
                        .ok_or_else(|| missing("DynamicProperty", "name"))?;
                    let name = match VM_PROPERTIES.iter().find(|k| **k == name) {
                        Some(known) => Cow::Borrowed(*known),
                        None => Cow::Owned(name.to_owned()),
                    };
                    if let Some(val) = p.children.into_iter().find(|c| c.name == "val") {
                        props.insert(name, val);
                    }
                }
                "missingSet" => missing_sets.push(p),
                _ => {}
            }
        }
        let mut missing_set = BTreeMap::new();
        for m in &missing_sets {
            if let Some(path) = m.child_text("path") {
                let fault = m
                    .child("fault")
                    .and_then(|f| f.child("fault").or(Some(f)))
                    .and_then(|f| f.xsi_type.as_deref().map(str::to_owned))
                    .unwrap_or_default();
                missing_set.insert(path.to_owned(), fault);
            }
        }
        Ok(ObjectContent {
            obj,
            props,
            missing: missing_set,
        })
    }

    fn text(&self, path: &str) -> Option<&str> {
        self.props
            .get(path)
            .map(|v| v.text.trim())
            .filter(|t| !t.is_empty())
    }

    fn string(&self, path: &str) -> Option<String> {
        self.text(path).map(str::to_owned)
    }

    fn number<T: std::str::FromStr>(&self, path: &str) -> Result<Option<T>> {
        self.text(path)
            .map(|t| {
                t.parse::<T>().map_err(|_| {
                    Error::decode(format!(
                        "vSphere {} {}: {path} {t:?} is not a number",
                        self.obj.kind, self.obj.value
                    ))
                })
            })
            .transpose()
    }

    fn boolean(&self, path: &str) -> Result<Option<bool>> {
        self.text(path)
            .map(|t| match t {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(Error::decode(format!(
                    "vSphere {}: {path} {t:?} is not a boolean",
                    self.obj.value
                ))),
            })
            .transpose()
    }

    fn date(&self, path: &str) -> Result<Option<DateTime<Utc>>> {
        self.text(path)
            .map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .map(|d| d.with_timezone(&Utc))
                    .map_err(|e| {
                        Error::decode(format!(
                            "vSphere {}: {path} {t:?} is not a date: {e}",
                            self.obj.value
                        ))
                    })
            })
            .transpose()
    }
}

/// A datacenter: its reference and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Datacenter {
    pub(crate) moref: MoRef,
    pub(crate) name: String,
}

impl Datacenter {
    pub(crate) fn from_object(o: &ObjectContent) -> Datacenter {
        Datacenter {
            moref: o.obj.clone(),
            name: o.string("name").unwrap_or_else(|| o.obj.value.clone()),
        }
    }
}

/// One guest network adapter (`GuestNicInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GuestNic {
    /// `ipAddress` entries and `ipConfig.ipAddress[].ipAddress`, in order.
    pub(crate) ips: Vec<String>,
    pub(crate) network: Option<String>,
    pub(crate) mac_address: Option<String>,
}

/// The properties of one virtual machine we read ([`VM_PROPERTIES`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VirtualMachine {
    pub(crate) moref: String,
    pub(crate) name: Option<String>,
    pub(crate) instance_uuid: Option<String>,
    pub(crate) bios_uuid: Option<String>,
    pub(crate) template: Option<bool>,
    pub(crate) num_cpu: Option<u32>,
    pub(crate) memory_mb: Option<u64>,
    pub(crate) guest_full_name: Option<String>,
    pub(crate) guest_id: Option<String>,
    pub(crate) create_date: Option<DateTime<Utc>>,
    pub(crate) annotation: Option<String>,
    pub(crate) ip_address: Option<String>,
    pub(crate) nics: Vec<GuestNic>,
    pub(crate) host_name: Option<String>,
    pub(crate) power_state: Option<String>,
    pub(crate) connection_state: Option<String>,
    /// Custom attribute key -> value (`customValue`).
    pub(crate) custom_values: BTreeMap<i32, String>,
    /// Custom attribute key -> name (`availableField`).
    pub(crate) field_names: BTreeMap<i32, String>,
    /// Whether the server reported `config` (or its properties) as unreadable, or sent
    /// none of them: an inaccessible or orphaned machine.
    pub(crate) config_missing: bool,
}

impl VirtualMachine {
    pub(crate) fn from_object(o: &ObjectContent) -> Result<VirtualMachine> {
        let nics = o
            .props
            .get("guest.net")
            .map(|v| v.children.iter().map(guest_nic).collect())
            .unwrap_or_default();
        let keyed = |path: &str, value: &str| -> BTreeMap<i32, String> {
            o.props
                .get(path)
                .map(|v| {
                    v.children
                        .iter()
                        .filter_map(|c| {
                            let key = c.child_text("key")?.trim().parse().ok()?;
                            Some((key, c.child_text(value)?.to_owned()))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let config_missing = o.missing.keys().any(|p| p.starts_with("config"))
            || !o.props.keys().any(|p| p.starts_with("config."));
        Ok(VirtualMachine {
            moref: o.obj.value.clone(),
            name: o.string("name"),
            instance_uuid: o.string("config.instanceUuid"),
            bios_uuid: o.string("config.uuid"),
            template: o.boolean("config.template")?,
            num_cpu: o.number("config.hardware.numCPU")?,
            memory_mb: o.number("config.hardware.memoryMB")?,
            guest_full_name: o.string("config.guestFullName"),
            guest_id: o.string("config.guestId"),
            create_date: o.date("config.createDate")?,
            annotation: o.string("config.annotation"),
            ip_address: o.string("guest.ipAddress"),
            nics,
            host_name: o.string("guest.hostName"),
            power_state: o.string("runtime.powerState"),
            connection_state: o.string("runtime.connectionState"),
            custom_values: keyed("customValue", "value"),
            field_names: keyed("availableField", "name"),
            config_missing,
        })
    }
}

fn guest_nic(nic: &Element) -> GuestNic {
    let text = |e: &Element| {
        let t = e.text.trim();
        (!t.is_empty()).then(|| t.to_owned())
    };
    let mut ips: Vec<String> = nic.children_named("ipAddress").filter_map(text).collect();
    if let Some(config) = nic.child("ipConfig") {
        for a in config.children_named("ipAddress") {
            if let Some(ip) = a.child("ipAddress").and_then(text) {
                ips.push(ip);
            }
        }
    }
    GuestNic {
        ips,
        network: nic.child("network").and_then(text),
        mac_address: nic.child("macAddress").and_then(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::{parse_envelope, Reply};

    fn answer(xml: &str) -> Element {
        match parse_envelope(xml.as_bytes()).unwrap() {
            Reply::Answer(a) => a,
            Reply::Fault(f) => panic!("fault {f:?}"),
        }
    }

    fn wrap(inner: &str) -> String {
        format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>"#
        )
    }

    #[test]
    fn a_virtual_machine_is_decoded_with_its_nics() {
        let xml = wrap(
            r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>t1</token><objects><obj type="VirtualMachine">vm-7</obj>
<propSet><name>config.hardware.numCPU</name><val xsi:type="xsd:int">4</val></propSet>
<propSet><name>config.template</name><val xsi:type="xsd:boolean">false</val></propSet>
<propSet><name>config.createDate</name><val xsi:type="xsd:dateTime">2024-03-01T10:00:00.5Z</val></propSet>
<propSet><name>guest.net</name><val xsi:type="ArrayOfGuestNicInfo"><GuestNicInfo><network>VM Network</network><ipAddress>10.0.0.5</ipAddress><ipAddress>fe80::1</ipAddress><ipConfig><ipAddress><ipAddress>2001:db8::5</ipAddress><prefixLength>64</prefixLength></ipAddress></ipConfig></GuestNicInfo></val></propSet>
<propSet><name>customValue</name><val xsi:type="ArrayOfCustomFieldValue"><CustomFieldValue xsi:type="CustomFieldStringValue"><key>101</key><value>ops</value></CustomFieldValue></val></propSet>
<propSet><name>availableField</name><val xsi:type="ArrayOfCustomFieldDef"><CustomFieldDef><key>101</key><name>team</name></CustomFieldDef></val></propSet>
</objects></returnval></RetrievePropertiesExResponse>"#,
        );
        let result = RetrieveResult::from_answer(answer(&xml)).unwrap();
        assert_eq!(result.token.as_deref(), Some("t1"));
        let vm = VirtualMachine::from_object(&result.objects[0]).unwrap();
        assert_eq!(vm.moref, "vm-7");
        assert_eq!((vm.num_cpu, vm.template), (Some(4), Some(false)));
        assert_eq!(vm.nics[0].ips, ["10.0.0.5", "fe80::1", "2001:db8::5"]);
        assert_eq!(vm.nics[0].network.as_deref(), Some("VM Network"));
        assert_eq!(vm.custom_values[&101], "ops");
        assert_eq!(vm.field_names[&101], "team");
        assert!(!vm.config_missing);
        assert_eq!(
            vm.create_date.unwrap().to_rfc3339(),
            "2024-03-01T10:00:00.500+00:00"
        );
    }

    #[test]
    fn an_empty_answer_has_no_objects_and_bad_numbers_are_decode_errors() {
        let empty = wrap(
            r#"<RetrievePropertiesExResponse xmlns="urn:vim25"></RetrievePropertiesExResponse>"#,
        );
        assert_eq!(
            RetrieveResult::from_answer(answer(&empty)).unwrap(),
            RetrieveResult::default()
        );
        let bad = wrap(
            r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-1</obj><propSet><name>config.hardware.memoryMB</name><val>lots</val></propSet></objects></returnval></RetrievePropertiesExResponse>"#,
        );
        let result = RetrieveResult::from_answer(answer(&bad)).unwrap();
        let e = VirtualMachine::from_object(&result.objects[0]).unwrap_err();
        assert_eq!(e.kind(), cmdb_core::ErrorKind::Decode);
    }
}
