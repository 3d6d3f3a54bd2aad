//! Where a provider sends its requests: the vendor's public host or an override.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use cmdb_core::{Error, Result};
use url::{Host, Url};

/// The field named in the errors of [`Endpoint::parse`].
const FIELD: &str = "address";

/// The base URL of a vendor API: `https://<host>` by default, or a full URL override
/// (http or https) for private clouds, proxies and tests.
///
/// An endpoint always has a host, no user name or password, no query and no fragment,
/// and its path ends with `/`, so [`join`](Self::join) appends below it.
///
/// ```
/// use cmdb_http::Endpoint;
///
/// let public = Endpoint::https_host("ecs.cn-hangzhou.aliyuncs.com")?;
/// assert_eq!(public.host_header(), "ecs.cn-hangzhou.aliyuncs.com");
///
/// let private = Endpoint::parse("http://127.0.0.1:8080/huawei")?;
/// assert_eq!(private.host_header(), "127.0.0.1:8080");
/// assert_eq!(private.join("/v1/servers").as_str(), "http://127.0.0.1:8080/huawei/v1/servers");
/// # Ok::<(), cmdb_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    url: Url,
}

impl Endpoint {
    /// Parses a full URL override.
    ///
    /// Errors are [`InvalidInput`](cmdb_core::ErrorKind::InvalidInput) about the field
    /// `address`: a scheme other than http or https, no host, a user name or password,
    /// a query or a fragment. Messages never repeat the address, which may carry a
    /// password.
    pub fn parse(address: &str) -> Result<Endpoint> {
        let address = address.trim();
        if address.is_empty() {
            return Err(Error::invalid_field(FIELD, "is empty"));
        }
        let url = Url::parse(address).map_err(|e| {
            Error::invalid_field(
                FIELD,
                format!("is not a valid URL ({e}); expected e.g. https://host:port"),
            )
        })?;
        Endpoint::from_url(url)
    }

    /// `https://<host>/`, the usual public endpoint. `host` may carry a port
    /// (`host:8443`) but nothing else.
    pub fn https_host(host: &str) -> Result<Endpoint> {
        let host = host.trim();
        if host.is_empty()
            || host.contains(['/', '?', '#', '@', '\\'])
            || host.contains(char::is_whitespace)
        {
            return Err(Error::invalid_field(FIELD, "is not a plain host name"));
        }
        Endpoint::parse(&format!("https://{host}"))
    }

    /// Checks a parsed URL and normalizes its path to end with `/`.
    pub fn from_url(mut url: Url) -> Result<Endpoint> {
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(Error::invalid_field(
                    FIELD,
                    format!("scheme must be http or https, not {other}"),
                ))
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::invalid_field(FIELD, "has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::invalid_field(
                FIELD,
                "must not carry a user name or password; credentials belong in the secret",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::invalid_field(
                FIELD,
                "must not carry a query or fragment",
            ));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Endpoint { url })
    }

    /// The base URL; its path ends with `/`.
    pub fn base_url(&self) -> &Url {
        &self.url
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    /// The host, without port; IPv6 addresses in brackets.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(443)
    }

    /// The `Host` header as the client sends it: the host, plus `:port` only when the
    /// port is not the scheme's default. Signers that sign `host` (Huawei's
    /// SDK-HMAC-SHA256, Tencent's TC3) must sign exactly this.
    pub fn host_header(&self) -> String {
        // `Url` drops a port equal to the scheme's default when parsing, so `port()` is
        // only `Some` for a non-default one.
        match self.url.port() {
            Some(port) => format!("{}:{port}", self.host()),
            None => self.host().to_owned(),
        }
    }

    /// The URL of `path` below the base path: `path` is appended to it (a leading `/` is
    /// ignored), so `join` never leaves the endpoint's host. A `?` or `#` in `path` is
    /// percent-encoded: set the query on the returned URL.
    pub fn join(&self, path: &str) -> Url {
        let mut url = self.url.clone();
        let full = format!("{}{}", self.url.path(), path.trim_start_matches('/'));
        url.set_path(&full);
        url
    }

    /// Whether the host is a link-local address: 169.254.0.0/16 or fe80::/10 (IPv4-mapped
    /// included), where cloud metadata services live. Host names are not resolved.
    pub fn is_link_local(&self) -> bool {
        match self.url.host() {
            Some(Host::Ipv4(ip)) => is_link_local_v4(ip),
            Some(Host::Ipv6(ip)) => is_link_local_v6(ip),
            _ => false,
        }
    }

    /// The host as an IP address, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.url.host()? {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        }
    }
}

fn is_link_local_v4(ip: Ipv4Addr) -> bool {
    ip.is_link_local()
}

fn is_link_local_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_link_local_v4(v4);
    }
    ip.segments()[0] & 0xffc0 == 0xfe80
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Endpoint> {
        Endpoint::parse(s)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// Scheme, host, port and path only: the constructors refuse a user name, password,
/// query or fragment, and `Debug` does not rely on that to keep them out of logs.
impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({}://{}", self.scheme(), self.host())?;
        if let Some(port) = self.url.port() {
            write!(f, ":{port}")?;
        }
        write!(f, "{})", self.url.path())
    }
}

#[cfg(test)]
mod tests {
    use cmdb_core::ErrorKind;

    use super::*;

    fn rejected(address: &str) -> Error {
        let e = Endpoint::parse(address).expect_err(address);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{address}");
        assert_eq!(e.field(), Some("address"), "{address}");
        assert!(e.to_string().contains("address"), "{e}");
        e
    }

