//! Who sent a request: the client's address and whether it reached us over HTTPS,
//! believing `Forwarded` / `X-Forwarded-*` headers only from configured proxies.
//!
//! Everything that needs the client (the request log, login throttling, the session
//! cookie's `Secure` flag) asks [`client_addr`] and [`is_https`]; never actix's
//! `connection_info()`, which believes those headers from anyone.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr},
    str::FromStr,
};

use actix_web::{http::header::HeaderMap, web, HttpRequest};
use serde::{Deserialize, Deserializer};

/// An address range in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a bare address
/// is the range of that one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, canonical(addr)) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(a).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                masked(u128::from(net), self.prefix, 128) == masked(u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `width`-bit address.
fn masked(addr: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        addr >> (width - prefix)
    }
}

/// IPv4 clients of a dual-stack listener arrive as `::ffff:a.b.c.d`; ranges and logs
/// speak of them as IPv4.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || format!("{s:?} is not an address or a CIDR range like 10.0.0.0/8");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(bad)?,
            None => width,
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `http.trusted_proxies`: the peers whose forwarding headers are believed. A TOML
/// list, or (from the environment) one string of comma-separated ranges. Entries
/// that do not parse are kept as text for validation to name.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    ranges: Vec<Cidr>,
    pub invalid: Vec<String>,
}

impl TrustedProxies {
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> TrustedProxies {
        let mut proxies = TrustedProxies::default();
        for entry in entries.into_iter().map(str::trim).filter(|e| !e.is_empty()) {
            match entry.parse() {
                Ok(cidr) => proxies.ranges.push(cidr),
                Err(e) => proxies.invalid.push(e),
            }
        }
        proxies
    }

    pub fn trusts(&self, addr: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(addr))
    }

    pub fn ranges(&self) -> &[Cidr] {
        &self.ranges
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            List(Vec<String>),
            Text(String),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::List(list) => TrustedProxies::parse(list.iter().map(String::as_str)),
            Raw::Text(text) => TrustedProxies::parse(text.split(',')),
        })
    }
}

/// What a request's hops say, read from its headers and its peer.
struct Hops<'a> {
    peer: Option<IpAddr>,
    headers: &'a HeaderMap,
    proxies: &'a TrustedProxies,
}

impl Hops<'_> {
    fn of<'a>(req: &'a HttpRequest, proxies: &'a TrustedProxies) -> Hops<'a> {
        Hops {
            peer: req.peer_addr().map(|a| canonical(a.ip())),
            headers: req.headers(),
            proxies,
        }
    }

    fn via_trusted_proxy(&self) -> bool {
        self.peer.is_some_and(|p| self.proxies.trusts(p))
    }

    /// The client: the peer, unless the peer is a trusted proxy; then the forwarding
    /// chain is walked from the nearest hop outwards, and the first address that is
    /// not a trusted proxy is the client (every hop to its right was added by a proxy
    /// we trust; anything to its left is the client's own say). A chain that cannot
    /// be read stops the walk at the last hop that could.
    fn client(&self) -> Option<IpAddr> {
        let mut client = self.peer;
        if !self.via_trusted_proxy() {
            return client;
        }
        for hop in self.chain().into_iter().rev() {
            let Some(addr) = hop else { break };
            client = Some(addr);
            if !self.proxies.trusts(addr) {
                break;
            }
        }
        client
    }

    /// The forwarded-for chain, client first: `Forwarded` (RFC 7239) when present,
    /// else `X-Forwarded-For`. `None` marks an entry that is not an address
    /// (`unknown`, an obfuscated name, garbage).
    fn chain(&self) -> Vec<Option<IpAddr>> {
        let forwarded = self.values("forwarded");
        if !forwarded.is_empty() {
            return forwarded
                .iter()
                .flat_map(|v| v.split(','))
                .map(|element| forwarded_param(element, "for").and_then(node_addr))
                .collect();
        }
        self.values("x-forwarded-for")
            .iter()
            .flat_map(|v| v.split(','))
            .map(node_addr)
            .collect()
    }

    /// Whether the client's own connection was HTTPS: ours when it came straight to
    /// us, else what the nearest trusted proxy says (`Forwarded: proto=`, then
    /// `X-Forwarded-Proto`); a proxy that says nothing is taken at our word.
    fn https(&self, direct: bool) -> bool {
        if !self.via_trusted_proxy() {
            return direct;
        }
        let forwarded = self.values("forwarded");
        let proto = forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|element| forwarded_param(element, "proto"))
            .next_back()
            .or_else(|| {
                self.values("x-forwarded-proto")
                    .iter()
                    .flat_map(|v| v.split(','))
                    .map(str::trim)
                    .next_back()
            });
        match proto {
            Some(p) => p.eq_ignore_ascii_case("https"),
            None => direct,
        }
    }

    fn values(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

/// One parameter of a `Forwarded` element (`for=192.0.2.1;proto=https`), unquoted.
fn forwarded_param<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"'))
    })
}

