//! The `ACS3-HMAC-SHA256` signer (Alibaba Cloud's V3 request signature): a pure function
//! of the request and the key, so it can be checked against the published example.
//!
//! Reference: Alibaba Cloud, "V3 request structure and signature"
//! (help.aliyun.com/zh/sdk/product-overview/v3-request-structure-and-signature).

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The algorithm name, first word of the `Authorization` header and of the string to sign.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// What the signer needs to know about one request.
///
/// `headers` are the headers to sign, by any case of name: every `x-acs-*` header plus
/// `host` and `content-type` are signed, others are ignored. `query` holds the decoded
/// query parameters, in any order.
#[derive(Debug, Clone, Copy)]
pub struct SigningRequest<'a> {
    /// HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The path, `/` for RPC-style APIs.
    pub path: &'a str,
    /// Decoded query parameters.
    pub query: &'a [(String, String)],
    /// Headers, `x-acs-content-sha256` among them.
    pub headers: &'a [(String, String)],
    /// The body's hex SHA-256 (see [`hex_sha256`]).
    pub body_sha256: &'a str,
}

/// The result of signing: every intermediate string, for tests and debugging. None of
/// them holds key material.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    /// The canonical request.
    pub canonical_request: String,
    /// `ACS3-HMAC-SHA256\n<hex sha256 of the canonical request>`.
    pub string_to_sign: String,
    /// `;`-separated lowercase names of the signed headers.
    pub signed_headers: String,
    /// The hex HMAC-SHA256 signature.
    pub signature: String,
    /// The full `Authorization` header value.
    pub authorization: String,
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The authorization header is a bearer credential for this one request: keep it
        // out of logs anyway.
        f.debug_struct("Signature")
            .field("canonical_request", &self.canonical_request)
            .field("string_to_sign", &self.string_to_sign)
            .field("signed_headers", &self.signed_headers)
            .field("signature", &"<redacted>")
            .field("authorization", &"<redacted>")
            .finish()
    }
}

/// Hex SHA-256 of `data` (the `x-acs-content-sha256` value of a body).
pub fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// RFC 3986 percent-encoding as ACS3 wants it: `A-Z a-z 0-9 - _ . ~` kept, every other
/// byte of the UTF-8 form as `%XX` in uppercase (so space is `%20`, `*` is `%2A`,
/// `/` is `%2F`).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(
                char::from_digit(u32::from(b >> 4), 16).map_or('0', |c| c.to_ascii_uppercase()),
            );
            out.push(
                char::from_digit(u32::from(b & 0xf), 16).map_or('0', |c| c.to_ascii_uppercase()),
            );
        }
    }
    out
}

/// The canonical query string: names and values encoded, sorted by encoded name (then
/// value), `name=value` joined by `&`; an empty value gives `name=`. Also the exact query
/// a request should carry, so that what is sent is what was signed.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn is_signed_header(name: &str) -> bool {
    name.starts_with("x-acs-") || name == "host" || name == "content-type"
}

