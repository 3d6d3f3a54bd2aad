//! A pure `TC3-HMAC-SHA256` signer (Tencent Cloud API 3.0, "Signature v3").
//!
//! Everything is an input: method, the headers to sign (with their values exactly as
//! sent), the body bytes exactly as sent, the service name, the timestamp and the key
//! pair. Nothing here reads a clock, builds a request or logs.
//!
//! Steps (Tencent's "Signature v3" page, checked against the official Go SDK's
//! `tencentcloud/common/client.go`):
//! 1. canonical request: `METHOD\n/\n<query>\n<canonical headers>\n<signed headers>\n<hex sha256(body)>`,
//!    canonical headers `name:value\n` with name and value lower-cased and trimmed,
//!    sorted by name; the query is empty for `POST`;
//! 2. credential scope `<UTC date of the timestamp>/<service>/tc3_request`; string to sign
//!    `TC3-HMAC-SHA256\n<timestamp>\n<scope>\n<hex sha256(canonical request)>`;
//! 3. key chain `HMAC("TC3" + SecretKey, date)` -> `HMAC(., service)` ->
//!    `HMAC(., "tc3_request")`; signature = hex `HMAC(signing key, string to sign)`;
//! 4. `Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<scope>, SignedHeaders=<h>, Signature=<hex>`.

use std::fmt;

use chrono::DateTime;
use cmdb_core::{Error, ErrorKind, Result};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The algorithm name, first word of the `Authorization` header.
pub(crate) const ALGORITHM: &str = "TC3-HMAC-SHA256";

/// The last element of the credential scope and of the key chain.
const TERMINATOR: &str = "tc3_request";

/// What is signed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignInput<'a> {
    /// HTTP method, e.g. `POST`.
    pub(crate) method: &'a str,
    /// The canonical query string (empty for `POST`).
    pub(crate) query: &'a str,
    /// Headers to sign, names in any case, values exactly as sent. Must hold
    /// `content-type` and `host`.
    pub(crate) headers: &'a [(&'a str, &'a str)],
    /// The body bytes exactly as sent.
    pub(crate) body: &'a [u8],
    /// The API's service name (`cvm`, `region`), not taken from the host.
    pub(crate) service: &'a str,
    /// Unix seconds, also sent as `X-TC-Timestamp`.
    pub(crate) timestamp: i64,
}

/// Every intermediate of one signature, for tests and for the `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Signed {
    pub(crate) payload_hash: String,
    pub(crate) canonical_request: String,
    pub(crate) credential_scope: String,
    pub(crate) signed_headers: String,
    pub(crate) string_to_sign: String,
    pub(crate) signature: String,
    pub(crate) authorization: String,
}

impl fmt::Debug for Signed {
    // The signature and the header are bearer credentials for five minutes: never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("credential_scope", &self.credential_scope)
            .field("signed_headers", &self.signed_headers)
            .field("signature", &"<redacted>")
            .field("authorization", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    Zeroizing::new(mac.finalize().into_bytes().to_vec())
}

/// The UTC calendar date (`YYYY-MM-DD`) of a unix timestamp: the date of the scope is
/// UTC even where the caller's local date differs (e.g. 07:30 in UTC+8 is the previous
/// day in UTC).
pub(crate) fn utc_date(timestamp: i64) -> Result<String> {
    DateTime::from_timestamp(timestamp, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("timestamp {timestamp} is out of range"),
            )
        })
}

