//! SOAP 1.1 envelopes for vim25: writing requests and reading responses.
//!
//! Responses are read namespace-aware with quick-xml into a small element tree: vim25
//! answers are small per page (a page of VMs is bounded by `maxObjects`), and a tree keeps
//! the decoding in `model.rs` plain.

use std::borrow::Cow;
use std::fmt::Write as _;

use cmdb_core::{Error, Result};
use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

/// The SOAP 1.1 envelope namespace.
pub(crate) const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The vim25 namespace every request and answer body lives in.
pub(crate) const VIM25_NS: &str = "urn:vim25";
/// XML Schema instance, for `xsi:type`.
pub(crate) const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Deeper documents are refused: vim25 answers nest a dozen levels at most.
const MAX_DEPTH: usize = 64;

/// One element of a parsed document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    /// Local name, without prefix (the common vim25 names are interned, not allocated).
    pub(crate) name: Cow<'static, str>,
    /// Namespace the element is bound to, if any (the known ones are interned).
    pub(crate) ns: Option<Cow<'static, str>>,
    /// Local part of `xsi:type`, prefix dropped (`xsd:string` -> `string`); the common
    /// types are interned.
    pub(crate) xsi_type: Option<Cow<'static, str>>,
    /// The plain `type` attribute (a managed object reference's type).
    pub(crate) type_attr: Option<String>,
    /// Text content, entities resolved.
    pub(crate) text: String,
    /// Child elements in document order.
    pub(crate) children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub(crate) fn children_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child named `name`.
    pub(crate) fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    fn is(&self, ns: &str, name: &str) -> bool {
        self.name == name && self.ns.as_deref() == Some(ns)
    }
}

/// A SOAP fault as vim25 reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SoapFault {
    /// `faultcode`, e.g. `ServerFaultCode`.
    pub(crate) code: Option<String>,
    /// `faultstring`, the human message.
    pub(crate) message: Option<String>,
    /// The vim25 fault type from `detail`, e.g. `InvalidLogin`.
    pub(crate) fault_type: Option<String>,
}

/// The body of a response envelope: an answer or a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The first element of the body, e.g. `RetrieveServiceContentResponse`.
    Answer(Element),
    /// A `soapenv:Fault`.
    Fault(SoapFault),
}

/// Parses a whole document into its root element.
pub(crate) fn parse_document(xml: &[u8]) -> Result<Element> {
    let text = std::str::from_utf8(xml)
        .map_err(|e| Error::decode(format!("the SOAP response is not UTF-8: {e}")))?;
    let mut reader = NsReader::from_str(text);
    // Open elements, each with the index in `done` where its children begin. Finished
    // elements wait in `done` until their parent closes and takes them in one exact-size
    // vector, so that children vectors never grow (and move) element by element.
    let mut stack: Vec<(Element, usize)> = Vec::with_capacity(16);
    let mut done: Vec<Element> = Vec::with_capacity(64);
    let mut root: Option<Element> = None;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| malformed(e.to_string()))?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                if root.is_some() {
                    return Err(malformed("content after the root element"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed("elements nest too deeply"));
                }
                let mut element = Element {
                    name: intern(start.local_name().as_ref(), NAMES),
                    ns: match ns {
                        ResolveResult::Bound(ns) => Some(intern(ns.0, NAMESPACES)),
                        ResolveResult::Unbound => None,
                        ResolveResult::Unknown(prefix) => {
                            return Err(malformed(format!("unbound namespace prefix {prefix}")))
                        }
                    },
                    ..Element::default()
                };
                for attr in start.attributes() {
                    let attr = attr.map_err(|e| malformed(format!("bad attribute: {e}")))?;
                    let (attr_ns, local) = reader.resolver().resolve_attribute(attr.key);
                    let value = attr
                        .normalized_value(XmlVersion::Implicit1_0)
                        .map_err(|e| malformed(format!("bad attribute value: {e}")))?;
                    match (attr_ns, local.as_ref()) {
                        (ResolveResult::Bound(ns), "type") if ns.0 == XSI_NS => {
                            let v = value.rsplit(':').next().unwrap_or_default();
                            element.xsi_type = Some(intern(v, TYPES));
                        }
                        (ResolveResult::Unbound, "type") => {
                            element.type_attr = Some(value.into_owned())
                        }
                        _ => {}
                    }
                }
                if matches!(event, Event::Empty(_)) {
                    attach(&stack, &mut done, &mut root, element);
                } else {
                    stack.push((element, done.len()));
                }
            }
            Event::End(_) => {
                let (mut element, first) =
                    stack.pop().ok_or_else(|| malformed("unexpected end tag"))?;
                if first < done.len() {
                    element.children = done.drain(first..).collect();
                }
                attach(&stack, &mut done, &mut root, element);
            }
            Event::Text(t) => {
                if let Some((top, _)) = stack.last_mut() {
                    let content = t.xml10_content();
                    if top.text.is_empty() {
                        top.text = content.into_owned();
                    } else {
                        top.text.push_str(&content);
                    }
                }
            }
            Event::CData(c) => {
                if let Some((top, _)) = stack.last_mut() {
                    top.text.push_str(&c);
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    Ok(None) => resolve_predefined_entity(&r)
                        .ok_or_else(|| malformed(format!("unknown entity &{};", &*r)))?
                        .to_owned(),
                    Err(e) => return Err(malformed(format!("bad character reference: {e}"))),
                };
                if let Some((top, _)) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(malformed("the document ends inside an element"));
    }
    root.ok_or_else(|| malformed("the document is empty"))
}

