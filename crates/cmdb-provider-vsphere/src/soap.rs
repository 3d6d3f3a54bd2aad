//! SOAP 1.1 envelopes for vim25: writing requests and reading responses.
//!
//! Responses are read with quick-xml into a [`Document`]: one vector of nodes in
//! document order, linked by index as they are pushed, whose names and texts borrow
//! from the response body (only text that entities, CDATA or line-end normalisation
//! changed is copied). A page of virtual machines so costs a few allocations rather than
//! several per element, and no element is moved once read. [`Element`] is a `Copy`
//! handle on one node for the decoding in `model.rs`.
//!
//! Whether an answer is a fault, and the `token` of a page, are read from the start of a
//! response alone ([`read_prefix`]), so that the next page can be asked for before the
//! current one is decoded.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::{self, Write as _};

use cmdb_core::{Error, Result};
use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{PrefixDeclaration, QName};
use quick_xml::{Reader, XmlVersion};

/// The SOAP 1.1 envelope namespace.
pub(crate) const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The vim25 namespace every request and answer body lives in.
pub(crate) const VIM25_NS: &str = "urn:vim25";
/// XML Schema instance, for `xsi:type`.
pub(crate) const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// Stands for every other namespace: it only ever needs to compare unequal to the ones
/// above.
const OTHER_NS: &str = "(another namespace)";

/// Deeper documents are refused: vim25 answers nest a dozen levels at most.
const MAX_DEPTH: usize = 64;

/// No node: the end of a list of children.
const NONE: u32 = u32::MAX;

/// One element of a [`Document`]: 64 bytes, so that a page's nodes stay compact.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node<'a> {
    /// Local name, without prefix.
    name: Cow<'a, str>,
    /// Text content, entities resolved: the element's own text pieces, in order.
    text: Cow<'a, str>,
    /// Index of the first child, or [`NONE`].
    first_child: u32,
    /// Index of the next sibling, or [`NONE`].
    next_sibling: u32,
    /// Index of the element's type attributes in [`Document::types`], or [`NONE`]: most
    /// elements have none.
    types: u32,
    /// Namespace the element is bound to, if any.
    ns: Ns,
}

/// The type attributes of an element that has one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Types<'a> {
    /// Local part of `xsi:type`, prefix dropped (`xsd:string` -> `string`).
    xsi_type: Option<Cow<'a, str>>,
    /// The plain `type` attribute (a managed object reference's type).
    type_attr: Option<Cow<'a, str>>,
}

/// The namespace of an element: the known ones, or another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    None,
    Vim25,
    SoapEnv,
    Xsi,
    Other,
}

impl Ns {
    fn of(ns: &str) -> Ns {
        match ns {
            VIM25_NS => Ns::Vim25,
            SOAP_ENV_NS => Ns::SoapEnv,
            XSI_NS => Ns::Xsi,
            _ => Ns::Other,
        }
    }

    fn uri(self) -> Option<&'static str> {
        match self {
            Ns::None => None,
            Ns::Vim25 => Some(VIM25_NS),
            Ns::SoapEnv => Some(SOAP_ENV_NS),
            Ns::Xsi => Some(XSI_NS),
            Ns::Other => Some(OTHER_NS),
        }
    }
}

/// A parsed document borrowing from the text it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Document<'a> {
    /// Every element in document order (pre-order): the root first. Never empty.
    nodes: Vec<Node<'a>>,
    /// The type attributes of the elements that have one.
    types: Vec<Types<'a>>,
}

impl<'a> Document<'a> {
    /// Parses a whole document.
    pub(crate) fn parse(xml: &'a [u8]) -> Result<Document<'a>> {
        let text = utf8(xml)?;
        // vim25 answers hold an element for every 30 bytes or so: enough room that the
        // vector of a page hardly ever grows, without a pass to count them.
        let capacity = text.len() / 24 + 1;
        match Builder::new(text, capacity).read_plain() {
            Some(document) => Ok(document),
            None => Builder::new(text, capacity).finish(),
        }
    }

    /// The root element.
    pub(crate) fn root(&self) -> Element<'_> {
        Element {
            doc: self,
            index: 0,
        }
    }

    /// The answer or fault of a response envelope.
    pub(crate) fn reply(&self) -> Result<Reply<'_>> {
        let root = self.root();
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
}

/// One element of a [`Document`]: a cheap handle.
#[derive(Clone, Copy)]
pub(crate) struct Element<'d> {
    doc: &'d Document<'d>,
    index: u32,
}

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
    fn node(self) -> &'d Node<'d> {
        &self.doc.nodes[self.index as usize]
    }

    /// Local name, without prefix.
    pub(crate) fn name(self) -> &'d str {
        &self.node().name
    }

    /// The namespace the element is bound to, if any.
    pub(crate) fn ns(self) -> Option<&'static str> {
        self.node().ns.uri()
    }

    fn types(self) -> Option<&'d Types<'d>> {
        self.doc.types.get(self.node().types as usize)
    }

    /// Whether this is element `name` of namespace `ns`.
    pub(crate) fn is(self, ns: &str, name: &str) -> bool {
        self.name() == name && self.ns() == Some(ns)
    }

    /// Local part of `xsi:type`.
    pub(crate) fn xsi_type(self) -> Option<&'d str> {
        self.types()?.xsi_type.as_deref()
    }

    /// The plain `type` attribute.
    pub(crate) fn type_attr(self) -> Option<&'d str> {
        self.types()?.type_attr.as_deref()
    }

    /// Text content, entities resolved.
    pub(crate) fn text(self) -> &'d str {
        &self.node().text
    }

    /// Child elements in document order.
    pub(crate) fn children(self) -> Children<'d> {
        Children {
            doc: self.doc,
            next: self.node().first_child,
        }
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

/// The children of an [`Element`].
#[derive(Debug, Clone)]
pub(crate) struct Children<'d> {
    doc: &'d Document<'d>,
    next: u32,
}

impl<'d> Iterator for Children<'d> {
    type Item = Element<'d>;

