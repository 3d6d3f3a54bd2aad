//! The `SDK-HMAC-SHA256` signer of Huawei Cloud's API gateway, as a pure function.
//!
//! Canonical request (one field per line): method, canonical URI, canonical query,
//! canonical headers (each `name:value\n`), signed header names (`;`-joined), hex SHA-256
//! of the body. The URI's segments are RFC 3986 encoded and the URI always ends with `/`
//! for signing, although the request is sent without it. String to sign:
//! `SDK-HMAC-SHA256\n<X-Sdk-Date>\n<hex SHA-256 of the canonical request>`; the
//! signature is the hex HMAC-SHA256 of it keyed by the secret key, with no derivation.
//!
//! The official SDKs differ on which headers they sign (the Go SDK never signs
//! `content-type`, the signing guide's example does), so the caller passes exactly the
//! headers to sign. Names containing `_` are never signed: gateways drop such headers.
//!
//! Nothing here logs; the canonical request and string to sign hold no key material.

use cmdb_core::{Error, ErrorKind, Result};
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, percent_encode};
use sha2::{Digest, Sha256};

/// The algorithm name, first word of `Authorization` and of the string to sign.
pub(crate) const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// `X-Sdk-Date`'s format (`chrono` syntax): `YYYYMMDDTHHMMSSZ`, UTC.
pub(crate) const DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// What is signed of one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignInput<'a> {
    /// `GET`, `POST`, ...
    pub(crate) method: &'a str,
    /// The path as sent, percent-encoded or not (`%XX` sequences are decoded first, then
    /// every segment is encoded the canonical way).
    pub(crate) path: &'a str,
    /// Query parameters, decoded; repeated keys allowed.
    pub(crate) query: &'a [(String, String)],
    /// The headers to sign, `X-Sdk-Date` included; names in any case.
    pub(crate) headers: &'a [(&'a str, &'a str)],
    /// The body as sent.
    pub(crate) body: &'a [u8],
}

/// The result of signing, every intermediate kept for tests and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signed {
    /// The canonical request.
    pub(crate) canonical_request: String,
    /// The string to sign.
    pub(crate) string_to_sign: String,
    /// `;`-joined lowercase names of the signed headers.
    pub(crate) signed_headers: String,
    /// Hex HMAC-SHA256 of the string to sign.
    pub(crate) signature: String,
}

impl Signed {
    /// The `Authorization` header value for access key `ak`.
    pub(crate) fn authorization(&self, ak: &str) -> String {
        format!(
            "{ALGORITHM} Access={ak}, SignedHeaders={}, Signature={}",
            self.signed_headers, self.signature
        )
    }
}

/// Signs `input` with secret key `sk`. The date signed is the `X-Sdk-Date` header of
/// `input.headers`, which must be present.
pub(crate) fn sign(input: &SignInput<'_>, sk: &str) -> Result<Signed> {
    let (canonical_headers, signed_headers) = canonical_headers(input.headers);
    let date = input
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("x-sdk-date"))
        .map(|(_, value)| value.trim())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                "SDK-HMAC-SHA256 signing needs an X-Sdk-Date header among the signed headers",
            )
        })?;
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method.to_ascii_uppercase(),
        canonical_uri(input.path),
        canonical_query(input.query),
        canonical_headers,
        signed_headers,
        hex::encode(Sha256::digest(input.body)),
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{date}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(sk.as_bytes())
        .map_err(|_| Error::new(ErrorKind::InvalidInput, "unusable secret key"))?;
    mac.update(string_to_sign.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    Ok(Signed {
        canonical_request,
        string_to_sign,
        signed_headers,
        signature,
    })
}

/// RFC 3986 encoding: unreserved `A-Za-z0-9-_.~` kept, every other byte `%XX` uppercase.
pub(crate) fn encode(input: &[u8]) -> String {
    percent_encode(input, cmdb_http::RFC3986_UNRESERVED).to_string()
}

