//! The vim25 data objects we read, decoded from the documents of `soap.rs`.
//!
//! Names follow the vSphere Web Services API reference (`ServiceContent`,
//! `RetrieveResult`, `ObjectContent`, `GuestNicInfo`, ...). Unset properties are simply
//! absent from an answer, so nearly everything is optional.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cmdb_core::{Error, Result};

use crate::soap::{reference, Element, MoRef};

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

/// The properties of [`VM_PROPERTIES`] added to the vSphere API in 6.7
/// (`VirtualMachineConfigInfo.createDate`): an older server is not asked for them.
const VM_PROPERTIES_SINCE_6_7: &[&str] = &["config.createDate"];

/// What `RetrieveServiceContent` tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceContent {
    pub(crate) root_folder: MoRef,
    pub(crate) property_collector: MoRef,
    pub(crate) view_manager: MoRef,
    pub(crate) session_manager: MoRef,
    /// The `SearchIndex`, for by-id lookups (every vCenter and ESXi has one).
    pub(crate) search_index: Option<MoRef>,
    /// `about.apiVersion`, e.g. `8.0.2.0`.
    pub(crate) api_version: Option<String>,
}

impl ServiceContent {
    pub(crate) fn from_answer(answer: Element<'_>) -> Result<ServiceContent> {
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
            search_index: rv
                .child("searchIndex")
                .map(MoRef::from_element)
                .transpose()?,
            api_version: rv
                .child("about")
                .and_then(|a| a.child_text("apiVersion"))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
        })
    }
}

impl ServiceContent {
    /// The virtual machine properties this server has, by its `about.apiVersion`: a
    /// property collector refuses the whole request (`InvalidProperty`) when asked for a
    /// path its version lacks. An unknown or unreadable version is taken as current.
    pub(crate) fn vm_properties(&self) -> Vec<&'static str> {
        let version: Option<(u32, u32)> = self.api_version.as_deref().and_then(|v| {
            let mut parts = v.split('.').map(|n| n.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        });
        let before_6_7 = version.is_some_and(|v| v < (6, 7));
        VM_PROPERTIES
            .iter()
            .copied()
            .filter(|p| !(before_6_7 && VM_PROPERTIES_SINCE_6_7.contains(p)))
            .collect()
    }
}