    fn next(&mut self) -> Option<Element<'d>> {
        if self.next == NONE {
            return None;
        }
        let element = Element {
            doc: self.doc,
            index: self.next,
        };
        self.next = element.node().next_sibling;
        Some(element)
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
#[derive(Debug, Clone)]
pub(crate) enum Reply<'d> {
    /// The first element of the body, e.g. `RetrieveServiceContentResponse`.
    Answer(Element<'d>),
    /// A `soapenv:Fault`.
    Fault(SoapFault),
}

/// What one [`Builder::step`] read.
enum Step {
    /// An element started; `closed` for `<empty/>`, which gets no [`Step::Closed`].
    Opened {
        node: u32,
        parent: u32,
        closed: bool,
    },
    /// The element `node` ended.
    Closed { node: u32 },
    /// Text, a comment, a declaration: nothing to act on.
    Other,
    /// The end of the input.
    Eof,
}

/// Reads a document event by event into its nodes.
///
/// Namespaces are resolved here rather than by quick-xml's `NsReader`, which reads the
/// attributes of every element once more to find declarations and keeps their names in
/// a buffer of its own: this does it in the one pass over the attributes it makes
/// anyway. The rules are those of `NsReader` (Namespaces in XML 1.0): an unbound
/// prefix is an error, `xmlns:p=""` unbinds `p`, `xml` and `xmlns` are reserved, at
/// most [`MAX_BINDINGS`] declarations are in scope.
struct Builder<'a> {
    input: &'a str,
    reader: Reader<&'a [u8]>,
    nodes: Vec<Node<'a>>,
    types: Vec<Types<'a>>,
    /// The open elements: each with its last child so far (or [`NONE`]), so that a node
    /// is linked to its parent or sibling as it is pushed and never moves after, and
    /// with the number of namespace bindings in scope before it.
    open: Vec<Open>,
    /// The namespace bindings in scope, innermost last.
    bindings: Vec<Binding<'a>>,
}

/// An open element of a [`Builder`].
#[derive(Debug, Clone, Copy)]
struct Open {
    node: u32,
    last_child: u32,
    scope: usize,
}

/// A namespace prefix bound by `xmlns:prefix` (`""` for `xmlns`, the default one).
#[derive(Debug, Clone)]
struct Binding<'a> {
    prefix: Cow<'a, str>,
    /// `None` once unbound (`xmlns:p=""`).
    ns: Option<Ns>,
}

/// The namespace of the reserved prefix `xml`.
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace of the reserved prefix `xmlns`.
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";
/// Namespace declarations allowed in scope at once, as quick-xml allows.
const MAX_BINDINGS: usize = 128;

