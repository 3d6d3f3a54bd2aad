//! Entry points for this crate's criterion benchmarks (`benches/`): the decoding of a
//! `DescribeInstances` answer, exactly as the client runs it (the signer is public in
//! [`sign`](crate::sign)). Not a stable API.

use cmdb_core::{Host, Result};
use cmdb_http::RawResponse;

use crate::client::decode_instances;

/// Decodes a `DescribeInstances` answer (HTTP 200, JSON `body`) and maps its instances
/// to hosts of `region`.
pub fn decode_page(body: Vec<u8>, region: &str) -> Result<Vec<Host>> {
    let response = RawResponse::new(http::StatusCode::OK, http::HeaderMap::new(), body);
    Ok(decode_instances(&response, region)?.hosts)
}
