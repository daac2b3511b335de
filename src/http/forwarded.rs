//! Who is really calling. Behind a load balancer every connection comes from the balancer, so
//! when (and only when) the peer is a trusted proxy, Wharf believes what it forwards:
//! `X-Forwarded-For` (the right-most address that is not itself a trusted proxy),
//! `X-Forwarded-Proto` and `X-Forwarded-Host` (the proxy must set or overwrite them, not pass
//! on what clients send). A host is validated before it is written into a challenge's realm.
//! Part of `http`; depends on `auth::Origin` only.

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use ipnet::IpNet;

use crate::auth::Origin;

/// The client as the registry sees it after trusted proxies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub origin: Origin,
    /// The host the client addressed, if it is a well-formed `host[:port]`.
    pub host: Option<String>,
}

fn trusted(address: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&address))
}

/// Every comma-separated value of every instance of `name`, in order.
fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .map(|address| address.to_canonical())
}

pub fn client(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> Client {
    let peer = peer.to_canonical();
    let host_header = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !trusted(peer, proxies) {
        return Client {
            origin: Origin {
                address: peer,
                secure: false,
            },
            host: host_header.filter(|h| valid_host(h)).map(str::to_string),
        };
    }
    // Walk back from the nearest hop; stop at the first address no trusted proxy vouches for.
    let mut address = peer;
    for entry in values(headers, "x-forwarded-for").iter().rev() {
        let Some(hop) = forwarded_address(entry) else {
            break;
        };
        address = hop;
        if !trusted(hop, proxies) {
            break;
        }
    }
    let nearest = |name| values(headers, name).last().copied();
    let secure = nearest("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let host = nearest("x-forwarded-host").or(host_header);
    Client {
        origin: Origin { address, secure },
        host: host.filter(|h| valid_host(h)).map(str::to_string),
    }
}

/// `name[:port]` with a DNS name or IPv4 address, or `[ipv6][:port]`: nothing that could
/// break out of a quoted header parameter or point a realm at a path.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(':') && !port.contains(']') => (name, Some(port)),
        _ => (host, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !name.is_empty()
                && name.len() <= 253
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        }
    };
    port_ok && name_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (header::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let forwarded = headers(&[
            ("x-forwarded-for", "203.0.113.9, 198.51.100.4"),
            ("x-forwarded-for", "10.1.1.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "registry.example.com"),
            ("host", "10.0.0.5:5000"),
        ]);
        let direct = client(ip("192.0.2.1"), &forwarded, &proxies);
        assert_eq!(direct.origin.address, ip("192.0.2.1"));
        assert!(!direct.origin.secure);
        assert_eq!(direct.host.as_deref(), Some("10.0.0.5:5000"));

        // The right-most untrusted hop: 198.51.100.4 (203.0.113.9 could be spoofed by it).
        let proxied = client(ip("10.0.0.2"), &forwarded, &proxies);
        assert_eq!(proxied.origin.address, ip("198.51.100.4"));
        assert!(proxied.origin.secure);
        assert_eq!(proxied.host.as_deref(), Some("registry.example.com"));

        let mapped = client(ip("::ffff:10.0.0.2"), &headers(&[]), &proxies);
        assert_eq!(mapped.origin.address, ip("10.0.0.2"));
        let only_proxies = headers(&[("x-forwarded-for", "10.9.9.9, 10.8.8.8")]);
        assert_eq!(
            client(ip("10.0.0.2"), &only_proxies, &proxies)
                .origin
                .address,
            ip("10.9.9.9")
        );
        let garbage = headers(&[("x-forwarded-for", "198.51.100.4, nonsense")]);
        assert_eq!(
            client(ip("10.0.0.2"), &garbage, &proxies).origin.address,
            ip("10.0.0.2")
        );
    }

    #[test]
    fn hosts_are_validated() {
        for good in [
            "my_registry:5000",
            "localhost",
            "127.0.0.1:5000",
            "registry.example.com",
            "[::1]:5000",
            "[fd00::1]",
        ] {
            assert!(valid_host(good), "{good}");
        }
        for bad in [
            "",
            "a\"b",
            "evil.com/path",
            "a b",
            "host:",
            "host:99999999",
            "[::1",
            "x@y",
            "h:1:2",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
    }
}
