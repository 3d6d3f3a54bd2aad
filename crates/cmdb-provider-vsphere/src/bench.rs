//! Entry points for this crate's criterion benchmarks (`benches/`): the decoding of a
//! `RetrievePropertiesEx` answer into hosts, exactly as a listing runs it, and the read
//! of its start that a listing makes before asking for the next page. Not a stable API.

use cmdb_core::{Host, Result};

use crate::provider::PageDecoder;
use crate::soap::{read_prefix, Prefix};

/// Parses a `RetrievePropertiesEx` SOAP answer and maps its virtual machines to hosts of
/// vCenter `region` and `datacenter`, as the first page of a datacenter is decoded.
pub fn decode_page(xml: &[u8], region: &str, datacenter: &str) -> Result<Vec<Host>> {
    PageDecoder::new(region.to_owned())
        .decode_answer("RetrievePropertiesEx", xml, 0, datacenter, false)
        .map(|(hosts, _)| hosts)
}

/// Reads the start of a `RetrievePropertiesEx` SOAP answer as a listing does before it
/// asks for the next page: whether it is a fault, and its token.
pub fn scan_page(xml: &[u8]) -> Result<Option<String>> {
    match read_prefix(xml, true)? {
        Prefix::Answer { token } => Ok(token),
        Prefix::Fault(_) => Err(cmdb_core::Error::decode("a SOAP fault")),
    }
}
