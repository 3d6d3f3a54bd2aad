//! Entry points for this crate's criterion benchmarks (`benches/`): the signer and the
//! decoding of a `DescribeInstances` answer, exactly as the client runs them. Not a
//! stable API.

use cmdb_core::{Host, Result};
use cmdb_http::RawResponse;

use crate::client::{decode_instances, JSON_CONTENT_TYPE};
use crate::sign::{sign, SignInput};

/// The `Authorization` header of a CVM call with this JSON `body` to `host`, signed at
/// `timestamp` (Unix seconds).
pub fn authorization(
    body: &[u8],
    host: &str,
    timestamp: i64,
    secret_id: &str,
    secret_key: &str,
) -> Result<String> {
    let input = SignInput {
        method: "POST",
        query: "",
        headers: &[("Content-Type", JSON_CONTENT_TYPE), ("Host", host)],
        body,
        service: "cvm",
        timestamp,
    };
    Ok(sign(&input, secret_id, secret_key)?.authorization)
}

/// Decodes a `DescribeInstances` answer (HTTP 200, JSON `body`) and maps its instances
/// to hosts of `region`.
pub fn decode_page(body: bytes::Bytes, region: &str) -> Result<Vec<Host>> {
    let response = RawResponse::new(http::StatusCode::OK, http::HeaderMap::new(), body);
    Ok(decode_instances(&response, region)?.hosts)
}