impl<'a> Builder<'a> {
    fn new(input: &'a str, capacity: usize) -> Builder<'a> {
        let reserved = |prefix| Binding {
            prefix: Cow::Borrowed(prefix),
            ns: Some(Ns::Other),
        };
        Builder {
            input,
            reader: Reader::from_str(input),
            nodes: Vec::with_capacity(capacity),
            // A vim25 page types about one element in three (`<val xsi:type=…>`).
            types: Vec::with_capacity(capacity / 3),
            open: Vec::with_capacity(16),
            bindings: vec![reserved("xml"), reserved("xmlns")],
        }
    }

    fn step(&mut self) -> Result<Step> {
        let event = self
            .reader
            .read_event()
            .map_err(|e| malformed(e.to_string()))?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let closed = matches!(event, Event::Empty(_));
                self.open_element(start, closed)
            }
            Event::End(_) => {
                let open = self
                    .open
                    .pop()
                    .ok_or_else(|| malformed("unexpected end tag"))?;
                self.bindings.truncate(open.scope);
                Ok(Step::Closed { node: open.node })
            }
            Event::Text(t) => {
                // Only a `\r` makes the XML 1.0 line-end normalisation change a text.
                let text = if t.bytes().any(|b| b == b'\r') {
                    t.xml10_content()
                } else {
                    t.into_inner()
                };
                self.append(text);
                Ok(Step::Other)
            }
            Event::CData(c) => {
                self.append(c.into_inner());
                Ok(Step::Other)
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(ch)) => Cow::Owned(ch.to_string()),
                    Ok(None) => Cow::Borrowed(
                        resolve_predefined_entity(&r)
                            .ok_or_else(|| malformed(format!("unknown entity &{};", &*r)))?,
                    ),
                    Err(e) => return Err(malformed(format!("bad character reference: {e}"))),
                };
                self.append(resolved);
                Ok(Step::Other)
            }
            Event::Eof => Ok(Step::Eof),
            _ => Ok(Step::Other),
        }
    }

    /// Adds the element of a start tag, `closed` for `<empty/>`.
    fn open_element(&mut self, start: &BytesStart<'_>, closed: bool) -> Result<Step> {
        let attributes = || {
            let mut attributes = start.attributes();
            attributes.with_checks(false);
            attributes.map(|attr| attr.map_err(|e| malformed(format!("bad attribute: {e}"))))
        };
        self.open_tag(start.name().0, attributes, closed)
    }

    /// Adds the element of a start tag named `qname` with `attributes` (a new iterator
    /// over them at each call), `closed` for `<empty/>`.
    fn open_tag<'t, I>(
        &mut self,
        qname: &'t str,
        attributes: impl Fn() -> I,
        closed: bool,
    ) -> Result<Step>
    where
        I: Iterator<Item = Result<Attribute<'t>>>,
    {
        if !self.nodes.is_empty() && self.open.is_empty() {
            return Err(malformed("content after the root element"));
        }
        if self.open.len() >= MAX_DEPTH {
            return Err(malformed("elements nest too deeply"));
        }
        let scope = self.bindings.len();
        let mut types = Types::default();
        let mut declared = false;
        // quick-xml's check for repeated names allocates for every element with
        // attributes: `names` does it without, for the usual one attribute.
        let mut names = Names::default();
        for attr in attributes() {
            let attr = attr?;
            if !names.insert(attr.key.0) {
                return Err(malformed(format!(
                    "bad attribute: {:?} is repeated",
                    attr.key.0
                )));
            }
            match attr.key.as_namespace_binding() {
                Some(prefix) => {
                    check_value(&attr)?;
                    self.declare(prefix, &attr.value)?;
                    declared = true;
                }
                None => self.read_type(&attr, &mut types)?,
            }
        }
        if declared {
            // Declarations apply to the attributes of their own element, wherever they
            // stand among them: read the type attributes again, all of them known.
            types = Types::default();
            for attr in attributes() {
                let attr = attr?;
                if attr.key.as_namespace_binding().is_none() {
                    self.read_type(&attr, &mut types)?;
                }
            }
        }
        let (local, prefix) = split_qname(qname);
        let ns = self.resolve(prefix)?;
        let types = if types.xsi_type.is_none() && types.type_attr.is_none() {
            NONE
        } else {
            self.types.push(types);
            u32::try_from(self.types.len() - 1).unwrap_or(NONE)
        };
        let node = Node {
            name: in_input(self.input, local),
            text: Cow::Borrowed(""),
            first_child: NONE,
            next_sibling: NONE,
            types,
            ns,
        };
        let parent = self.open.last().map_or(NONE, |open| open.node);
        let node = self.push(node)?;
        if closed {
            self.bindings.truncate(scope);
        } else {
            self.open.push(Open {
                node,
                last_child: NONE,
                scope,
            });
        }
        Ok(Step::Opened {
            node,
            parent,
            closed,
        })
    }

    /// Binds `prefix` to `ns` (a raw attribute value, as quick-xml compares them) until
    /// the current element ends.
    fn declare(&mut self, prefix: PrefixDeclaration<'_>, ns: &str) -> Result<()> {
        let prefix = match prefix {
            PrefixDeclaration::Default => "",
            PrefixDeclaration::Named("xml") if ns == XML_NS => return Ok(()),
            PrefixDeclaration::Named("xml") => {
                return Err(malformed(format!("the prefix xml bound to {ns:?}")))
            }
            PrefixDeclaration::Named("xmlns") => {
                return Err(malformed("the prefix xmlns declared"))
            }
            PrefixDeclaration::Named(prefix) if ns == XML_NS || ns == XMLNS_NS => {
                return Err(malformed(format!(
                    "the prefix {prefix} bound to the reserved {ns:?}"
                )))
            }
            PrefixDeclaration::Named(prefix) => prefix,
        };
        // The two reserved bindings do not count.
        if self.bindings.len() - 2 >= MAX_BINDINGS {
            return Err(malformed("too many namespace declarations in scope"));
        }
        self.bindings.push(Binding {
            prefix: in_input(self.input, prefix),
            ns: (!ns.is_empty()).then(|| Ns::of(ns)),
        });
        Ok(())
    }

    /// The namespace of an element name with `prefix`.
    fn resolve(&self, prefix: Option<&str>) -> Result<Ns> {
        let mut bindings = self.bindings.iter().rev();
        match prefix {
            // The default namespace, if one is declared (and not undeclared).
            None => Ok(bindings
                .find(|b| b.prefix.is_empty())
                .and_then(|b| b.ns)
                .unwrap_or(Ns::None)),
            Some(prefix) => bindings
                .find(|b| !b.prefix.is_empty() && b.prefix == prefix)
                .and_then(|b| b.ns)
                .ok_or_else(|| malformed(format!("unbound namespace prefix {prefix}"))),
        }
    }

    /// Keeps `attr` in `types` if it is `type` or `xsi:type` (whatever the prefix bound
    /// to XSI); checks its value either way. Other prefixes need not be bound.
    fn read_type(&self, attr: &Attribute<'_>, types: &mut Types<'a>) -> Result<()> {
        let xsi = match split_qname(attr.key.0) {
            ("type", None) => false,
            ("type", prefix @ Some(_)) if self.resolve(prefix).ok() == Some(Ns::Xsi) => true,
            _ => return check_value(attr),
        };
        // Normalisation changes only values with a reference or a `\t`, `\r` or `\n`:
        // most are kept as they are, without the call.
        let value = if attr
            .value
            .bytes()
            .any(|b| matches!(b, b'&' | b'\t' | b'\r' | b'\n'))
        {
            attr.normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| malformed(format!("bad attribute value: {e}")))?
        } else {
            Cow::Borrowed(&*attr.value)
        };
        if xsi {
            types.xsi_type = Some(match value {
                Cow::Borrowed(v) => in_input(self.input, local_part(v)),
                Cow::Owned(v) => Cow::Owned(local_part(&v).to_owned()),
            });
        } else {
            types.type_attr = Some(match value {
                Cow::Borrowed(v) => in_input(self.input, v),
                Cow::Owned(v) => Cow::Owned(v),
            });
        }
        Ok(())
    }

    /// Adds `node` as the last child of the innermost open element (or as the root).
    fn push(&mut self, node: Node<'a>) -> Result<u32> {
        let index = u32::try_from(self.nodes.len())
            .ok()
            .filter(|i| *i != NONE)
            .ok_or_else(|| malformed("too many elements"))?;
        if let Some(open) = self.open.last_mut() {
            if open.last_child == NONE {
                self.nodes[open.node as usize].first_child = index;
            } else {
                self.nodes[open.last_child as usize].next_sibling = index;
            }
            open.last_child = index;
        }
        self.nodes.push(node);
        Ok(index)
    }

    /// Adds a piece of text to the innermost open element: borrowed if it is the first,
    /// copied together with the others if not. Text outside the root is dropped.
    fn append(&mut self, piece: Cow<'a, str>) {
        if piece.is_empty() {
            return;
        }
        let Some(open) = self.open.last() else {
            return;
        };
        let text = &mut self.nodes[open.node as usize].text;
        if text.is_empty() {
            *text = piece;
        } else {
            text.to_mut().push_str(&piece);
        }
    }

    /// Reads the whole document without quick-xml, if it is written in the plain XML
    /// that vim25 servers write: start tags of simple names and `name="value"`
    /// attributes (values without a reference, `<` or a line end), end tags that repeat
    /// their start tag's name exactly, texts with no `\r` and no reference but the five
    /// predefined entities, and an XML declaration at the very start. `None` for
    /// anything else, well-formed or not (a comment, CDATA, a character reference, an
    /// error): quick-xml then reads the document from the start, so that whatever it
    /// reads is read as before. What is read here is what quick-xml reads too (a test
    /// compares both on many pages), at a fraction of the cost: no event, no UTF-8
    /// check of every name and text, no second scan of the attributes.
    fn read_plain(mut self) -> Option<Document<'a>> {
        let input = self.input;
        let bytes = input.as_bytes();
        let mut at = 0;
        if bytes.starts_with(b"<?xml") && bytes.get(5).copied().is_some_and(is_whitespace) {
            // The declaration ends at the first `?>`, as quick-xml ends it; it says
            // nothing a `&str` does not.
            at = find_pair(bytes, 5, b'?', b'>')? + 2;
        }
        // The names of the open elements, to check end tags against.
        let mut open_names: Vec<&'a str> = Vec::with_capacity(16);
        // The attributes of the start tag being read.
        let mut attributes: Vec<(&'a str, &'a str)> = Vec::new();
        loop {
            let text_end = self.plain_text(at)?;
            let Some(&b'<') = bytes.get(text_end) else {
                break;
            };
            at = text_end + 1;
            if bytes.get(at) == Some(&b'/') {
                let name = open_names.pop()?;
                let name_end = at + 1 + name.len();
                if input.get(at + 1..name_end)? != name || bytes.get(name_end) != Some(&b'>') {
                    return None;
                }
                let open = self.open.pop()?;
                self.bindings.truncate(open.scope);
                at = name_end + 1;
                continue;
            }
            let name_end = skip(bytes, at, NAME_BYTE);
            let name = input.get(at..name_end).filter(|n| !n.is_empty())?;
            at = name_end;
            attributes.clear();
            let closed = loop {
                match *bytes.get(at)? {
                    b'>' => {
                        at += 1;
                        break false;
                    }
                    b'/' if bytes.get(at + 1) == Some(&b'>') => {
                        at += 2;
                        break true;
                    }
                    b if is_whitespace(b) => {
                        at = skip(bytes, at + 1, SPACE);
                        if matches!(bytes.get(at), Some(b'>' | b'/')) {
                            continue;
                        }
                        let key_end = skip(bytes, at, NAME_BYTE);
                        let key = input.get(at..key_end).filter(|k| !k.is_empty())?;
                        if bytes.get(key_end) != Some(&b'=') {
                            return None;
                        }
                        let quote = *bytes
                            .get(key_end + 1)
                            .filter(|q| matches!(q, b'"' | b'\''))?;
                        let value_start = key_end + 2;
                        let mut value_end = find(bytes, value_start, VALUE_END);
                        // The other quote is a byte of the value.
                        while bytes
                            .get(value_end)
                            .is_some_and(|&b| b != quote && matches!(b, b'"' | b'\''))
                        {
                            value_end = find(bytes, value_end + 1, VALUE_END);
                        }
                        if bytes.get(value_end) != Some(&quote) {
                            return None;
                        }
                        attributes.push((key, input.get(value_start..value_end)?));
                        at = value_end + 1;
                        // Another attribute, or the end of the tag, must follow.
                        if !bytes
                            .get(at)
                            .is_some_and(|&b| b == b'>' || b == b'/' || is_whitespace(b))
                        {
                            return None;
                        }
                    }
                    _ => return None,
                }
            };
            let read = || {
                attributes.iter().map(|&(key, value)| {
                    Ok(Attribute {
                        key: QName(key),
                        value: Cow::Borrowed(value),
                    })
                })
            };
            self.open_tag(name, read, closed).ok()?;
            if !closed {
                open_names.push(name);
            }
        }
        self.end().ok()
    }

    /// Reads the text from `at` to the next `<` (or the end), appends it to the
    /// innermost open element, and returns where it ends; `None` for a text that the
    /// plain reader leaves to quick-xml.
    fn plain_text(&mut self, mut at: usize) -> Option<usize> {
        let input = self.input;
        let bytes = input.as_bytes();
        loop {
            let end = find(bytes, at, TEXT_END);
            self.append(Cow::Borrowed(input.get(at..end)?));
            match bytes.get(end) {
                Some(b'&') => {
                    // quick-xml's reference ends at the first `;`, and is an error if a
                    // `<` or `&` comes first: any of these is not one of the five.
                    let semicolon =
                        end + 1 + bytes.get(end + 1..)?.iter().position(|&b| b == b';')?;
                    let entity = match input.get(end + 1..semicolon)? {
                        "lt" => "<",
                        "gt" => ">",
                        "amp" => "&",
                        "apos" => "'",
                        "quot" => "\"",
                        _ => return None,
                    };
                    self.append(Cow::Borrowed(entity));
                    at = semicolon + 1;
                }
                Some(b'\r') => return None,
                _ => return Some(end),
            }
        }
    }

    /// Reads the rest of the document.
    fn finish(mut self) -> Result<Document<'a>> {
        while !matches!(self.step()?, Step::Eof) {}
        self.end()
    }

    /// The document, once the input has ended.
    fn end(self) -> Result<Document<'a>> {
        if !self.open.is_empty() {
            return Err(malformed("the document ends inside an element"));
        }
        if self.nodes.is_empty() {
            return Err(malformed("the document is empty"));
        }
        Ok(Document {
            nodes: self.nodes,
            types: self.types,
        })
    }

    /// Whether the input not read yet holds `needle`.
    fn rest_contains(&self, needle: &str) -> bool {
        usize::try_from(self.reader.buffer_position())
            .ok()
            .and_then(|at| self.input.get(at..))
            .is_none_or(|rest| rest.contains(needle))
    }
}

