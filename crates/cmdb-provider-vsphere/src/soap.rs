//! SOAP 1.1 envelopes for vim25: writing requests and reading responses.
//!
//! A response is parsed whole with `roxmltree`, a namespace-aware DOM that borrows from
//! the body. It refuses a document type declaration, so no entity of the server's is
//! ever expanded. [`Element`] is a handle on one element for the decoding in `model.rs`.

use std::fmt::{self, Write as _};

use cmdb_core::{Error, Result};
use roxmltree::{Document, Node};

/// The SOAP 1.1 envelope namespace.
pub(crate) const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The vim25 namespace every request and answer body lives in.
pub(crate) const VIM25_NS: &str = "urn:vim25";
/// XML Schema instance, for `xsi:type`.
pub(crate) const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Parses a response body: UTF-8, well-formed, namespace-correct, without a DTD.
pub(crate) fn parse(xml: &[u8]) -> Result<Document<'_>> {
    let text = std::str::from_utf8(xml)
        .map_err(|e| Error::decode(format!("the SOAP response is not UTF-8: {e}")))?;
    // The default options refuse a DTD (`allow_dtd: false`).
    Document::parse(text).map_err(malformed)
}

/// The body of a response envelope: an answer or a fault.
#[derive(Debug, Clone)]
pub(crate) enum Reply<'d> {
    /// The first element of the body, e.g. `RetrieveServiceContentResponse`.
    Answer(Element<'d>),
    /// A `soapenv:Fault`.
    Fault(SoapFault),
}

/// The answer or fault of a parsed response envelope.
pub(crate) fn reply<'d>(document: &'d Document<'d>) -> Result<Reply<'d>> {
    let root = Element(document.root_element());
    if !root.is(SOAP_ENV_NS, "Envelope") {
        return Err(malformed(format!(
            "the root element is {:?}, not a SOAP envelope",
            root.name()
        )));
    }
    let body = root
        .children()
        .find(|c| c.is(SOAP_ENV_NS, "Body"))
        .ok_or_else(|| malformed("the envelope has no Body"))?;
    let first = body
        .first_child()
        .ok_or_else(|| malformed("the Body is empty"))?;
    if first.is(SOAP_ENV_NS, "Fault") {
        return Ok(Reply::Fault(fault_of(first)));
    }
    if first.ns() != Some(VIM25_NS) {
        return Err(malformed(format!(
            "the answer {:?} is not in the vim25 namespace",
            first.name()
        )));
    }
    Ok(Reply::Answer(first))
}

/// One element of a parsed response. Children are looked up by local name: a vim25
/// answer keeps all its elements in the vim25 namespace, whatever prefix it uses.
#[derive(Clone, Copy)]
pub(crate) struct Element<'d>(Node<'d, 'd>);

impl fmt::Debug for Element<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Element")
            .field("name", &self.name())
            .field("ns", &self.ns())
            .field("text", &self.text())
            .finish_non_exhaustive()
    }
}