/// The address of a forwarding node: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`,
/// `2001:db8::1`.
fn node_addr(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Ok(addr) = node.parse::<IpAddr>() {
        return Some(canonical(addr));
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok().map(canonical);
    }
    let (host, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

fn proxies_of(req: &HttpRequest) -> &TrustedProxies {
    static NONE: TrustedProxies = TrustedProxies {
        ranges: Vec::new(),
        invalid: Vec::new(),
    };
    req.app_data::<web::Data<TrustedProxies>>()
        .map_or(&NONE, |d| d.get_ref())
}

/// The address of the client that sent `req`: the TCP peer, or, when the peer is
/// one of `http.trusted_proxies`, the address those proxies forwarded. Unspecified
/// (`0.0.0.0`) only for a connection without a peer address (not a TCP socket).
pub fn client_addr(req: &HttpRequest) -> IpAddr {
    Hops::of(req, proxies_of(req))
        .client()
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Whether the client reached us over HTTPS (directly, or at a trusted proxy that says so).
pub fn is_https(req: &HttpRequest) -> bool {
    Hops::of(req, proxies_of(req)).https(req.app_config().secure())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        let p = TrustedProxies::parse(list.iter().copied());
        assert!(p.invalid.is_empty(), "{:?}", p.invalid);
        p
    }

    fn request(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut r = TestRequest::default().peer_addr(peer.parse().unwrap());
        for (k, v) in headers {
            r = r.append_header((*k, *v));
        }
        r.to_http_request()
    }

    fn client(p: &TrustedProxies, peer: &str, headers: &[(&str, &str)]) -> String {
        Hops::of(&request(peer, headers), p)
            .client()
            .unwrap()
            .to_string()
    }

    #[test]
    fn ranges_parse_and_match() {
        let p = proxies(&["10.0.0.0/8", "192.168.1.7", "2001:db8::/32"]);
        assert!(p.trusts("10.200.3.4".parse().unwrap()));
        assert!(p.trusts("::ffff:10.1.1.1".parse().unwrap()));
        assert!(p.trusts("192.168.1.7".parse().unwrap()));
        assert!(!p.trusts("192.168.1.8".parse().unwrap()));
        assert!(p.trusts("2001:db8:1::5".parse().unwrap()));
        assert!(!p.trusts("2001:db9::5".parse().unwrap()));
        assert!(proxies(&["0.0.0.0/0"]).trusts("8.8.8.8".parse().unwrap()));
        let bad = TrustedProxies::parse(["10.0.0.0/33", "proxy.example.com", "1.2.3.4/x"]);
        assert_eq!(bad.invalid.len(), 3, "{:?}", bad.invalid);
        let from_env: TrustedProxies =
            serde_json::from_value(serde_json::json!("10.0.0.0/8, 172.16.0.0/12")).unwrap();
        assert_eq!(from_env.ranges().len(), 2);
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        let lb = proxies(&["10.0.0.0/8"]);
        let forged = [("x-forwarded-for", "1.2.3.4")];
        // Nobody is trusted by default: a forged header changes nothing.
        assert_eq!(client(&none, "203.0.113.9:5000", &forged), "203.0.113.9");
        // A client that is not the proxy cannot forge either.
        assert_eq!(client(&lb, "203.0.113.9:5000", &forged), "203.0.113.9");
        // From the proxy: the address it appended.
        let via = [("x-forwarded-for", "1.2.3.4, 198.51.100.7")];
        assert_eq!(client(&lb, "10.0.0.2:5000", &via), "198.51.100.7");
        // Through two trusted proxies: the first untrusted hop from the right.
        let two = [("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.9")];
        assert_eq!(client(&lb, "10.0.0.2:5000", &two), "198.51.100.7");
        // Headers repeated are one list.
        let repeated = [
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "198.51.100.7"),
        ];
        assert_eq!(client(&lb, "10.0.0.2:5000", &repeated), "198.51.100.7");
        // Garbage stops the walk at the last hop that could be read.
        let garbage = [("x-forwarded-for", "198.51.100.7, nonsense")];
        assert_eq!(client(&lb, "10.0.0.2:5000", &garbage), "10.0.0.2");
        // The proxy said nothing: it is the client.
        assert_eq!(client(&lb, "10.0.0.2:5000", &[]), "10.0.0.2");
        // RFC 7239 wins over X-Forwarded-For; quoted IPv6 with a port.
        let rfc = [
            (
                "forwarded",
                r#"for=1.2.3.4, for="[2001:db8:cafe::17]:4711";proto=https"#,
            ),
            ("x-forwarded-for", "5.6.7.8"),
        ];
        assert_eq!(client(&lb, "10.0.0.2:5000", &rfc), "2001:db8:cafe::17");
        let v4_port = [("x-forwarded-for", "198.51.100.7:443")];
        assert_eq!(client(&lb, "10.0.0.2:5000", &v4_port), "198.51.100.7");
    }

    #[test]
    fn https_is_what_a_trusted_proxy_says() {
        let lb = proxies(&["10.0.0.0/8"]);
        let https = |peer: &str, headers: &[(&str, &str)], direct| {
            Hops::of(&request(peer, headers), &lb).https(direct)
        };
        let says = [("x-forwarded-proto", "https")];
        assert!(!https("203.0.113.9:1", &says, false), "forged by a client");
        assert!(https("10.0.0.2:1", &says, false));
        assert!(!https("10.0.0.2:1", &[("x-forwarded-proto", "http")], true));
        assert!(
            https("10.0.0.2:1", &[], true),
            "silent proxy: our own scheme"
        );
        let rfc = [("forwarded", "for=1.2.3.4;proto=https")];
        assert!(https("10.0.0.2:1", &rfc, false));
    }
}