/// The classes of bytes the plain reader looks for, one bit each, by byte.
static CLASSES: [u8; 256] = classes();
/// A byte of a name: ASCII letters, digits, `_`, `-`, `.` and `:` (the plain reader
/// leaves other names to quick-xml).
const NAME_BYTE: u8 = 1;
/// A byte that ends a plain text: `<`, `&`, `\r`.
const TEXT_END: u8 = 2;
/// A byte that ends a plain attribute value, or makes it one the plain reader leaves
/// to quick-xml: a quote, `&`, `<`, `\t`, `\r`, `\n`.
const VALUE_END: u8 = 4;
/// XML whitespace, as quick-xml has it.
const SPACE: u8 = 8;

const fn classes() -> [u8; 256] {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':') {
            table[b] |= NAME_BYTE;
        }
        if matches!(c, b'<' | b'&' | b'\r') {
            table[b] |= TEXT_END;
        }
        if matches!(c, b'"' | b'\'' | b'&' | b'<' | b'\t' | b'\r' | b'\n') {
            table[b] |= VALUE_END;
        }
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            table[b] |= SPACE;
        }
        b += 1;
    }
    table
}

/// Whether `b` is of `class`.
#[inline]
fn is(b: u8, class: u8) -> bool {
    CLASSES[b as usize] & class != 0
}

/// XML whitespace, as quick-xml has it.
#[inline]
fn is_whitespace(b: u8) -> bool {
    is(b, SPACE)
}

/// Where the first byte from `at` on that is not of `class` is (or the end).
#[inline]
fn skip(bytes: &[u8], at: usize, class: u8) -> usize {
    let rest = bytes.get(at..).unwrap_or_default();
    at + rest
        .iter()
        .position(|&b| !is(b, class))
        .unwrap_or(rest.len())
}

/// Where the first byte from `at` on that is of `class` is (or the end).
#[inline]
fn find(bytes: &[u8], at: usize, class: u8) -> usize {
    let rest = bytes.get(at..).unwrap_or_default();
    at + rest
        .iter()
        .position(|&b| is(b, class))
        .unwrap_or(rest.len())
}

/// Where the first `first` followed by `second` starts, from `at` on.
fn find_pair(bytes: &[u8], at: usize, first: u8, second: u8) -> Option<usize> {
    let rest = bytes.get(at..)?;
    rest.windows(2)
        .position(|w| w[0] == first && w[1] == second)
        .map(|i| at + i)
}

/// Checks the value of an attribute that is not kept: only a reference can make it bad.
fn check_value(attr: &Attribute<'_>) -> Result<()> {
    if attr.value.contains('&') {
        attr.normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| malformed(format!("bad attribute value: {e}")))?;
    }
    Ok(())
}

/// The attribute names of one element.
#[derive(Default)]
struct Names<'e> {
    first: Option<&'e str>,
    /// The others; a set once there are many (a hostile answer could send thousands).
    more: Vec<&'e str>,
    /// Made only when needed: a set costs a random seed to make.
    many: Option<HashSet<&'e str>>,
}

impl<'e> Names<'e> {
    /// Adds `name`; false if it was there already.
    fn insert(&mut self, name: &'e str) -> bool {
        let Some(first) = self.first else {
            self.first = Some(name);
            return true;
        };
        if first == name {
            return false;
        }
        if let Some(many) = &mut self.many {
            return many.insert(name);
        }
        if self.more.contains(&name) {
            return false;
        }
        self.more.push(name);
        if self.more.len() >= 16 {
            self.many = Some(self.more.drain(..).collect());
        }
        true
    }
}

/// `s` borrowed from `input` if it is a slice of it, else a copy. quick-xml hands out
/// names and attribute values borrowed from its event, not from the input they point
/// into: finding their place in the input gives them the input's lifetime.
#[inline]
fn in_input<'a>(input: &'a str, s: &str) -> Cow<'a, str> {
    let within = (s.as_ptr() as usize)
        .checked_sub(input.as_ptr() as usize)
        .and_then(|start| input.get(start..start.checked_add(s.len())?));
    match within {
        Some(slice) => Cow::Borrowed(slice),
        None => Cow::Owned(s.to_owned()),
    }
}