/// Decodes `%XX` sequences; anything else, a stray `%` included, is kept as is.
fn percent_decode(input: &str) -> Vec<u8> {
    percent_decode_str(input).collect()
}

/// Every segment decoded then encoded; a trailing `/` added for signing.
fn canonical_uri(path: &str) -> String {
    let mut uri = path
        .split('/')
        .map(|segment| encode(&percent_decode(segment)))
        .collect::<Vec<_>>()
        .join("/");
    if !uri.starts_with('/') {
        uri.insert(0, '/');
    }
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Parameters sorted by key, then by value for repeated keys, each `key=value` encoded,
/// `&`-joined. The client sends exactly this string as its query.
pub(crate) fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = query.iter().collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k.as_bytes()), encode(v.as_bytes())))
        .collect::<Vec<_>>()
        .join("&")
}

/// `(canonical headers, signed headers)`: names lowercased and sorted, names with `_`
/// dropped, values trimmed, repeated names one line per value, sorted.
fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut lines: Vec<(String, &str)> = headers
        .iter()
        .filter(|(name, _)| !name.contains('_'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim()))
        .collect();
    lines.sort();
    let mut canonical = String::new();
    let mut names: Vec<&str> = Vec::new();
    for (name, value) in &lines {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value);
        canonical.push('\n');
        if names.last() != Some(&name.as_str()) {
            names.push(name);
        }
    }
    (canonical, names.join(";"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn signing_guide_vpcs_request_matches_official_example() {
        let query = q(&[
            ("limit", "2"),
            ("marker", "13551d6b-755d-4757-b956-536f674975c0"),
        ]);
        let signed = sign(
            &SignInput {
                method: "GET",
                path: "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs",
                query: &query,
                headers: &[
                    ("Content-Type", "application/json"),
                    ("Host", "service.region.example.com"),
                    ("X-Sdk-Date", "20191115T033655Z"),
                ],
                body: b"",
            },
            "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
        )
        .unwrap();
        assert_eq!(
            signed.canonical_request,
            format!(
                "GET\n/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs/\n\
                 limit=2&marker=13551d6b-755d-4757-b956-536f674975c0\n\
                 content-type:application/json\nhost:service.region.example.com\nx-sdk-date:20191115T033655Z\n\n\
                 content-type;host;x-sdk-date\n{EMPTY_SHA256}"
            )
        );
        assert_eq!(
            signed.string_to_sign,
            "SDK-HMAC-SHA256\n20191115T033655Z\n\
             b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
        );
        assert_eq!(
            signed.signature,
            "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
        );
        assert_eq!(
            signed.authorization("QTWAOYTTINDUT2QVKYUC"),
            "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, \
             Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
        );
    }

    #[test]
    fn go_sdk_signer_test_matches_official_example() {
        // The Go SDK's test also passes a `TEST_UNDERSCORE` header, which is never signed.
        let query = q(&[("limit", "1")]);
        let signed = sign(
            &SignInput {
                method: "GET",
                path: "/path",
                query: &query,
                headers: &[
                    ("X-Sdk-Date", "20060102T150405Z"),
                    ("TEST_UNDERSCORE", "TEST_VALUE"),
                ],
                body: b"",
            },
            "SecretKey",
        )
        .unwrap();
        assert_eq!(
            signed.canonical_request,
            format!(
                "GET\n/path/\nlimit=1\nx-sdk-date:20060102T150405Z\n\nx-sdk-date\n{EMPTY_SHA256}"
            )
        );
        assert_eq!(signed.signed_headers, "x-sdk-date");
        assert_eq!(
            signed.authorization("AccessKey"),
            "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, \
             Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"
        );
    }

    #[test]
    fn python_sdk_signer_test_matches_official_example() {
        let query = q(&[("size", "1")]);
        let signed = sign(
            &SignInput {
                method: "GET",
                path: "/resources",
                query: &query,
                headers: &[
                    ("Host", "service.endpoint.myhuaweicloud.com"),
                    ("X-Sdk-Date", "20200608T023900Z"),
                ],
                body: b"",
            },
            "SecretKey",
        )
        .unwrap();
        assert_eq!(signed.signed_headers, "host;x-sdk-date");
        assert!(signed
            .canonical_request
            .starts_with("GET\n/resources/\nsize=1\n"));
        assert_eq!(
            signed.signature,
            "cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842"
        );
    }

    fn canonical(path: &str, query: &[(&str, &str)], headers: &[(&str, &str)]) -> String {
        let query = q(query);
        let mut all = headers.to_vec();
        all.push(("X-Sdk-Date", "20240101T000000Z"));
        sign(
            &SignInput {
                method: "get",
                path,
                query: &query,
                headers: &all,
                body: b"",
            },
            "sk",
        )
        .unwrap()
        .canonical_request
    }

    #[test]
    fn non_ascii_and_reserved_characters_are_percent_encoded() {
        let c = canonical(
            "/v1/p/servers",
            &[("name", "测试 a+b/c*~"), ("tag", "k=v&x")],
            &[],
        );
        let query = c.lines().nth(2).unwrap();
        assert_eq!(
            query,
            "name=%E6%B5%8B%E8%AF%95%20a%2Bb%2Fc%2A~&tag=k%3Dv%26x"
        );
        assert!(c.starts_with("GET\n"), "method upper-cased: {c}");
    }

    #[test]
    fn repeated_keys_sort_by_value_and_keys_sort_bytewise() {
        let c = canonical(
            "/",
            &[
                ("b", "2"),
                ("a", "z"),
                ("a", "y"),
                ("B", "1"),
                ("empty", ""),
            ],
            &[],
        );
        assert_eq!(c.lines().nth(2).unwrap(), "B=1&a=y&a=z&b=2&empty=");
    }

    #[test]
    fn path_segments_are_decoded_then_encoded_with_a_signing_only_slash() {
        // As sent by `url`: space and non-ASCII already percent-encoded, `:` kept.
        let c = canonical("/v1/a%20b/%E4%B8%AD/x:y/ok-_.~", &[], &[]);
        assert_eq!(
            c.lines().nth(1).unwrap(),
            "/v1/a%20b/%E4%B8%AD/x%3Ay/ok-_.~/"
        );
        // An existing trailing slash is not doubled; the root stays `/`.
        assert_eq!(canonical("/v1/", &[], &[]).lines().nth(1).unwrap(), "/v1/");
        assert_eq!(canonical("", &[], &[]).lines().nth(1).unwrap(), "/");
        // A stray `%` is itself encoded.
        assert_eq!(
            canonical("/a%zz", &[], &[]).lines().nth(1).unwrap(),
            "/a%25zz/"
        );
    }

    #[test]
    fn headers_are_lowercased_trimmed_sorted_and_underscores_never_signed() {
        let c = canonical(
            "/",
            &[],
            &[
                ("X-Project-Id", "  p1 "),
                ("Host", "127.0.0.1:8080"),
                ("X_Custom", "dropped"),
                ("x-multi", "b"),
                ("X-Multi", "a"),
            ],
        );
        let lines: Vec<&str> = c.lines().collect();
        assert_eq!(
            &lines[3..8],
            &[
                "host:127.0.0.1:8080",
                "x-multi:a",
                "x-multi:b",
                "x-project-id:p1",
                "x-sdk-date:20240101T000000Z"
            ]
        );
        assert_eq!(lines[9], "host;x-multi;x-project-id;x-sdk-date");
        assert!(!c.contains("dropped"));
    }

    #[test]
    fn the_body_hash_and_a_missing_date() {
        let signed = sign(
            &SignInput {
                method: "POST",
                path: "/",
                query: &[],
                headers: &[("X-Sdk-Date", "20240101T000000Z")],
                body: b"{}",
            },
            "sk",
        )
        .unwrap();
        assert!(signed
            .canonical_request
            .ends_with("44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"));
        let e = sign(
            &SignInput {
                method: "GET",
                path: "/",
                query: &[],
                headers: &[("Host", "h")],
                body: b"",
            },
            "sk",
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