/// Signs `input` with the key pair.
///
/// Fails with [`InvalidInput`](ErrorKind::InvalidInput) when `content-type` or `host`
/// is not among the headers, a header is given twice, or the timestamp is out of range.
pub(crate) fn sign(input: &SignInput<'_>, secret_id: &str, secret_key: &str) -> Result<Signed> {
    let mut headers: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.trim().to_ascii_lowercase(),
                value.trim().to_lowercase(),
            )
        })
        .collect();
    headers.sort();
    for pair in headers.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("header {} is signed twice", pair[0].0),
            ));
        }
    }
    for required in ["content-type", "host"] {
        if !headers.iter().any(|(name, _)| name == required) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("TC3 signatures must sign the {required} header"),
            ));
        }
    }
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let payload_hash = sha256_hex(input.body);
    let canonical_request = format!(
        "{}\n/\n{}\n{}\n{}\n{}",
        input.method.to_ascii_uppercase(),
        input.query,
        canonical_headers,
        signed_headers,
        payload_hash
    );

    let date = utc_date(input.timestamp)?;
    let credential_scope = format!("{date}/{}/{TERMINATOR}", input.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{credential_scope}\n{}",
        input.timestamp,
        sha256_hex(canonical_request.as_bytes())
    );

    let secret = Zeroizing::new(format!("TC3{secret_key}"));
    let k_date = hmac(secret.as_bytes(), date.as_bytes());
    let k_service = hmac(&k_date, input.service.as_bytes());
    let k_signing = hmac(&k_service, TERMINATOR.as_bytes());
    let signature = hex::encode(&*hmac(&k_signing, string_to_sign.as_bytes()));

    let authorization = format!(
        "{ALGORITHM} Credential={secret_id}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}"
    );
    Ok(Signed {
        payload_hash,
        canonical_request,
        credential_scope,
        signed_headers,
        string_to_sign,
        signature,
        authorization,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Tencent's "Signature v3" page (DescribeInstances, body with
    /// an escaped Chinese instance name, exactly these bytes).
    const EXAMPLE_BODY: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
    const EXAMPLE_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
    const EXAMPLE_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

    fn example() -> Signed {
        sign(
            &SignInput {
                method: "POST",
                query: "",
                headers: &[
                    ("Content-Type", "application/json; charset=utf-8"),
                    ("Host", "cvm.tencentcloudapi.com"),
                ],
                body: EXAMPLE_BODY.as_bytes(),
                service: "cvm",
                timestamp: 1_551_113_065,
            },
            EXAMPLE_ID,
            EXAMPLE_KEY,
        )
        .unwrap()
    }

    #[test]
    fn signature_matches_official_example() {
        let s = example();
        assert_eq!(
            s.payload_hash,
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            s.canonical_request,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n\
             content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            sha256_hex(s.canonical_request.as_bytes()),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(s.credential_scope, "2019-02-25/cvm/tc3_request");
        assert_eq!(
            s.string_to_sign,
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n\
             5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            s.signature,
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        assert_eq!(
            s.authorization,
            format!(
                "TC3-HMAC-SHA256 Credential={EXAMPLE_ID}/2019-02-25/cvm/tc3_request, \
                 SignedHeaders=content-type;host, \
                 Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
            )
        );
    }

    #[test]
    fn another_body_byte_changes_the_signature() {
        // Same JSON value, different bytes (no spaces): the bytes are what is signed.
        let compact =
            r#"{"Limit":1,"Filters":[{"Values":["\u672a\u547d\u540d"],"Name":"instance-name"}]}"#;
        let s = sign(
            &SignInput {
                body: compact.as_bytes(),
                ..example_input()
            },
            EXAMPLE_ID,
            EXAMPLE_KEY,
        )
        .unwrap();
        assert_ne!(s.payload_hash, example().payload_hash);
        assert_ne!(s.signature, example().signature);
    }

    fn example_input() -> SignInput<'static> {
        SignInput {
            method: "POST",
            query: "",
            headers: &[
                ("Content-Type", "application/json; charset=utf-8"),
                ("Host", "cvm.tencentcloudapi.com"),
            ],
            body: EXAMPLE_BODY.as_bytes(),
            service: "cvm",
            timestamp: 1_551_113_065,
        }
    }

    #[test]
    fn header_names_and_values_are_lower_cased_trimmed_and_sorted() {
        let s = sign(
            &SignInput {
                headers: &[
                    ("X-TC-Action", " DescribeInstances "),
                    ("HOST", "CVM.TencentCloudAPI.com"),
                    ("content-TYPE", "Application/JSON; charset=UTF-8"),
                ],
                ..example_input()
            },
            EXAMPLE_ID,
            EXAMPLE_KEY,
        )
        .unwrap();
        assert_eq!(s.signed_headers, "content-type;host;x-tc-action");
        assert!(
            s.canonical_request.contains(
                "content-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\
                 x-tc-action:describeinstances\n\ncontent-type;host;x-tc-action\n"
            ),
            "{}",
            s.canonical_request
        );
        // Only the case differs from the official example's two headers: same signature.
        let two = sign(
            &SignInput {
                headers: &[
                    ("HOST", "CVM.TencentCloudAPI.com"),
                    ("content-TYPE", "Application/JSON; charset=UTF-8"),
                ],
                ..example_input()
            },
            EXAMPLE_ID,
            EXAMPLE_KEY,
        )
        .unwrap();
        assert_eq!(two.signature, example().signature);
    }

    #[test]
    fn the_scope_date_is_the_utc_date_around_midnight_in_utc_plus_8() {
        // 2024-03-01 07:59:59 in UTC+8 is still 2024-02-29 (leap day) in UTC ...
        let before = 1_709_251_199; // 2024-02-29T23:59:59Z
        assert_eq!(utc_date(before).unwrap(), "2024-02-29");
        // ... and 08:00:00 in UTC+8 is the first second of 2024-03-01 in UTC.
        assert_eq!(utc_date(before + 1).unwrap(), "2024-03-01");
        // Local midnight in UTC+8 (2024-03-01T00:00+08:00) is still February in UTC.
        assert_eq!(utc_date(1_709_222_400).unwrap(), "2024-02-29");

        let a = sign(
            &SignInput {
                timestamp: before,
                ..example_input()
            },
            EXAMPLE_ID,
            EXAMPLE_KEY,
        )
        .unwrap();
        let b = sign(
            &SignInput {
                timestamp: before + 1,
                ..example_input()
            },
            EXAMPLE_ID,
            EXAMPLE_KEY,
        )
        .unwrap();
        assert_eq!(a.credential_scope, "2024-02-29/cvm/tc3_request");
        assert_eq!(b.credential_scope, "2024-03-01/cvm/tc3_request");
        assert_ne!(a.signature, b.signature);
        assert!(a
            .string_to_sign
            .starts_with("TC3-HMAC-SHA256\n1709251199\n"));
    }

    #[test]
    fn the_service_comes_from_the_caller_not_the_host() {
        let s = sign(
            &SignInput {
                headers: &[
                    ("Content-Type", "application/json; charset=utf-8"),
                    ("Host", "127.0.0.1:18080"),
                ],
                ..example_input()
            },
            EXAMPLE_ID,
            EXAMPLE_KEY,
        )
        .unwrap();
        assert_eq!(s.credential_scope, "2019-02-25/cvm/tc3_request");
        assert!(s.canonical_request.contains("host:127.0.0.1:18080\n"));
        let region = sign(
            &SignInput {
                service: "region",
                ..example_input()
            },
            EXAMPLE_ID,
            EXAMPLE_KEY,
        )
        .unwrap();
        assert_eq!(region.credential_scope, "2019-02-25/region/tc3_request");
        assert_ne!(region.signature, example().signature);
    }

    #[test]
    fn content_type_and_host_must_be_signed() {
        for headers in [
            &[("Host", "cvm.tencentcloudapi.com")][..],
            &[("Content-Type", "application/json")][..],
        ] {
            let e = sign(
                &SignInput {
                    headers,
                    ..example_input()
                },
                EXAMPLE_ID,
                EXAMPLE_KEY,
            )
            .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
        let e = sign(
            &SignInput {
                headers: &[
                    ("Host", "a"),
                    ("host", "b"),
                    ("Content-Type", "application/json"),
                ],
                ..example_input()
            },
            EXAMPLE_ID,
            EXAMPLE_KEY,
        )
        .unwrap_err();
        assert!(e.message().contains("twice"), "{e}");
    }

    #[test]
    fn debug_hides_the_signature_and_the_key() {
        let s = example();
        let shown = format!("{s:?}");
        assert!(!shown.contains(&s.signature), "{shown}");
        assert!(!shown.contains(EXAMPLE_KEY), "{shown}");
        assert!(shown.contains("2019-02-25/cvm/tc3_request"), "{shown}");
    }
}