/// The local name and prefix of a qualified name, split at its first `:` as quick-xml
/// splits them (a byte scan: names are short, and this is once per element).
fn split_qname(qname: &str) -> (&str, Option<&str>) {
    match qname.bytes().position(|b| b == b':') {
        Some(colon) => (
            qname.get(colon + 1..).unwrap_or_default(),
            qname.get(..colon),
        ),
        None => (qname, None),
    }
}

/// The local part of a qualified name: `xsd:string` -> `string`.
fn local_part(qname: &str) -> &str {
    match qname.bytes().rposition(|b| b == b':') {
        Some(colon) => qname.get(colon + 1..).unwrap_or_default(),
        None => qname,
    }
}

fn utf8(xml: &[u8]) -> Result<&str> {
    std::str::from_utf8(xml)
        .map_err(|e| Error::decode(format!("the SOAP response is not UTF-8: {e}")))
}

fn malformed(what: impl std::fmt::Display) -> Error {
    Error::decode(format!("malformed SOAP response: {what}"))
}

/// What the start of a response envelope says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Prefix {
    /// An answer in the vim25 namespace, with the `token` of its `returnval` if asked for
    /// (trimmed; `None` if absent or empty).
    Answer { token: Option<String> },
    /// A `soapenv:Fault`.
    Fault(SoapFault),
}

/// Reads a response envelope only as far as it takes to tell an answer from a fault,
/// and, with `token`, to find the `token` of a `RetrieveResult` (the first `token` child
/// of the answer's first `returnval`). The rest of an answer is left for its decoding,
/// which checks it; a fault is read whole.
///
/// vim25's `RetrieveResult` is a sequence of `token` then `objects`, so the token, when
/// there is one, comes before the objects. Should a server put one after them, it is
/// found all the same: the rest is read if it contains the word `token` at all.
pub(crate) fn read_prefix(xml: &[u8], token: bool) -> Result<Prefix> {
    let text = utf8(xml)?;
    let mut builder = Builder::new(text, 16);
    let (mut root, mut body, mut answer, mut returnval, mut token_node) =
        (NONE, NONE, NONE, NONE, NONE);
    let mut skimming = false;
    let found = |token: Option<&str>| -> Result<Prefix> {
        let token = token.map(str::trim).filter(|t| !t.is_empty());
        Ok(Prefix::Answer {
            token: token.map(str::to_owned),
        })
    };
    loop {
        match builder.step()? {
            Step::Opened {
                node,
                parent,
                closed,
            } => {
                let element = &builder.nodes[node as usize];
                let is =
                    |ns: &str, name: &str| element.name == name && element.ns.uri() == Some(ns);
                if parent == NONE {
                    if !is(SOAP_ENV_NS, "Envelope") {
                        return Err(malformed(format!(
                            "the root element is {:?}, not a SOAP envelope",
                            element.name
                        )));
                    }
                    if closed {
                        return Err(malformed("the envelope has no Body"));
                    }
                    root = node;
                } else if parent == root && body == NONE && is(SOAP_ENV_NS, "Body") {
                    if closed {
                        return Err(malformed("the Body is empty"));
                    }
                    body = node;
                } else if parent == body && answer == NONE {
                    if is(SOAP_ENV_NS, "Fault") {
                        return match builder.finish()?.reply()? {
                            Reply::Fault(fault) => Ok(Prefix::Fault(fault)),
                            Reply::Answer(_) => found(None),
                        };
                    }
                    if element.ns != Ns::Vim25 {
                        return Err(malformed(format!(
                            "the answer {:?} is not in the vim25 namespace",
                            element.name
                        )));
                    }
                    if !token || closed {
                        return found(None);
                    }
                    answer = node;
                } else if parent == answer && returnval == NONE && element.name == "returnval" {
                    if closed {
                        return found(None);
                    }
                    returnval = node;
                } else if parent == returnval && token_node == NONE {
                    if element.name == "token" {
                        if closed {
                            return found(None);
                        }
                        token_node = node;
                    } else if element.name == "objects" && !skimming {
                        // No token before the objects: the last page, unless one follows.
                        if !builder.rest_contains("token") {
                            return found(None);
                        }
                        skimming = true;
                    }
                }
            }
            Step::Closed { node } => {
                if node == token_node {
                    return found(Some(&builder.nodes[node as usize].text));
                }
                if node == returnval || node == answer {
                    return found(None);
                }
                if node == body {
                    return Err(malformed("the Body is empty"));
                }
                if node == root {
                    return Err(malformed("the envelope has no Body"));
                }
            }
            Step::Other => {}
            Step::Eof => {
                return Err(builder
                    .end()
                    .err()
                    .unwrap_or_else(|| malformed("the envelope has no Body")))
            }
        }
    }
}