/// The `returnval` of an answer.
pub(crate) fn returnval(answer: Element<'_>) -> Result<Element<'_>> {
    answer
        .child("returnval")
        .ok_or_else(|| missing(answer.name(), "returnval"))
}

fn missing(what: &str, field: &str) -> Error {
    Error::decode(format!("vSphere {what} has no {field}"))
}

/// The `token` of a `RetrieveResult` answer (the first `token` of its first
/// `returnval`), trimmed: present while more objects remain.
pub(crate) fn page_token(answer: Element<'_>) -> Option<String> {
    let token = answer.child("returnval")?.child_text("token")?.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// The objects of one page of a `RetrievePropertiesEx` / `ContinueRetrievePropertiesEx`,
/// borrowed from its document; its token is [`page_token`].
#[derive(Debug, Clone, Default)]
pub(crate) struct RetrieveResult<'d> {
    pub(crate) objects: Vec<ObjectContent<'d>>,
}

impl<'d> RetrieveResult<'d> {
    /// An answer without `returnval` means no objects at all.
    pub(crate) fn from_answer(answer: Element<'d>) -> Result<RetrieveResult<'d>> {
        let Some(rv) = answer.child("returnval") else {
            return Ok(RetrieveResult::default());
        };
        Ok(RetrieveResult {
            objects: rv
                .children_named("objects")
                .map(ObjectContent::from_element)
                .collect::<Result<_>>()?,
        })
    }
}

/// How many properties [`VM_PROPERTIES`] asks for.
const VM_PROPERTY_COUNT: usize = VM_PROPERTIES.len();

/// One object and the values of its properties.
#[derive(Debug, Clone)]
pub(crate) struct ObjectContent<'d> {
    /// The managed object type, e.g. `VirtualMachine`.
    pub(crate) kind: &'d str,
    /// Its id, e.g. `vm-7`.
    pub(crate) id: &'d str,
    /// The `val` of each of [`VM_PROPERTIES`], by position there.
    known: [Option<Element<'d>>; VM_PROPERTY_COUNT],
    /// Property path and `val` of any other property (a datacenter's `name` is known).
    other: Vec<(&'d str, Element<'d>)>,
    /// Property paths the server could not read, with the fault type.
    missing: Vec<(&'d str, &'d str)>,
}

impl<'d> ObjectContent<'d> {
    fn from_element(objects: Element<'d>) -> Result<ObjectContent<'d>> {
        let (kind, id) = reference(
            objects
                .child("obj")
                .ok_or_else(|| missing("ObjectContent", "obj"))?,
        )?;
        let mut content = ObjectContent {
            kind,
            id,
            known: [None; VM_PROPERTY_COUNT],
            other: Vec::new(),
            missing: Vec::new(),
        };
        for p in objects.children() {
            match p.name() {
                "propSet" => {
                    let name = p
                        .child_text("name")
                        .ok_or_else(|| missing("DynamicProperty", "name"))?;
                    // A repeated property: the last value counts.
                    if let Some(val) = p.child("val") {
                        match VM_PROPERTIES.iter().position(|k| *k == name) {
                            Some(i) => content.known[i] = Some(val),
                            None => content.other.push((name, val)),
                        }
                    }
                }
                "missingSet" => {
                    if let Some(path) = p.child_text("path") {
                        let fault = p
                            .child("fault")
                            .and_then(|f| f.child("fault").or(Some(f)))
                            .and_then(Element::vim_type)
                            .unwrap_or_default();
                        content.missing.push((path, fault));
                    }
                }
                _ => {}
            }
        }
        Ok(content)
    }

    /// The reference of the object.
    pub(crate) fn moref(&self) -> MoRef {
        MoRef::new(self.kind, self.id)
    }

    /// The `val` of property `path`.
    fn val(&self, path: &str) -> Option<Element<'d>> {
        match VM_PROPERTIES.iter().position(|k| *k == path) {
            Some(i) => self.known[i],
            None => self
                .other
                .iter()
                .rev()
                .find(|(name, _)| *name == path)
                .map(|(_, val)| *val),
        }
    }

    /// The paths of the properties the server sent.
    fn paths(&self) -> impl Iterator<Item = &str> + '_ {
        VM_PROPERTIES
            .iter()
            .zip(&self.known)
            .filter(|(_, val)| val.is_some())
            .map(|(path, _)| *path)
            .chain(self.other.iter().map(|(path, _)| *path))
    }

    fn text(&self, path: &str) -> Option<&'d str> {
        self.val(path)
            .map(|v| v.text().trim())
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
                        self.kind, self.id
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
                    self.id
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
                            self.id
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
    pub(crate) fn from_object(o: &ObjectContent<'_>) -> Datacenter {
        Datacenter {
            moref: o.moref(),
            name: o.string("name").unwrap_or_else(|| o.id.to_owned()),
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
    pub(crate) fn from_object(o: &ObjectContent<'_>) -> Result<VirtualMachine> {
        let nics = o
            .val("guest.net")
            .map(|v| v.children().map(guest_nic).collect())
            .unwrap_or_default();
        let keyed = |path: &str, value: &str| -> BTreeMap<i32, String> {
            o.val(path)
                .map(|v| {
                    v.children()
                        .filter_map(|c| {
                            let key = c.child_text("key")?.trim().parse().ok()?;
                            Some((key, c.child_text(value)?.to_owned()))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let config_missing = o.missing.iter().any(|(p, _)| p.starts_with("config"))
            || !o.paths().any(|p| p.starts_with("config."));
        Ok(VirtualMachine {
            moref: o.id.to_owned(),
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

fn guest_nic(nic: Element<'_>) -> GuestNic {
    let text = |e: Element<'_>| {
        let t = e.text().trim();
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

    #[test]
    fn properties_asked_follow_the_api_version() {
        let content = |version: Option<&str>| ServiceContent {
            root_folder: MoRef::new("Folder", "group-d1"),
            property_collector: MoRef::new("PropertyCollector", "propertyCollector"),
            view_manager: MoRef::new("ViewManager", "ViewManager"),
            session_manager: MoRef::new("SessionManager", "SessionManager"),
            search_index: None,
            api_version: version.map(str::to_owned),
        };
        for old in ["6.5", "6.0", "5.5.0", "6.5.0.1"] {
            let asked = content(Some(old)).vm_properties();
            assert!(!asked.contains(&"config.createDate"), "{old}");
            assert_eq!(asked.len(), VM_PROPERTIES.len() - 1, "{old}");
        }
        for new in [
            Some("6.7"),
            Some("6.7.3"),
            Some("7.0.3.0"),
            Some("8.0.2.0"),
            None,
            Some("x"),
        ] {
            assert_eq!(content(new).vm_properties(), VM_PROPERTIES, "{new:?}");
        }
    }
    use crate::soap::{parse, reply, Reply};

    fn answer<'d>(doc: &'d roxmltree::Document<'d>) -> Element<'d> {
        match reply(doc).unwrap() {
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
        let doc = parse(xml.as_bytes()).unwrap();
        assert_eq!(page_token(answer(&doc)).as_deref(), Some("t1"));
        let result = RetrieveResult::from_answer(answer(&doc)).unwrap();
        let object = &result.objects[0];
        assert_eq!((object.kind, object.id), ("VirtualMachine", "vm-7"));
        let vm = VirtualMachine::from_object(object).unwrap();
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
    fn the_page_token_is_found_wherever_it_is_in_the_result() {
        let objects = r#"<objects><obj type="VirtualMachine">vm-1</obj></objects>"#;
        let cases = [
            (format!("<returnval><token> t1 </token>{objects}</returnval>"), Some("t1")),
            (format!("<returnval>{objects}<token>t&amp;2</token></returnval>"), Some("t&2")),
            (format!("<returnval>{objects}</returnval>"), None),
            (format!("<returnval>{objects}<x>token</x></returnval>"), None),
            (format!("<returnval><token/>{objects}</returnval>"), None),
            (format!("<returnval><token>  </token>{objects}</returnval>"), None),
            ("<returnval/>".to_owned(), None),
            (String::new(), None),
            ("<other><token>no</token></other><returnval><token>t3</token></returnval>".to_owned(), Some("t3")),
            ("<returnval><objects><token>deeper</token></objects></returnval><returnval><token>second</token></returnval>".to_owned(), None),
        ];
        for (inner, token) in cases {
            let xml = wrap(&format!(
                r#"<RetrievePropertiesExResponse xmlns="urn:vim25">{inner}</RetrievePropertiesExResponse>"#
            ));
            let doc = parse(xml.as_bytes()).unwrap();
            assert_eq!(page_token(answer(&doc)).as_deref(), token, "{inner}");
        }
    }

    #[test]
    fn unknown_properties_repeats_and_missing_sets_are_kept() {
        let xml = wrap(
            r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine"> vm-8 </obj>
<propSet><name>name</name><val>first</val></propSet>
<propSet><name>name</name><val>second</val></propSet>
<propSet><name>config.other</name><val>x</val></propSet>
<propSet><name>guest.hostName</name></propSet>
<missingSet><path>config</path><fault><fault xsi:type="NoPermission"/></fault></missingSet>
</objects><objects><obj type="VirtualMachine">vm-9</obj><propSet><name>config.other</name><val>y</val></propSet></objects>
<objects><obj type="VirtualMachine">vm-10</obj><propSet><name>name</name><val>n</val></propSet></objects></returnval></RetrievePropertiesExResponse>"#,
        );
        let doc = parse(xml.as_bytes()).unwrap();
        let result = RetrieveResult::from_answer(answer(&doc)).unwrap();
        let o = &result.objects[0];
        assert_eq!(o.id, "vm-8");
        assert_eq!(o.text("name"), Some("second"), "the last value counts");
        assert_eq!(o.text("config.other"), Some("x"));
        assert_eq!(o.val("guest.hostName").map(Element::name), None, "no val");
        assert_eq!(o.missing, [("config", "NoPermission")]);
        let vms: Vec<_> = result
            .objects
            .iter()
            .map(|o| VirtualMachine::from_object(o).unwrap())
            .collect();
        assert_eq!(vms[0].name.as_deref(), Some("second"));
        assert!(vms[0].config_missing, "config is in the missing set");
        assert!(!vms[1].config_missing, "an unknown config path counts");
        assert!(vms[2].config_missing, "no config at all");
    }

    #[test]
    fn an_empty_answer_has_no_objects_and_bad_numbers_are_decode_errors() {
        let empty = wrap(
            r#"<RetrievePropertiesExResponse xmlns="urn:vim25"></RetrievePropertiesExResponse>"#,
        );
        let doc = parse(empty.as_bytes()).unwrap();
        assert!(RetrieveResult::from_answer(answer(&doc))
            .unwrap()
            .objects
            .is_empty());
        let bad = wrap(
            r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-1</obj><propSet><name>config.hardware.memoryMB</name><val>lots</val></propSet></objects></returnval></RetrievePropertiesExResponse>"#,
        );
        let doc = parse(bad.as_bytes()).unwrap();
        let result = RetrieveResult::from_answer(answer(&doc)).unwrap();
        let e = VirtualMachine::from_object(&result.objects[0]).unwrap_err();
        assert_eq!(e.kind(), cmdb_core::ErrorKind::Decode);
        for broken in [
            r#"<objects><propSet><name>name</name><val>n</val></propSet></objects>"#,
            r#"<objects><obj>vm-1</obj></objects>"#,
            r#"<objects><obj type="VirtualMachine"> </obj></objects>"#,
            r#"<objects><obj type="VirtualMachine">vm-1</obj><propSet><val>n</val></propSet></objects>"#,
        ] {
            let xml = wrap(&format!(
                r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>{broken}</returnval></RetrievePropertiesExResponse>"#
            ));
            let doc = parse(xml.as_bytes()).unwrap();
            let e = RetrieveResult::from_answer(answer(&doc)).unwrap_err();
            assert_eq!(e.kind(), cmdb_core::ErrorKind::Decode, "{broken}");
        }
    }
}