    #[test]
    fn https_host_builds_the_public_endpoint() {
        let e = Endpoint::https_host("ecs.cn-hangzhou.aliyuncs.com").unwrap();
        assert_eq!(
            e.base_url().as_str(),
            "https://ecs.cn-hangzhou.aliyuncs.com/"
        );
        assert_eq!(e.host_header(), "ecs.cn-hangzhou.aliyuncs.com");
        assert_eq!(e.port(), 443);
        assert_eq!(e.scheme(), "https");
        let with_port = Endpoint::https_host("vc.lab:8443").unwrap();
        assert_eq!(with_port.host_header(), "vc.lab:8443");
    }

    #[test]
    fn https_host_rejects_anything_but_a_host() {
        for bad in [
            "",
            "a/b",
            "evil.com@good",
            "h?x=1",
            "h#f",
            "a b",
            "cn-hangzhou/../x",
        ] {
            let e = Endpoint::https_host(bad).expect_err(bad);
            assert_eq!(e.field(), Some("address"), "{bad}");
        }
    }

    #[test]
    fn parse_accepts_http_and_https_overrides() {
        let e = Endpoint::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(e.base_url().as_str(), "http://127.0.0.1:8080/");
        assert_eq!(e.host_header(), "127.0.0.1:8080");
        assert_eq!(e.port(), 8080);
        let e: Endpoint = " https://ECS.Example.com:443/prefix ".parse().unwrap();
        assert_eq!(
            e.host_header(),
            "ecs.example.com",
            "default port dropped, host lowercased"
        );
        assert_eq!(e.base_url().path(), "/prefix/");
        assert_eq!(e.to_string(), "https://ecs.example.com/prefix/");
    }

    #[test]
    fn host_header_keeps_non_default_ports_only() {
        assert_eq!(Endpoint::parse("http://h:80").unwrap().host_header(), "h");
        assert_eq!(
            Endpoint::parse("http://h:443").unwrap().host_header(),
            "h:443"
        );
        assert_eq!(
            Endpoint::parse("https://h:80").unwrap().host_header(),
            "h:80"
        );
        assert_eq!(
            Endpoint::parse("https://[::1]:9443").unwrap().host_header(),
            "[::1]:9443"
        );
    }

    #[test]
    fn parse_rejects_bad_addresses_naming_the_field() {
        let e = rejected("ftp://example.com");
        assert!(e.message().contains("http or https"), "{e}");
        rejected("file:///etc/passwd");
        rejected("not a url");
        rejected("");
        rejected("https://example.com/?token=abc");
        rejected("https://example.com/#frag");
        let e = rejected("https://admin:hunter2@vc.example.com/sdk");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
        rejected("https://user@vc.example.com/");
        rejected("unix:/var/run/x.sock");
    }

    #[test]
    fn debug_shows_no_userinfo_or_query() {
        let e = Endpoint::parse("https://[::1]:9443/sdk").unwrap();
        assert_eq!(format!("{e:?}"), "Endpoint(https://[::1]:9443/sdk/)");
        assert_eq!(
            format!("{:?}", Endpoint::https_host("ecs.example.com").unwrap()),
            "Endpoint(https://ecs.example.com/)"
        );
        // Built around the constructors' checks, as a future constructor might: `Debug`
        // still shows no credentials.
        let raw = Endpoint {
            url: Url::parse("https://admin:hunter2@vc.example.com:8443/sdk/?token=t0ken#f")
                .unwrap(),
        };
        let shown = format!("{raw:?} {raw:#?}");
        for hidden in ["admin", "hunter2", "t0ken", "#f", "?"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
        assert!(
            shown.starts_with("Endpoint(https://vc.example.com:8443/sdk/)"),
            "{shown}"
        );
    }

    #[test]
    fn join_appends_below_the_base_path() {
        let root = Endpoint::https_host("ecs.example.com").unwrap();
        assert_eq!(root.join("/").as_str(), "https://ecs.example.com/");
        assert_eq!(
            root.join("v1/p/servers").as_str(),
            "https://ecs.example.com/v1/p/servers"
        );
        let prefixed = Endpoint::parse("http://127.0.0.1:9000/api").unwrap();
        assert_eq!(
            prefixed.join("/v1/x").as_str(),
            "http://127.0.0.1:9000/api/v1/x"
        );
        // A scheme-relative or absolute path cannot change the host.
        assert_eq!(prefixed.join("//evil.com/x").host_str(), Some("127.0.0.1"));
        assert_eq!(
            prefixed.join("http://evil.com/x").host_str(),
            Some("127.0.0.1")
        );
        // A query is encoded into the path, never parsed as a query.
        let u = root.join("/x?a=1");
        assert_eq!(u.query(), None);
        assert_eq!(u.path(), "/x%3Fa=1");
    }

    #[test]
    fn link_local_addresses_are_detected() {
        for (address, expected) in [
            ("http://169.254.169.254/latest", true),
            ("http://169.254.0.1", true),
            ("http://[fe80::1]", true),
            ("http://[febf::1]", true),
            ("http://[::ffff:169.254.169.254]", true),
            ("http://[fec0::1]", false),
            ("http://10.0.0.1", false),
            ("http://127.0.0.1", false),
            ("http://[::1]", false),
            ("https://metadata.example.com", false),
        ] {
            assert_eq!(
                Endpoint::parse(address).unwrap().is_link_local(),
                expected,
                "{address}"
            );
        }
        assert_eq!(
            Endpoint::parse("http://10.0.0.1").unwrap().ip(),
            Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert_eq!(Endpoint::https_host("a.example").unwrap().ip(), None);
    }
}