/// The fault of a response body, if it is a well-formed envelope holding one.
pub(crate) fn parse_fault(xml: &[u8]) -> Option<SoapFault> {
    match Document::parse(xml).ok()?.reply() {
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
        .map(|d| match d.xsi_type() {
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

    const ANSWER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
 <S:Body><v:LoginResponse xmlns:v="urn:vim25"><v:returnval><v:key>k</v:key>
 <v:userName>a &amp; b &#x41;</v:userName><v:x xsi:type="xsd:string"><![CDATA[<raw>]]></v:x>
 <v:ref type="Folder">group-d1</v:ref></v:returnval></v:LoginResponse></S:Body></S:Envelope>"#;

    fn answer<'d>(doc: &'d Document<'d>) -> Element<'d> {
        match doc.reply().unwrap() {
            Reply::Answer(answer) => answer,
            Reply::Fault(fault) => panic!("fault {fault:?}"),
        }
    }

    fn decode_error(xml: &str) -> Error {
        let e = Document::parse(xml.as_bytes())
            .and_then(|doc| doc.reply().map(drop))
            .unwrap_err();
        assert_eq!(e.kind(), cmdb_core::ErrorKind::Decode, "{xml}: {e}");
        e
    }

    #[test]
    fn answers_are_read_with_namespaces_and_entities() {
        let doc = Document::parse(ANSWER.as_bytes()).unwrap();
        let answer = answer(&doc);
        assert_eq!(answer.name(), "LoginResponse");
        assert_eq!(answer.ns(), Some(VIM25_NS));
        let rv = answer.child("returnval").unwrap();
        assert_eq!(rv.child_text("userName"), Some("a & b A"));
        let x = rv.child("x").unwrap();
        assert_eq!((x.xsi_type(), x.text()), (Some("string"), "<raw>"));
        let r = MoRef::from_element(rv.child("ref").unwrap()).unwrap();
        assert_eq!(r, MoRef::new("Folder", "group-d1"));
        assert_eq!(
            rv.children().map(Element::name).collect::<Vec<_>>(),
            ["key", "userName", "x", "ref"]
        );
        assert_eq!(rv.children_named("key").count(), 1);
    }

    #[test]
    fn names_and_verbatim_texts_borrow_from_the_input() {
        let doc = Document::parse(ANSWER.as_bytes()).unwrap();
        let node = |name: &str| doc.nodes.iter().find(|n| n.name == name).unwrap();
        assert!(doc.nodes.iter().all(|n| matches!(n.name, Cow::Borrowed(_))));
        assert!(matches!(node("key").text, Cow::Borrowed("k")));
        assert!(matches!(node("x").text, Cow::Borrowed("<raw>")));
        let types = |name: &str| &doc.types[node(name).types as usize];
        assert!(matches!(types("x").xsi_type, Some(Cow::Borrowed("string"))));
        assert!(matches!(
            types("ref").type_attr,
            Some(Cow::Borrowed("Folder"))
        ));
        assert_eq!(doc.types.len(), 2, "only elements with a type attribute");
        assert!(std::mem::size_of::<Node<'_>>() <= 64);
        // Entities change the text: it is put together in a copy.
        assert!(matches!(node("userName").text, Cow::Owned(_)));
        // Line ends are normalised, attribute values too.
        let xml = "<a type=\"x&amp;y\">one\r\ntwo</a>";
        let doc = Document::parse(xml.as_bytes()).unwrap();
        assert_eq!(doc.root().text(), "one\ntwo");
        assert_eq!(doc.root().type_attr(), Some("x&y"));
    }

    #[test]
    fn elements_link_children_and_siblings_in_document_order() {
        let xml = "<r><a><b/><c>t</c></a><d/>tail</r>";
        let doc = Document::parse(xml.as_bytes()).unwrap();
        let names: Vec<_> = doc.nodes.iter().map(|n| n.name.as_ref()).collect();
        assert_eq!(names, ["r", "a", "b", "c", "d"]);
        let root = doc.root();
        assert_eq!(root.text(), "tail");
        let a = root.first_child().unwrap();
        assert_eq!(
            a.children().map(Element::name).collect::<Vec<_>>(),
            ["b", "c"]
        );
        assert_eq!(a.child_text("c"), Some("t"));
        assert_eq!(
            root.child("d").unwrap().first_child().map(Element::name),
            None
        );
        assert_eq!(root.children().count(), 2);
    }

    #[test]
    fn faults_name_their_vim_type() {
        let xml = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Cannot complete login</faultstring><detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        let fault = parse_fault(xml.as_bytes()).unwrap();
        assert_eq!(fault.fault_type.as_deref(), Some("InvalidLogin"));
        assert_eq!(fault.code.as_deref(), Some("ServerFaultCode"));
        assert_eq!(fault.message.as_deref(), Some("Cannot complete login"));
        assert_eq!(
            read_prefix(xml.as_bytes(), true).unwrap(),
            Prefix::Fault(fault)
        );
    }

    #[test]
    fn a_body_in_the_wrong_namespace_or_broken_xml_is_a_decode_error() {
        for bad in [
            "<Envelope><Body/></Envelope>",
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><X/></soapenv:Body></soapenv:Envelope>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><X xmlns="urn:vim25">"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body></soapenv:Body></soapenv:Envelope>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/></soapenv:Envelope>"#,
            "<a></b>",
            "",
            "<a>&bogus;</a>",
            "<a>&#xFFFFFFFF;</a>",
            "<a/><b/>",
            "<a/>text<b/>",
            "</a>",
            "<a><b></a>",
            "<a>",
            "<p:a/>",
            r#"<a type="&bogus;"/>"#,
            r#"<a other="&bogus;"/>"#,
            r#"<a x="1" x="2"/>"#,
            r#"<a x="1" y="2" x="3"/>"#,
        ] {
            decode_error(bad);
            let e = read_prefix(bad.as_bytes(), true).unwrap_err();
            assert_eq!(e.kind(), cmdb_core::ErrorKind::Decode, "{bad}: {e}");
        }
        let e = Document::parse(&[b'<', b'a', b'>', 0xff, b'<', b'/', b'a', b'>']).unwrap_err();
        assert!(e.to_string().contains("UTF-8"), "{e}");
    }

    #[test]
    fn repeated_attributes_are_refused_among_many() {
        let names: Vec<String> = (0..40).map(|i| format!("a{i}=\"{i}\"")).collect();
        let xml = format!("<r {}/>", names.join(" "));
        assert!(Document::parse(xml.as_bytes()).is_ok());
        for repeat in ["a0", "a1", "a15", "a16", "a39"] {
            let xml = format!("<r {} {repeat}=\"x\"/>", names.join(" "));
            let e = Document::parse(xml.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("repeated"), "{repeat}: {e}");
        }
    }

    /// Every element's name, namespace and type attributes; `None` for an error.
    type Read = Option<Vec<(String, Option<String>, Option<String>, Option<String>)>>;

    /// How quick-xml's `NsReader` resolves the names of `xml` (the parser used it before
    /// it resolved namespaces itself).
    fn as_ns_reader_reads(xml: &str) -> Read {
        use quick_xml::name::ResolveResult;
        let mut reader = quick_xml::NsReader::from_str(xml);
        let mut out = Vec::new();
        loop {
            let (ns, event) = reader.read_resolved_event().ok()?;
            match event {
                Event::Start(ref start) | Event::Empty(ref start) => {
                    let ns = match ns {
                        ResolveResult::Bound(ns) => Some(Ns::of(ns.0).uri()?.to_owned()),
                        ResolveResult::Unbound => None,
                        ResolveResult::Unknown(_) => return None,
                    };
                    let (mut xsi_type, mut type_attr) = (None, None);
                    for attr in start.attributes() {
                        let attr = attr.ok()?;
                        let (attr_ns, local) = reader.resolver().resolve_attribute(attr.key);
                        let value = attr.normalized_value(XmlVersion::Implicit1_0).ok()?;
                        match (attr_ns, local.as_ref()) {
                            (ResolveResult::Bound(ns), "type") if ns.0 == XSI_NS => {
                                xsi_type = Some(local_part(&value).to_owned())
                            }
                            (ResolveResult::Unbound, "type") => {
                                type_attr = Some(value.into_owned())
                            }
                            _ => {}
                        }
                    }
                    let name = start.local_name().as_ref().to_owned();
                    out.push((name, ns, xsi_type, type_attr));
                }
                Event::Eof => return Some(out),
                _ => {}
            }
        }
    }

    fn as_we_read(xml: &str) -> Read {
        let doc = Document::parse(xml.as_bytes()).ok()?;
        let owned = |s: Option<&str>| s.map(str::to_owned);
        let read = (0..doc.nodes.len() as u32)
            .map(|index| Element { doc: &doc, index })
            .map(|e| {
                let name = e.name().to_owned();
                (
                    name,
                    owned(e.ns()),
                    owned(e.xsi_type()),
                    owned(e.type_attr()),
                )
            })
            .collect();
        Some(read)
    }

    #[test]
    fn namespaces_resolve_as_quick_xml_resolves_them() {
        let many: String = (0..MAX_BINDINGS)
            .map(|i| format!(r#" xmlns:p{i}="u{i}""#))
            .collect();
        let mut cases: Vec<String> = [
            r#"<a xmlns="urn:vim25"><b xmlns=""><c/></b><d/></a>"#,
            r#"<a xmlns:v="urn:vim25"><v:b xmlns:v=""/></a>"#,
            r#"<a xmlns:v="urn:vim25"><b xmlns:v=""><v:c/></b></a>"#,
            r#"<a xmlns:v="urn:vim25"><b xmlns:v="other"><v:c/></b><v:d/></a>"#,
            r#"<a xmlns:v="urn:vim25"><v:b/><v:c xmlns:w="x"/><w:d/></a>"#,
            r#"<xml:a/>"#,
            r#"<xmlns:a/>"#,
            r#"<a xmlns:xml="http://www.w3.org/XML/1998/namespace"/>"#,
            r#"<a xmlns:xml="other"/>"#,
            r#"<a xmlns:xmlns="http://www.w3.org/2000/xmlns/"/>"#,
            r#"<a xmlns:p="http://www.w3.org/XML/1998/namespace"/>"#,
            r#"<a xmlns:p="http://www.w3.org/2000/xmlns/"/>"#,
            r#"<a xmlns="http://www.w3.org/XML/1998/namespace"/>"#,
            r#"<a xmlns:="urn:vim25"><b/></a>"#,
            r#"<:a/>"#,
            r#"<p:a:b xmlns:p="urn:vim25"/>"#,
            r#"<a xmlnsfoo="1" p:x="1" type="t"/>"#,
            r#"<a xsi:type="xsd:string" xmlns:xsi="{xsi}"/>"#,
            r#"<a xmlns:xsi="{xsi}"><b xsi:type="x:y" xmlns:xsi="other"/><c xsi:type="z"/></a>"#,
            r#"<a xmlns:i="{xsi}" xmlns:j="{xsi}" i:type="one" j:type="two" type="&amp;t"/>"#,
            r#"<a xmlns:i="{xsi}" i:type="a&amp;b:c"/>"#,
            r#"<a xmlns="a&amp;b"/>"#,
            r#"<a xmlns="&bogus;"/>"#,
            r#"<a xmlns:p="{xsi}" p:type="&bogus;"/>"#,
            r#"<a xmlns:p="urn:vim25"><p:b></p:b><p:c/></a>"#,
            r#"<a{many}><p0:b/></a>"#,
            r#"<a{many} xmlns:extra="u"/>"#,
            r#"<a{many}><b xmlns:x="y"/></a>"#,
            r#"<a{many}><b/><c xmlns:p0="v"/></a>"#,
        ]
        .iter()
        .map(|xml| xml.replace("{xsi}", XSI_NS).replace("{many}", &many))
        .collect();
        cases.push(ANSWER.to_owned());
        for xml in &cases {
            assert_eq!(as_we_read(xml), as_ns_reader_reads(xml), "{xml}");
        }
        assert!(as_we_read(&cases[0]).is_some());
        assert!(
            as_we_read(&cases[8]).is_none(),
            "the xml prefix is reserved"
        );
        assert!(as_we_read(&cases[25]).is_some(), "128 declarations");
        assert!(as_we_read(&cases[26]).is_none(), "too many declarations");
        assert!(as_we_read(&cases[27]).is_none(), "too many declarations");
        assert!(as_we_read(&cases[28]).is_none(), "a redeclaration counts");
    }

    /// A small deterministic generator (xorshift64*), so that a failure repeats.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'p>(&mut self, pool: &[&'p str]) -> &'p str {
            pool[self.below(pool.len())]
        }
    }

    /// A random document of the kinds vim25 servers write, and of many they do not; `clean`
    /// for one the plain reader should read (unless broken afterwards).
    fn random_document(rng: &mut Rng, clean: bool) -> String {
        // Each pool: the plain reader's kind first, then the others.
        const NAMES: (usize, &[&str]) = (
            16,
            &[
                "returnval",
                "objects",
                "obj",
                "propSet",
                "name",
                "val",
                "v:val",
                "xsi:x",
                "p0:b",
                "a.b-c_d",
                "S:Body",
                "9x",
                "v:",
                ":a",
                "a:b:c",
                "q",
                "é",
            ],
        );
        const ATTRIBUTES: (usize, &[&str]) = (
            15,
            &[
                r#"type="VirtualMachine""#,
                r#"xsi:type="xsd:string""#,
                r#"xsi:type='ArrayOfGuestNicInfo'"#,
                r#"xmlns="urn:vim25""#,
                r#"xmlns:v="urn:vim25""#,
                r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance""#,
                r#"xmlns:p0="other""#,
                r#"xmlns:v="""#,
                r#"xmlns="""#,
                r#"other='q"uote'"#,
                r#"type="x>y""#,
                r#"type="x""#,
                r#"p:type="y""#,
                r#"v:type="z""#,
                r#"xmlns:xml="http://www.w3.org/XML/1998/namespace""#,
                r#"type="a&amp;b""#,
                "type=\"a\nb\"",
                r#"type = "spaced""#,
                r#"unquoted=1"#,
                r#"bare"#,
            ],
        );
        const TEXTS: (usize, &[&str]) = (
            11,
            &[
                "plain",
                " ",
                "\n",
                "vm-7",
                "a &amp; b",
                "&lt;&gt;&quot;&apos;",
                "é",
                ">",
                "]]>",
                "2024-01-02T03:04:05Z",
                "&amp;&amp;",
                "&#65;",
                "&#x41;",
                "&bogus;",
                "&amp",
                "x\r\ny",
                "<![CDATA[c<d]]>",
                "<!-- c -->",
                "<?pi x?>",
                "&;",
                "a&b;c",
            ],
        );
        fn pick(
            rng: &mut Rng,
            (plain, pool): (usize, &[&'static str]),
            clean: bool,
        ) -> &'static str {
            pool[rng.below(if clean { plain } else { pool.len() })]
        }
        fn element(rng: &mut Rng, out: &mut String, depth: usize, clean: bool) {
            let name = pick(rng, NAMES, clean);
            out.push('<');
            out.push_str(name);
            for _ in 0..rng.below(4).saturating_sub(1) {
                out.push_str(pick(rng, (4, &[" ", "  ", "\n", "\t", "\r\n", ""]), clean));
                out.push_str(pick(rng, ATTRIBUTES, clean));
            }
            out.push_str(rng.pick(&["", "", " ", "\n"]));
            if rng.below(5) == 0 {
                out.push_str("/>");
                return;
            }
            out.push('>');
            for _ in 0..rng.below(if depth < 5 { 5 } else { 1 }) {
                if rng.below(2) == 0 {
                    out.push_str(pick(rng, TEXTS, clean));
                } else {
                    element(rng, out, depth + 1, clean);
                }
            }
            out.push_str("</");
            out.push_str(if !clean && rng.below(40) == 0 {
                "other"
            } else {
                name
            });
            out.push_str(pick(rng, (4, &[">", ">", ">", ">", " >"]), clean));
        }
        let mut out = String::new();
        out.push_str(pick(
            rng,
            (
                5,
                &[
                    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                    r#"<?xml version="1.0"?>"#,
                    "<?xml\n?>",
                    "",
                    " ",
                    "\u{feff}",
                    "<?xmlx?>",
                    "<!-- c -->",
                ],
            ),
            clean,
        ));
        out.push_str(rng.pick(&[
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:v="urn:vim25"><soapenv:Body>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>"#,
            "<r>",
        ]));
        for _ in 0..rng.below(4) {
            element(rng, &mut out, 0, clean);
        }
        out.push_str(if out.contains("<r>") {
            "</r>"
        } else {
            "</soapenv:Body></soapenv:Envelope>"
        });
        out.push_str(pick(
            rng,
            (5, &["", "", "\n", "tail", "&amp;", "<a/>", "&bogus;"]),
            clean,
        ));
        // Break it now and then.
        match rng.below(6) {
            0 => {
                out.truncate(out.floor_char_boundary(rng.below(out.len() + 1)));
            }
            1 => {
                let at = out.floor_char_boundary(rng.below(out.len() + 1));
                out.insert(
                    at,
                    ['<', '>', '&', '/', '"', '\'', '=', ' ', '\r', ':', ';'][rng.below(11)],
                );
            }
            2 => {
                let at = out.floor_char_boundary(rng.below(out.len()));
                if out.is_char_boundary(at + 1) {
                    out.remove(at);
                }
            }
            _ => {}
        }
        out
    }

    /// What the plain reader reads, it reads as quick-xml does; what it leaves, quick-xml
    /// reads as before. Compared on many random documents, broken ones among them.
    #[test]
    fn the_plain_reader_reads_what_quick_xml_reads() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut plain, mut left) = (0, 0);
        for _ in 0..30_000 {
            let clean = rng.below(2) == 0;
            let xml = random_document(&mut rng, clean);
            let capacity = xml.len() / 24 + 1;
            let by_quick_xml = Builder::new(&xml, capacity).finish();
            match Builder::new(&xml, capacity).read_plain() {
                Some(document) => {
                    plain += 1;
                    let expected = by_quick_xml.as_ref().unwrap_or_else(|e| {
                        panic!("plain read a document quick-xml refuses ({e}): {xml:?}")
                    });
                    assert_eq!(&document, expected, "{xml:?}");
                }
                None => left += 1,
            }
            // And whichever reads it, the parse is the one it was.
            match (Document::parse(xml.as_bytes()), by_quick_xml) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{xml:?}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{xml:?}"),
                (a, b) => panic!("{xml:?}: {a:?} but {b:?}"),
            }
        }
        // Both ways are taken, often.
        assert!(plain > 4_000 && left > 8_000, "plain {plain}, left {left}");
    }

    #[test]
    fn a_simulated_page_is_read_plainly_and_borrows_its_texts() {
        let xml = cmdb_testkit::vsphere::retrieve_properties_answer("dc-1", 20);
        let plain = Builder::new(&xml, 16).read_plain().expect("a plain page");
        assert_eq!(plain, Builder::new(&xml, 16).finish().unwrap());
        assert!(plain
            .nodes
            .iter()
            .all(|n| matches!((&n.name, &n.text), (Cow::Borrowed(_), Cow::Borrowed(_)))));
        // Entities make a copy, as they do in quick-xml's reading.
        let xml = "<a type=\"x\">one &amp; two</a>";
        let doc = Builder::new(xml, 16).read_plain().unwrap();
        assert!(matches!(&doc.nodes[0].text, Cow::Owned(t) if t == "one & two"));
        assert_eq!(doc.root().type_attr(), Some("x"));
        assert_eq!(doc, Builder::new(xml, 16).finish().unwrap());
        // A character reference, CDATA, a comment: left to quick-xml.
        for xml in ["<a>&#65;</a>", "<a><![CDATA[x]]></a>", "<a><!-- c --></a>"] {
            assert!(Builder::new(xml, 16).read_plain().is_none(), "{xml}");
            assert!(Document::parse(xml.as_bytes()).is_ok(), "{xml}");
        }
    }

    #[test]
    fn documents_nest_at_most_max_depth_elements() {
        let nested = |depth: usize| "<a>".repeat(depth) + &"</a>".repeat(depth);
        assert!(Document::parse(nested(MAX_DEPTH).as_bytes()).is_ok());
        let e = Document::parse(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("too deeply"), "{e}");
        let e = Document::parse(nested(100_000).as_bytes()).unwrap_err();
        assert_eq!(e.kind(), cmdb_core::ErrorKind::Decode);
    }

    fn page(inner: &str) -> String {
        format!(
            r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header><x><y/></x></soapenv:Header><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25">{inner}</RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#
        )
    }

    fn token_of(xml: &str) -> Option<String> {
        match read_prefix(xml.as_bytes(), true).unwrap() {
            Prefix::Answer { token } => token,
            Prefix::Fault(f) => panic!("fault {f:?}"),
        }
    }

    #[test]
    fn the_prefix_finds_a_page_token_wherever_it_is() {
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
            let xml = page(&inner);
            assert_eq!(token_of(&xml).as_deref(), token, "{inner}");
            // The full parse agrees.
            let doc = Document::parse(xml.as_bytes()).unwrap();
            let full = answer(&doc)
                .child("returnval")
                .and_then(|rv| rv.child_text("token"))
                .map(str::trim)
                .filter(|t| !t.is_empty());
            assert_eq!(full, token, "{inner}");
        }
        assert_eq!(
            read_prefix(
                page("<returnval><token>t1</token></returnval>").as_bytes(),
                false
            )
            .unwrap(),
            Prefix::Answer { token: None },
            "not asked for"
        );
    }

    #[test]
    fn the_prefix_reads_no_further_than_it_needs() {
        // Broken after the token (or after the answer starts, without a token): the
        // decoding of the whole answer finds it.
        let broken = page("<returnval><token>t1</token><objects>&bogus;</returnval>");
        assert_eq!(token_of(&broken).as_deref(), Some("t1"));
        decode_error(&broken);
        let xml = page("<returnval>");
        let cut = &xml[..xml.find("<returnval>").unwrap() + "<returnval>".len()];
        let e = read_prefix(cut.as_bytes(), true).unwrap_err();
        assert!(e.to_string().contains("ends inside"), "{e}");
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
        let doc = Document::parse(xml.as_bytes()).unwrap();
        assert_eq!(doc.root().name(), "Envelope");
        assert_eq!(answer(&doc).child_text("userName"), Some("a<b&\"c\""));
    }
}