impl<'d> Element<'d> {
    /// Local name, without prefix.
    pub(crate) fn name(self) -> &'d str {
        self.0.tag_name().name()
    }

    /// The namespace the element is bound to, if any.
    pub(crate) fn ns(self) -> Option<&'d str> {
        self.0.tag_name().namespace()
    }

    /// Whether this is element `name` of namespace `ns`.
    pub(crate) fn is(self, ns: &str, name: &str) -> bool {
        self.name() == name && self.ns() == Some(ns)
    }

    /// Text content, entities resolved (`""` if none).
    pub(crate) fn text(self) -> &'d str {
        self.0.text().unwrap_or_default()
    }

    /// The plain `type` attribute (a managed object reference's type).
    pub(crate) fn type_attr(self) -> Option<&'d str> {
        self.0.attribute("type")
    }

    /// `xsi:type` (whatever prefix the XSI namespace has), its own prefix resolved as
    /// the element's scope says: the type's namespace (`None` for an unprefixed name
    /// without a default namespace) and local name. `None` without the attribute, or if
    /// its prefix is not bound.
    pub(crate) fn xsi_type(self) -> Option<(Option<&'d str>, &'d str)> {
        let value = self.0.attribute((XSI_NS, "type"))?.trim();
        match value.split_once(':') {
            Some((prefix, local)) => {
                Some((Some(self.0.lookup_namespace_uri(Some(prefix))?), local))
            }
            None => Some((self.0.lookup_namespace_uri(None), value)),
        }
    }

    /// The vim25 type `xsi:type` names, e.g. `InvalidLogin`: one of the vim25 namespace,
    /// or an unqualified one (a fault's detail may declare no default namespace).
    pub(crate) fn vim_type(self) -> Option<&'d str> {
        match self.xsi_type()? {
            (Some(VIM25_NS) | None, local) => Some(local),
            _ => None,
        }
    }

    /// Child elements in document order.
    pub(crate) fn children(self) -> impl Iterator<Item = Element<'d>> {
        self.0.children().filter(Node::is_element).map(Element)
    }

    /// The first child element.
    pub(crate) fn first_child(self) -> Option<Element<'d>> {
        self.children().next()
    }

    /// The first child named `name`.
    pub(crate) fn child(self, name: &str) -> Option<Element<'d>> {
        self.children().find(|c| c.name() == name)
    }

    /// Every child named `name`.
    pub(crate) fn children_named<'n>(
        self,
        name: &'n str,
    ) -> impl Iterator<Item = Element<'d>> + use<'d, 'n> {
        self.children().filter(move |c| c.name() == name)
    }

    /// The text of the first child named `name`.
    pub(crate) fn child_text(self, name: &str) -> Option<&'d str> {
        self.child(name).map(Element::text)
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

/// The fault of a response body, if it is a well-formed envelope holding one.
pub(crate) fn parse_fault(xml: &[u8]) -> Option<SoapFault> {
    match reply(&parse(xml).ok()?) {
        Ok(Reply::Fault(fault)) => Some(fault),
        _ => None,
    }
}

