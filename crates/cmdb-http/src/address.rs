//! Where vendor requests may connect: checked on the resolved IP, at connect time.
//!
//! A secret's endpoint is user input. Checked only as URL text, a host name that resolves
//! to a cloud metadata service (or is re-pointed there after the check, DNS rebinding)
//! would receive signed requests and, for vSphere, the password. So every address a
//! client connects to passes [`AddressPolicy::check`]: host names through a resolver
//! that drops refused addresses, IP literals before the request is sent.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use cmdb_core::{Error, ErrorKind};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Alibaba Cloud's instance metadata service.
const ALIYUN_METADATA: Ipv4Addr = Ipv4Addr::new(100, 100, 100, 200);
/// AWS's IPv6 instance metadata service.
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// Which addresses outgoing requests may connect to.
///
/// Always refused: unspecified (`0.0.0.0`, `::`), multicast and broadcast addresses.
/// Refused unless [`allow_link_local`](Self::allow_link_local): link-local ranges
/// (`169.254.0.0/16`, `fe80::/10`) and the cloud metadata addresses `100.100.100.200`
/// and `fd00:ec2::254`. Refused unless [`allow_private`](Self::allow_private): loopback,
/// private (`10/8`, `172.16/12`, `192.168/16`, `fc00::/7`) and shared (`100.64/10`)
/// ranges. The default refuses all of these: public vendor endpoints only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AddressPolicy {
    /// Loopback, private and shared address ranges may be reached: private clouds,
    /// on-premises vCenters, simulators on `127.0.0.1`.
    pub allow_private: bool,
    /// Link-local ranges and the cloud metadata addresses may be reached.
    pub allow_link_local: bool,
}

/// A connection refused by an [`AddressPolicy`]: the address and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedAddress {
    /// The host name asked for, or the address itself for a literal.
    pub host: String,
    /// The refused address.
    pub ip: IpAddr,
    /// What kind of address it is, e.g. "a cloud metadata address".
    pub reason: &'static str,
}

impl fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host == self.ip.to_string() {
            write!(f, "{} is {}", self.ip, self.reason)?;
        } else {
            write!(f, "{} resolves to {}, {}", self.host, self.ip, self.reason)?;
        }
        f.write_str(", where vendor requests are not sent")
    }
}

impl StdError for RefusedAddress {}

impl From<RefusedAddress> for Error {
    fn from(refused: RefusedAddress) -> Error {
        Error::new(ErrorKind::InvalidInput, refused.to_string()).with_retryable(false)
    }
}

/// What an address is, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Public,
    Private(&'static str),
    LinkLocal(&'static str),
    Never(&'static str),
}

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() {
        Class::Never("the unspecified address")
    } else if ip.is_broadcast() {
        Class::Never("the broadcast address")
    } else if ip.is_multicast() {
        Class::Never("a multicast address")
    } else if ip == ALIYUN_METADATA {
        Class::LinkLocal("a cloud metadata address")
    } else if ip.is_link_local() {
        Class::LinkLocal("a link-local address (cloud metadata services live there)")
    } else if ip.is_loopback() {
        Class::Private("a loopback address")
    } else if ip.is_private() {
        Class::Private("a private address")
    } else if a == 100 && (64..128).contains(&b) {
        Class::Private("a shared (carrier-grade NAT) address")
    } else {
        Class::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Class::Never("the unspecified address")
    } else if ip.is_multicast() {
        Class::Never("a multicast address")
    } else if ip == AWS_METADATA_V6 {
        Class::LinkLocal("a cloud metadata address")
    } else if first & 0xffc0 == 0xfe80 {
        Class::LinkLocal("a link-local address (cloud metadata services live there)")
    } else if ip.is_loopback() {
        Class::Private("a loopback address")
    } else if first & 0xfe00 == 0xfc00 {
        Class::Private("a private (unique local) address")
    } else {
        Class::Public
    }
}

impl AddressPolicy {
    /// Public addresses only (the default).
    pub fn public_only() -> AddressPolicy {
        AddressPolicy::default()
    }

    /// This policy, allowing loopback, private and shared ranges or not.
    pub fn with_private(mut self, allow: bool) -> AddressPolicy {
        self.allow_private = allow;
        self
    }

    /// This policy, allowing link-local ranges and cloud metadata addresses or not.
    pub fn with_link_local(mut self, allow: bool) -> AddressPolicy {
        self.allow_link_local = allow;
        self
    }

    /// Whether `ip`, reached for `host`, may be connected to.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), RefusedAddress> {
        let refused = |reason| RefusedAddress {
            host: host.to_owned(),
            ip,
            reason,
        };
        match classify(ip) {
            Class::Public => Ok(()),
            Class::Private(_) if self.allow_private => Ok(()),
            Class::LinkLocal(_) if self.allow_link_local => Ok(()),
            Class::Private(reason) | Class::LinkLocal(reason) | Class::Never(reason) => {
                Err(refused(reason))
            }
        }
    }

    /// Checks the host of `url` when it is an IP literal (host names are checked when
    /// they are resolved).
    pub fn check_url(&self, url: &url::Url) -> Result<(), RefusedAddress> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        self.check(&ip.to_string(), ip)
    }

    /// A reqwest resolver that resolves with the system resolver and drops the addresses
    /// this policy refuses; a name left with none fails with a [`RefusedAddress`].
    pub fn resolver(self) -> Arc<impl Resolve> {
        Arc::new(FilteringResolver { policy: self })
    }
}

