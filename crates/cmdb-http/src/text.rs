//! [`JsonText`]: a string of a JSON answer, borrowed from the body when it can be.

use std::borrow::Cow;
use std::ops::Deref;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;

/// RFC 3986's unreserved characters (`A-Z a-z 0-9 - _ . ~`): the set the vendors' signers
/// leave as they are; every other byte is encoded as `%XX`, uppercase. For
/// [`percent_encoding::utf8_percent_encode`].
pub const RFC3986_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A JSON string borrowed from the answer's body unless it has escapes (then serde_json
/// unescapes it into a `String` of its own, which is moved, never copied again). Most
/// strings of an instance are only looked at, or copied once into the host, so decoding
/// each into a `String` of its own is an allocation and a copy wasted.
///
/// Decode with [`RawResponse::json`](crate::RawResponse::json), which lets types borrow
/// from the body, and mark the field `#[serde(borrow)]`.
///
/// ```
/// use cmdb_http::JsonText;
///
/// #[derive(serde::Deserialize)]
/// struct Instance<'a> {
///     #[serde(borrow)]
///     name: JsonText<'a>,
/// }
/// let i: Instance<'_> = serde_json::from_str(r#"{"name": "  web-1 "}"#).unwrap();
/// assert_eq!(&*i.name, "  web-1 ");
/// assert!(!i.name.is_blank());
/// assert_eq!(i.name.non_empty().as_deref(), Some("web-1"));
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct JsonText<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl Deref for JsonText<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl JsonText<'_> {
    /// Whether the string is empty once trimmed (found without trimming it).
    pub fn is_blank(&self) -> bool {
        self.0.chars().all(char::is_whitespace)
    }

    /// The string trimmed, `None` when that leaves nothing. A string already owned is
    /// moved, not copied, when it needs no trimming.
    pub fn non_empty(self) -> Option<String> {
        let trimmed = self.0.trim();
        if trimmed.is_empty() {
            None
        } else if trimmed.len() == self.0.len() {
            Some(self.0.into_owned())
        } else {
            Some(trimmed.to_owned())
        }
    }

    /// The string as it is: moved when owned, else copied once from the body.
    pub fn into_string(self) -> String {
        self.0.into_owned()
    }
}
