//! Entry points for this crate's criterion benchmarks (`benches/`): the signer and the
//! decoding of a ListServersDetails answer, exactly as the client runs them. Not a
//! stable API.

use cmdb_core::{Host, Result};
use cmdb_http::RawResponse;

use crate::client::decode_servers;
use crate::sign::{sign, SignInput};

/// The `Authorization` header of a `GET` of `path?query` with these headers (`Host` and
/// `X-Sdk-Date` among them).
pub fn authorization(
    path: &str,
    query: &[(String, String)],
    headers: &[(&str, &str)],
    ak: &str,
    sk: &str,
) -> Result<String> {
    let input = SignInput {
        method: "GET",
        path,
        query,
        headers,
        body: b"",
    };
    Ok(sign(&input, sk)?.authorization(ak))
}

/// Decodes a ListServersDetails answer (HTTP 200, JSON `body`) and maps its servers to
/// hosts of `region`.
pub fn decode_page(body: Vec<u8>, region: &str) -> Result<Vec<Host>> {
    let response = RawResponse::new(
        reqwest::StatusCode::OK,
        reqwest::header::HeaderMap::new(),
        body,
    );
    Ok(decode_servers(&response, region, 1, 1000)?.0)
}