/// Namespaces answers use, shared instead of allocated for every element.
const NAMESPACES: &[&str] = &[VIM25_NS, SOAP_ENV_NS, XSI_NS];

/// Element names that make up nearly every vim25 property answer.
const NAMES: &[&str] = &[
    "propSet",
    "name",
    "val",
    "objects",
    "obj",
    "returnval",
    "missingSet",
    "path",
    "fault",
    "token",
    "GuestNicInfo",
    "ipAddress",
    "ipConfig",
    "prefixLength",
    "state",
    "network",
    "macAddress",
    "connected",
    "deviceConfigId",
    "key",
    "value",
    "CustomFieldValue",
    "CustomFieldDef",
    "Envelope",
    "Body",
    "Fault",
];

/// The local parts of common `xsi:type` values.
const TYPES: &[&str] = &[
    "string",
    "int",
    "long",
    "boolean",
    "dateTime",
    "ArrayOfGuestNicInfo",
    "VirtualMachinePowerState",
    "VirtualMachineConnectionState",
    "ArrayOfCustomFieldValue",
    "ArrayOfCustomFieldDef",
    "CustomFieldStringValue",
];

/// `s` as one of the `known` strings if it is one, else an owned copy.
fn intern(s: &str, known: &[&'static str]) -> Cow<'static, str> {
    match known.iter().find(|k| **k == s) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(s.to_owned()),
    }
}

fn attach(
    stack: &[(Element, usize)],
    done: &mut Vec<Element>,
    root: &mut Option<Element>,
    element: Element,
) {
    if stack.is_empty() {
        *root = Some(element);
    } else {
        done.push(element);
    }
}

fn malformed(what: impl std::fmt::Display) -> Error {
    Error::decode(format!("malformed SOAP response: {what}"))
}

/// Parses a response envelope into its answer or fault.
pub(crate) fn parse_envelope(xml: &[u8]) -> Result<Reply> {
    let root = parse_document(xml)?;
    if !root.is(SOAP_ENV_NS, "Envelope") {
        return Err(malformed(format!(
            "the root element is {:?}, not a SOAP envelope",
            root.name
        )));
    }
    let body = root
        .children
        .into_iter()
        .find(|c| c.is(SOAP_ENV_NS, "Body"))
        .ok_or_else(|| malformed("the envelope has no Body"))?;
    let first = body
        .children
        .into_iter()
        .next()
        .ok_or_else(|| malformed("the Body is empty"))?;
    if first.is(SOAP_ENV_NS, "Fault") {
        return Ok(Reply::Fault(fault_of(&first)));
    }
    if first.ns.as_deref() != Some(VIM25_NS) {
        return Err(malformed(format!(
            "the answer {:?} is not in the vim25 namespace",
            first.name
        )));
    }
    Ok(Reply::Answer(first))
}

/// The fault of a response body, if it is a well-formed envelope holding one.
pub(crate) fn parse_fault(xml: &[u8]) -> Option<SoapFault> {
    match parse_envelope(xml) {
        Ok(Reply::Fault(fault)) => Some(fault),
        _ => None,
    }
}

fn fault_of(fault: &Element) -> SoapFault {
    let non_empty = |s: Option<&str>| {
        s.map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    // vim25 puts one element in `detail`, e.g. <InvalidLoginFault xsi:type="InvalidLogin">;
    // the xsi:type names the fault, the element name is the type plus "Fault".
    let fault_type = fault
        .child("detail")
        .and_then(|d| d.children.first())
        .map(|d| match &d.xsi_type {
            Some(t) => t.to_string(),
            None => d.name.strip_suffix("Fault").unwrap_or(&d.name).to_owned(),
        });
    SoapFault {
        code: non_empty(fault.child_text("faultcode")),
        message: non_empty(fault.child_text("faultstring")),
        fault_type,
    }
}

/// A managed object reference, e.g. `<_this type="PropertyCollector">propertyCollector</_this>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MoRef {
    /// The managed object type, e.g. `Folder`.
    pub(crate) kind: String,
    /// Its id, e.g. `group-d1`.
    pub(crate) value: String,
}

impl MoRef {
    /// A reference of `kind` to `value`.
    pub(crate) fn new(kind: impl Into<String>, value: impl Into<String>) -> MoRef {
        MoRef {
            kind: kind.into(),
            value: value.into(),
        }
    }

    /// Reads a reference element; its type comes from the `type` attribute.
    pub(crate) fn from_element(element: &Element) -> Result<MoRef> {
        let kind = element
            .type_attr
            .clone()
            .ok_or_else(|| malformed(format!("{} has no type attribute", element.name)))?;
        if element.text.trim().is_empty() {
            return Err(malformed(format!("{} is an empty reference", element.name)));
        }
        Ok(MoRef::new(kind, element.text.trim()))
    }

    /// Writes the reference as element `tag`.
    pub(crate) fn write(&self, out: &mut String, tag: &str) {
        let _ = write!(
            out,
            r#"<{tag} type="{}">{}</{tag}>"#,
            escape(self.kind.as_str()),
            escape(self.value.as_str())
        );
    }
}

/// Writes `<tag>text</tag>` with the text escaped.
pub(crate) fn write_text(out: &mut String, tag: &str, text: &str) {
    let _ = write!(out, "<{tag}>{}</{tag}>", escape(text));
}

/// A request envelope: `<op xmlns="urn:vim25"><_this …/>{args}</op>`.
pub(crate) fn envelope(operation: &str, this: &MoRef, args: &str) -> String {
    let mut out = String::with_capacity(512 + args.len());
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = write!(
        out,
        r#"<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="{XSI_NS}"><soapenv:Body><{operation} xmlns="{VIM25_NS}">"#
    );
    this.write(&mut out, "_this");
    out.push_str(args);
    let _ = write!(out, "</{operation}></soapenv:Body></soapenv:Envelope>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
 <S:Body><v:LoginResponse xmlns:v="urn:vim25"><v:returnval><v:key>k</v:key>
 <v:userName>a &amp; b &#x41;</v:userName><v:x xsi:type="xsd:string"><![CDATA[<raw>]]></v:x>
 <v:ref type="Folder">group-d1</v:ref></v:returnval></v:LoginResponse></S:Body></S:Envelope>"#;

    #[test]
    fn answers_are_read_with_namespaces_and_entities() {
        let Reply::Answer(answer) = parse_envelope(ANSWER.as_bytes()).unwrap() else {
            panic!("expected an answer")
        };
        assert_eq!(answer.name, "LoginResponse");
        let rv = answer.child("returnval").unwrap();
        assert_eq!(rv.child_text("userName"), Some("a & b A"));
        let x = rv.child("x").unwrap();
        assert_eq!(
            (x.xsi_type.as_deref(), x.text.as_str()),
            (Some("string"), "<raw>")
        );
        let r = MoRef::from_element(rv.child("ref").unwrap()).unwrap();
        assert_eq!(r, MoRef::new("Folder", "group-d1"));
    }

    #[test]
    fn faults_name_their_vim_type() {
        let xml = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Cannot complete login</faultstring><detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        let fault = parse_fault(xml.as_bytes()).unwrap();
        assert_eq!(fault.fault_type.as_deref(), Some("InvalidLogin"));
        assert_eq!(fault.code.as_deref(), Some("ServerFaultCode"));
        assert_eq!(fault.message.as_deref(), Some("Cannot complete login"));
    }

    #[test]
    fn a_body_in_the_wrong_namespace_or_broken_xml_is_a_decode_error() {
        for bad in [
            "<Envelope><Body/></Envelope>",
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><X/></soapenv:Body></soapenv:Envelope>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><X xmlns="urn:vim25">"#,
            "<a></b>",
            "",
            "<a>&bogus;</a>",
        ] {
            let e = parse_envelope(bad.as_bytes()).unwrap_err();
            assert_eq!(e.kind(), cmdb_core::ErrorKind::Decode, "{bad}: {e}");
        }
    }

    #[test]
    fn requests_escape_their_arguments() {
        let mut args = String::new();
        write_text(&mut args, "userName", "a<b&\"c\"");
        let xml = envelope(
            "Login",
            &MoRef::new("SessionManager", "SessionManager"),
            &args,
        );
        assert!(xml.contains(r#"<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>a&lt;b&amp;&quot;c&quot;</userName></Login>"#), "{xml}");
        // What we write, we can read back.
        let root = parse_document(xml.as_bytes()).unwrap();
        assert_eq!(root.name, "Envelope");
    }
}
