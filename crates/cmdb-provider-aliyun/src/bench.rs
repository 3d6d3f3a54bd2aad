//! Entry points for this crate's criterion benchmarks (`benches/`): the signer and the
//! decoding of a `DescribeInstances` answer, exactly as the client runs them. Not a
//! stable API.

use cmdb_core::{Host, Result};
use cmdb_http::RawResponse;

use crate::client::decode_instances;
use crate::sign::{hex_sha256, sign, SigningRequest};

/// The `Authorization` header of a bodiless RPC call with this query and these headers
/// (`host` and the `x-acs-*` ones), to path `/`.
pub fn authorization(
    query: &[(String, String)],
    headers: &[(String, String)],
    access_key_id: &str,
    access_key_secret: &str,
) -> String {
    let body_sha256 = hex_sha256(b"");
    let request = SigningRequest {
        method: "POST",
        path: "/",
        query,
        headers,
        body_sha256: &body_sha256,
    };
    sign(&request, access_key_id, access_key_secret).authorization
}

/// Decodes a `DescribeInstances` answer (HTTP 200, JSON `body`) and maps its instances
/// to hosts of `region`.
pub fn decode_page(body: Vec<u8>, region: &str) -> Result<Vec<Host>> {
    let response = RawResponse::new(http::StatusCode::OK, http::HeaderMap::new(), body);
    Ok(decode_instances(&response, region)?.hosts)
}
