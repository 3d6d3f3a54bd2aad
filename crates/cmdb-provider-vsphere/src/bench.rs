//! Entry points for this crate's criterion benchmarks (`benches/`): the decoding of a
//! `RetrievePropertiesEx` answer into hosts, exactly as a listing runs it, and the read
//! of its token that a listing makes before asking for the next page. Not a stable API.

use cmdb_core::{Host, Result};

use crate::client::read_answer;
use crate::model::page_token;
use crate::provider::PageDecoder;

/// Parses a `RetrievePropertiesEx` SOAP answer and maps its virtual machines to hosts of
/// vCenter `region` and `datacenter`, as the first page of a datacenter is decoded.
pub fn decode_page(xml: &[u8], region: &str, datacenter: &str) -> Result<Vec<Host>> {
    PageDecoder::new(region.to_owned())
        .decode_answer("RetrievePropertiesEx", xml, 0, datacenter, false)
        .map(|(hosts, _)| hosts)
}

/// Parses a `RetrievePropertiesEx` SOAP answer as a listing does before it asks for the
/// next page, and reads its token; a fault is an error.
pub fn scan_page(xml: &[u8]) -> Result<Option<String>> {
    read_answer("RetrievePropertiesEx", xml, |answer| Ok(page_token(answer)))
}