fn fault_of(fault: Element<'_>) -> SoapFault {
    let non_empty = |s: Option<&str>| {
        s.map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    // vim25 puts one element in `detail`, e.g. <InvalidLoginFault xsi:type="InvalidLogin">;
    // the xsi:type names the fault, the element name is the type plus "Fault".
    let fault_type = fault
        .child("detail")
        .and_then(Element::first_child)
        .map(|d| match d.vim_type() {
            Some(t) => t.to_owned(),
            None => d
                .name()
                .strip_suffix("Fault")
                .unwrap_or(d.name())
                .to_owned(),
        });
    SoapFault {
        code: non_empty(fault.child_text("faultcode")),
        message: non_empty(fault.child_text("faultstring")),
        fault_type,
    }
}

fn malformed(what: impl fmt::Display) -> Error {
    Error::decode(format!("malformed SOAP response: {what}"))
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
    pub(crate) fn from_element(element: Element<'_>) -> Result<MoRef> {
        let (kind, value) = reference(element)?;
        Ok(MoRef::new(kind, value))
    }

    /// Writes the reference as element `tag`.
    pub(crate) fn write(&self, out: &mut String, tag: &str) {
        let _ = write!(out, r#"<{tag} type=""#);
        escape_into(out, &self.kind);
        out.push_str(r#"">"#);
        escape_into(out, &self.value);
        let _ = write!(out, "</{tag}>");
    }
}

/// Writes `<tag>text</tag>` with the text escaped.
pub(crate) fn write_text(out: &mut String, tag: &str, text: &str) {
    let _ = write!(out, "<{tag}>");
    escape_into(out, text);
    let _ = write!(out, "</{tag}>");
}

/// Appends `text` with the characters XML gives a meaning escaped, for text and
/// attribute values alike.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
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

/// The type and id of a reference element, borrowed from its document.
pub(crate) fn reference<'d>(element: Element<'d>) -> Result<(&'d str, &'d str)> {
    let kind = element
        .type_attr()
        .ok_or_else(|| malformed(format!("{} has no type attribute", element.name())))?;
    let value = element.text().trim();
    if value.is_empty() {
        return Err(malformed(format!(
            "{} is an empty reference",
            element.name()
        )));
    }
    Ok((kind, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const XSD_NS: &str = "http://www.w3.org/2001/XMLSchema";

    const ANSWER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
 <S:Header><x/></S:Header>
 <S:Body><v:LoginResponse xmlns:v="urn:vim25"><v:returnval><v:key>k</v:key>
 <v:userName>a &amp; b &#x41;</v:userName><v:x xsi:type="xsd:string"><![CDATA[<raw>]]></v:x>
 <v:ref type="Folder">group-d1</v:ref></v:returnval></v:LoginResponse></S:Body></S:Envelope>"#;

    fn answer<'d>(doc: &'d Document<'d>) -> Element<'d> {
        match reply(doc).unwrap() {
            Reply::Answer(answer) => answer,
            Reply::Fault(fault) => panic!("fault {fault:?}"),
        }
    }

    /// The root element of a document that must parse.
    fn root<'d>(doc: &'d Document<'d>) -> Element<'d> {
        Element(doc.root_element())
    }

    fn decode_error(xml: &str) -> Error {
        let e = parse(xml.as_bytes())
            .and_then(|doc| reply(&doc).map(drop))
            .unwrap_err();
        assert_eq!(e.kind(), cmdb_core::ErrorKind::Decode, "{xml}: {e}");
        e
    }

    #[test]
    fn answers_are_read_with_namespaces_and_entities() {
        let doc = parse(ANSWER.as_bytes()).unwrap();
        let answer = answer(&doc);
        assert_eq!(answer.name(), "LoginResponse");
        assert_eq!(answer.ns(), Some(VIM25_NS));
        let rv = answer.child("returnval").unwrap();
        assert_eq!(rv.child_text("userName"), Some("a & b A"));
        let x = rv.child("x").unwrap();
        assert_eq!(x.text(), "<raw>");
        assert_eq!(x.xsi_type(), Some((Some(XSD_NS), "string")));
        assert_eq!(x.vim_type(), None, "an XML Schema type, not a vim25 one");
        let r = MoRef::from_element(rv.child("ref").unwrap()).unwrap();
        assert_eq!(r, MoRef::new("Folder", "group-d1"));
        // Elements only, never the text between them.
        assert_eq!(
            rv.children().map(Element::name).collect::<Vec<_>>(),
            ["key", "userName", "x", "ref"]
        );
        assert_eq!(rv.children_named("key").count(), 1);
        assert_eq!(
            rv.child("key").unwrap().first_child().map(Element::name),
            None
        );
        // Line ends are normalised, attribute values' entities resolved, CDATA joined.
        let doc = parse(b"<a type=\"x&amp;y\">one\r\ntwo<![CDATA[ & three]]></a>").unwrap();
        assert_eq!(root(&doc).text(), "one\ntwo & three");
        assert_eq!(root(&doc).type_attr(), Some("x&y"));
    }

    #[test]
    fn xsi_types_resolve_through_their_prefix() {
        let cases = [
            // A vim25 type under a prefix of its own, and XSI under another prefix.
            (
                r#"<a xmlns:vim25="urn:vim25" xmlns:i="{xsi}" i:type="vim25:ArrayOfString"/>"#,
                Some((Some(VIM25_NS), "ArrayOfString")),
            ),
            // Unprefixed: the default namespace, or none.
            (
                r#"<a xmlns="urn:vim25" xmlns:xsi="{xsi}" xsi:type="InvalidLogin"/>"#,
                Some((Some(VIM25_NS), "InvalidLogin")),
            ),
            (
                r#"<a xmlns:xsi="{xsi}" xsi:type=" NoPermission "/>"#,
                Some((None, "NoPermission")),
            ),
            // The prefix as the element's scope binds it.
            (
                r#"<r xmlns:v="urn:vim25"><a xmlns:v="urn:other" xmlns:xsi="{xsi}" xsi:type="v:T"/></r>"#,
                Some((Some("urn:other"), "T")),
            ),
            // An unbound prefix names no type; `xsi` bound elsewhere is not XSI; a
            // plain `type` is a reference's.
            (r#"<a xmlns:xsi="{xsi}" xsi:type="nope:T"/>"#, None),
            (r#"<a xmlns:xsi="urn:other" xsi:type="T"/>"#, None),
            (r#"<a type="T"/>"#, None),
        ];
        for (xml, expected) in cases {
            let xml = xml.replace("{xsi}", XSI_NS);
            let doc = parse(xml.as_bytes()).unwrap();
            let a = root(&doc).child("a").unwrap_or(root(&doc));
            assert_eq!(a.xsi_type(), expected, "{xml}");
            let vim = expected.and_then(|(ns, t)| matches!(ns, None | Some(VIM25_NS)).then_some(t));
            assert_eq!(a.vim_type(), vim, "{xml}");
        }
    }

    #[test]
    fn elements_are_matched_by_namespace_not_prefix() {
        let envelope = |env_ns: &str, body: &str| {
            format!(r#"<e:Envelope xmlns:e="{env_ns}"><e:Body>{body}</e:Body></e:Envelope>"#)
        };
        // Any prefix, or a default namespace, will do.
        let doc_text = envelope(SOAP_ENV_NS, r#"<LogoutResponse xmlns="urn:vim25"/>"#);
        let doc = parse(doc_text.as_bytes()).unwrap();
        assert_eq!(answer(&doc).name(), "LogoutResponse");
        let doc_text = format!(
            r#"<Envelope xmlns="{SOAP_ENV_NS}"><Body><v:X xmlns:v="urn:vim25"/></Body></Envelope>"#
        );
        let doc = parse(doc_text.as_bytes()).unwrap();
        assert_eq!(answer(&doc).name(), "X");
        // The right names in the wrong namespaces.
        for xml in [
            envelope("urn:other", r#"<X xmlns="urn:vim25"/>"#),
            envelope(SOAP_ENV_NS, r#"<X xmlns="urn:vim2"/>"#),
            envelope(SOAP_ENV_NS, "<X/>"),
            format!(
                r#"<e:Envelope xmlns:e="{SOAP_ENV_NS}" xmlns="urn:vim25"><e:Body><X xmlns=""/></e:Body></e:Envelope>"#
            ),
            format!(
                r#"<e:Envelope xmlns:e="{SOAP_ENV_NS}"><Body><X xmlns="urn:vim25"/></Body></e:Envelope>"#
            ),
        ] {
            decode_error(&xml);
        }
    }

    #[test]
    fn faults_name_their_vim_type() {
        let fault = |detail: &str| {
            let xml = format!(
                r#"<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}" xmlns:xsi="{XSI_NS}"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Cannot complete login</faultstring><detail>{detail}</detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#
            );
            parse_fault(xml.as_bytes()).unwrap()
        };
        let f = fault(r#"<InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"/>"#);
        assert_eq!(f.fault_type.as_deref(), Some("InvalidLogin"));
        assert_eq!(f.code.as_deref(), Some("ServerFaultCode"));
        assert_eq!(f.message.as_deref(), Some("Cannot complete login"));
        for (detail, expected) in [
            // A prefixed type, another prefix for XSI, no default namespace.
            (
                r#"<v:NotAuthenticatedFault xmlns:v="urn:vim25" xsi:type="v:NotAuthenticated"/>"#,
                Some("NotAuthenticated"),
            ),
            (
                r#"<NotAuthenticatedFault xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="NotAuthenticated"/>"#,
                Some("NotAuthenticated"),
            ),
            // Without a vim25 type, the element names it.
            (
                r#"<ManagedObjectNotFoundFault xmlns="urn:vim25"/>"#,
                Some("ManagedObjectNotFound"),
            ),
            (
                r#"<SystemErrorFault xmlns="urn:vim25" xsi:type="xsd:string"/>"#,
                Some("SystemError"),
            ),
            ("", None),
        ] {
            assert_eq!(fault(detail).fault_type.as_deref(), expected, "{detail}");
        }
        let bare = format!(
            r#"<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}"><soapenv:Body><soapenv:Fault><faultstring> </faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#
        );
        assert_eq!(parse_fault(bare.as_bytes()), Some(SoapFault::default()));
        // Not a fault: an answer, or no envelope at all.
        assert_eq!(parse_fault(ANSWER.as_bytes()), None);
        assert_eq!(parse_fault(b"<html>busy</html>"), None);
        assert_eq!(parse_fault(b"busy"), None);
    }

    #[test]
    fn broken_xml_is_a_decode_error() {
        for bad in [
            "<Envelope><Body/></Envelope>",
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><X xmlns="urn:vim25">"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body></soapenv:Body></soapenv:Envelope>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/></soapenv:Envelope>"#,
            "<a></b>",
            "",
            "   ",
            "not xml",
            "<a>&bogus;</a>",
            "<a>&#xFFFFFFFF;</a>",
            "<a/><b/>",
            "<a/>text",
            "</a>",
            "<a><b></a>",
            "<a>",
            "<p:a/>",
            r#"<a type="&bogus;"/>"#,
            r#"<a other="&bogus;"/>"#,
            r#"<a x="1" x="2"/>"#,
            r#"<a xmlns:p="u" xmlns:q="u" p:x="1" q:x="2"/>"#,
            "<a><![CDATA[x</a>",
        ] {
            decode_error(bad);
        }
        let e = parse(&[b'<', b'a', b'>', 0xff, b'<', b'/', b'a', b'>']).unwrap_err();
        assert!(e.to_string().contains("UTF-8"), "{e}");
        // Deep nesting is no danger to the stack.
        let nested = "<a>".repeat(100_000) + &"</a>".repeat(100_000);
        let _ = parse(nested.as_bytes());
    }

    #[test]
    fn a_document_type_declaration_is_refused() {
        let envelope = format!(
            r#"<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}"><soapenv:Body><X xmlns="urn:vim25">&x;</X></soapenv:Body></soapenv:Envelope>"#
        );
        for dtd in [
            r#"<!DOCTYPE soapenv:Envelope [<!ENTITY x "expanded">]>"#,
            r#"<!DOCTYPE soapenv:Envelope [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY x "&b;&b;&b;&b;&b;&b;&b;&b;">]>"#,
            r#"<!DOCTYPE soapenv:Envelope SYSTEM "file:///etc/passwd">"#,
            "<!DOCTYPE soapenv:Envelope>",
        ] {
            let xml = format!(r#"<?xml version="1.0"?>{dtd}{envelope}"#);
            let e = decode_error(&xml);
            assert!(e.to_string().contains("DTD"), "{e}");
            assert_eq!(parse_fault(xml.as_bytes()), None);
        }
    }

    #[test]
    fn requests_escape_their_arguments() {
        let mut args = String::new();
        write_text(&mut args, "userName", "a<b&\"c\"'>");
        let this = MoRef::new("Session&Manager", "<SessionManager>");
        let xml = envelope("Login", &this, &args);
        assert!(xml.contains(r#"<Login xmlns="urn:vim25"><_this type="Session&amp;Manager">&lt;SessionManager&gt;</_this><userName>a&lt;b&amp;&quot;c&quot;&apos;&gt;</userName></Login>"#), "{xml}");
        // What we write, we read back.
        let doc = parse(xml.as_bytes()).unwrap();
        let login = answer(&doc);
        assert_eq!(login.name(), "Login");
        assert_eq!(login.child_text("userName"), Some("a<b&\"c\"'>"));
        assert_eq!(
            MoRef::from_element(login.child("_this").unwrap()).unwrap(),
            this
        );
        for empty in [r#"<_this type="Folder"> </_this>"#, "<_this>x</_this>"] {
            let doc = parse(empty.as_bytes()).unwrap();
            assert!(MoRef::from_element(root(&doc)).is_err(), "{empty}");
        }
    }
}