/// Resolves names and keeps only the addresses the policy allows.
#[derive(Debug)]
struct FilteringResolver {
    policy: AddressPolicy,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
                .into_iter()
                .partition(|a| policy.check(&host, a.ip()).is_ok());
            if allowed.is_empty() {
                if let Some(first) = refused.first() {
                    let refusal = policy
                        .check(&host, first.ip())
                        .expect_err("partitioned as refused");
                    return Err(Box::new(refusal) as Box<dyn StdError + Send + Sync>);
                }
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The [`RefusedAddress`] somewhere in `error`'s chain, if any.
pub(crate) fn find_refusal<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a RefusedAddress> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<RefusedAddress>() {
            return Some(refused);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_policy_allows_public_addresses_only() {
        let policy = AddressPolicy::default();
        for public in ["47.88.1.1", "203.0.113.9", "2400:3200::1", "100.128.0.1"] {
            assert!(policy.check("h", ip(public)).is_ok(), "{public}");
        }
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fd12::1",
            "169.254.169.254",
            "100.100.100.200",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:169.254.169.254",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            "::",
            "255.255.255.255",
            "224.0.0.1",
            "ff02::1",
        ] {
            assert!(policy.check("h", ip(refused)).is_err(), "{refused}");
        }
    }

    #[test]
    fn private_ranges_open_separately_from_metadata_and_link_local() {
        let private = AddressPolicy::default().with_private(true);
        for allowed in ["127.0.0.1", "10.0.0.1", "::1", "fd12::1", "100.64.1.1"] {
            assert!(private.check("h", ip(allowed)).is_ok(), "{allowed}");
        }
        for refused in [
            "169.254.169.254",
            "100.100.100.200",
            "fd00:ec2::254",
            "fe80::1",
        ] {
            let e = private.check("h", ip(refused)).unwrap_err();
            assert!(
                e.reason.contains("metadata") || e.reason.contains("link-local"),
                "{e}"
            );
        }
        let lab = private.with_link_local(true);
        assert!(lab.check("h", ip("169.254.169.254")).is_ok());
        for never in ["0.0.0.0", "255.255.255.255", "239.1.1.1", "::"] {
            assert!(
                lab.check("h", ip(never)).is_err(),
                "{never} is never allowed"
            );
        }
    }

    #[test]
    fn refusals_name_the_host_and_address_and_are_typed() {
        let e = AddressPolicy::default()
            .check("metadata.example.test", ip("100.100.100.200"))
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("metadata.example.test") && text.contains("100.100.100.200"),
            "{text}"
        );
        let error = Error::from(e);
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert!(!error.is_retryable());
    }

    #[test]
    fn url_literals_are_checked_and_names_left_to_the_resolver() {
        let policy = AddressPolicy::default();
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert!(policy.check_url(&url("http://100.100.100.200/")).is_err());
        assert!(policy.check_url(&url("http://[fd00:ec2::254]/")).is_err());
        assert!(policy.check_url(&url("https://ecs.aliyuncs.com/")).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_that_resolves_only_to_refused_addresses() {
        // `localhost` resolves to loopback addresses only, from /etc/hosts.
        let refusing = AddressPolicy::default().resolver();
        let error = match refusing.resolve("localhost".parse::<Name>().unwrap()).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        let refusal = find_refusal(&*error).expect("a typed refusal");
        assert_eq!(refusal.host, "localhost");
        assert!(refusal.ip.is_loopback());

        let allowing = AddressPolicy::default().with_private(true).resolver();
        let addrs: Vec<SocketAddr> = allowing
            .resolve("localhost".parse::<Name>().unwrap())
            .await
            .expect("allowed")
            .collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