/// Signs a request with an access key pair.
pub fn sign(
    request: &SigningRequest<'_>,
    access_key_id: &str,
    access_key_secret: &str,
) -> Signature {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .filter(|(k, _)| is_signed_header(k))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let path = if request.path.is_empty() {
        "/"
    } else {
        request.path
    };
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method.to_ascii_uppercase(),
        path,
        canonical_query(request.query),
        canonical_headers,
        signed_headers,
        request.body_sha256
    );
    let string_to_sign = format!("{ALGORITHM}\n{}", hex_sha256(canonical_request.as_bytes()));
    let mut mac = Hmac::<Sha256>::new_from_slice(access_key_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let authorization = format!(
        "{ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}"
    );
    Signature {
        canonical_request,
        string_to_sign,
        signed_headers,
        signature,
        authorization,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn acs3_signature_matches_official_example() {
        // The worked example of Alibaba Cloud's V3 signature document.
        let query = pairs(&[
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
            ("RegionId", "cn-shanghai"),
        ]);
        let headers = pairs(&[
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            ("x-acs-content-sha256", &hex_sha256(b"")),
        ]);
        let s = sign(
            &SigningRequest {
                method: "POST",
                path: "/",
                query: &query,
                headers: &headers,
                body_sha256: &hex_sha256(b""),
            },
            "YourAccessKeyId",
            "YourAccessKeySecret",
        );
        assert_eq!(
            s.canonical_request,
            format!(
                "POST\n/\nImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n\
                 host:ecs.cn-shanghai.aliyuncs.com\nx-acs-action:RunInstances\n\
                 x-acs-content-sha256:{EMPTY_SHA256}\nx-acs-date:2023-10-26T10:22:32Z\n\
                 x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\nx-acs-version:2014-05-26\n\n\
                 host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n\
                 {EMPTY_SHA256}"
            )
        );
        assert_eq!(
            s.string_to_sign,
            "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert_eq!(
            s.signature,
            "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
        assert_eq!(
            s.authorization,
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,\
             SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,\
             Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    #[test]
    fn percent_encoding_follows_rfc3986() {
        assert_eq!(percent_encode("a b"), "a%20b");
        assert_eq!(percent_encode("a*b"), "a%2Ab");
        assert_eq!(percent_encode("a~b-c_d.e"), "a~b-c_d.e");
        assert_eq!(percent_encode("a/b"), "a%2Fb");
        assert_eq!(percent_encode("100%"), "100%25");
        assert_eq!(percent_encode("a+b=c&d"), "a%2Bb%3Dc%26d");
        assert_eq!(percent_encode("杭州"), "%E6%9D%AD%E5%B7%9E");
        assert_eq!(percent_encode(""), "");
    }

    #[test]
    fn canonical_query_sorts_by_name_and_keeps_empty_values() {
        let q = pairs(&[
            ("RegionId", "cn-hangzhou"),
            ("NextToken", ""),
            ("MaxResults", "100"),
            ("Tag.1.Key", "env name"),
            ("A", "x*y"),
        ]);
        assert_eq!(
            canonical_query(&q),
            "A=x%2Ay&MaxResults=100&NextToken=&RegionId=cn-hangzhou&Tag.1.Key=env%20name"
        );
        assert_eq!(canonical_query(&[]), "");
        // Sorting is on the encoded bytes: uppercase before lowercase.
        let q = pairs(&[("b", "1"), ("B", "2"), ("a", "3")]);
        assert_eq!(canonical_query(&q), "B=2&a=3&b=1");
    }

    #[test]
    fn only_host_content_type_and_acs_headers_are_signed() {
        let headers = pairs(&[
            ("Host", "ecs.example.com"),
            ("X-Acs-Date", " 2024-01-01T00:00:00Z "),
            ("user-agent", "cmdb"),
            ("content-type", "application/json"),
        ]);
        let s = sign(
            &SigningRequest {
                method: "post",
                path: "",
                query: &[],
                headers: &headers,
                body_sha256: EMPTY_SHA256,
            },
            "ak",
            "sk",
        );
        assert_eq!(s.signed_headers, "content-type;host;x-acs-date");
        assert!(s
            .canonical_request
            .starts_with("POST\n/\n\ncontent-type:application/json\nhost:ecs.example.com\nx-acs-date:2024-01-01T00:00:00Z\n\n"));
        // Another key gives another signature; the key never appears anywhere.
        let other = sign(
            &SigningRequest {
                method: "POST",
                path: "/",
                query: &[],
                headers: &headers,
                body_sha256: EMPTY_SHA256,
            },
            "ak",
            "another-secret-key",
        );
        assert_ne!(s.signature, other.signature);
        let shown = format!("{s:?}");
        assert!(!shown.contains(&s.signature), "{shown}");
        assert!(!shown.contains("another-secret-key"), "{shown}");
    }
}
