//! Entry points for this crate's criterion benchmarks (`benches/`): the decoding of a
//! `DescribeInstances` answer and the read of its `NextToken`, exactly as the client runs
//! them (the signer is public in [`sign`](crate::sign)). Not a stable API.

use cmdb_core::{Host, Result};
use cmdb_http::RawResponse;

use crate::client::{decode_instances, next_page_token};

/// Decodes a `DescribeInstances` answer (HTTP 200, JSON `body`) and maps its instances
/// to hosts of `region`.
pub fn decode_page(body: Vec<u8>, region: &str) -> Result<Vec<Host>> {
    let response = RawResponse::new(http::StatusCode::OK, http::HeaderMap::new(), body);
    Ok(decode_instances(&response, region)?.hosts)
}

/// Reads the `NextToken` of a `DescribeInstances` answer the way the provider does before
/// decoding the page.
pub fn next_token(response: &RawResponse, region: &str) -> Result<Option<String>> {
    next_page_token(response, region)
}
