//! The spaces Services allocate from: an IPv4 service CIDR and a node
//! port range. Pure arithmetic and the search order; the store decides who
//! wins (see `claims`).
//!
//! Both spaces are split like upstream's allocators (KEP-3070 and
//! KEP-3668): a low *static band* that random allocation uses only once
//! the rest is full, so addresses and ports users pick by hand (the DNS
//! Service's 10th address, well-known node ports) are rarely taken first.

use std::collections::HashSet;
use std::net::Ipv4Addr;

/// A space of `len` values indexed by offset.
pub trait Space {
    fn size(&self) -> u64;
    /// Offsets `0..static_band()` are left to explicit requests while
    /// anything above is free.
    fn static_band(&self) -> u64;
}

/// The usable addresses of an IPv4 CIDR (not the network address, not the
/// broadcast address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpRange {
    network: u32,
    prefix: u8,
    cidr: String,
}

impl IpRange {
    pub fn parse(cidr: &str) -> Result<IpRange, String> {
        let (ip, prefix) = cidr
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR {cidr:?}: no prefix length"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("invalid CIDR {cidr:?}: only IPv4 is supported"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| format!("invalid CIDR {cidr:?}: prefix must be 8 to 30"))?;
        let mask = u32::MAX << (32 - prefix);
        let network = u32::from(ip) & mask;
        Ok(IpRange {
            network,
            prefix,
            cidr: format!("{}/{prefix}", Ipv4Addr::from(network)),
        })
    }

    /// The CIDR in canonical form, as upstream's messages print it.
    pub fn cidr(&self) -> &str {
        &self.cidr
    }

    /// The `n`th address of the CIDR (1 is the first usable one, the
    /// `kubernetes` Service's; 10 is cluster DNS's).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.network.wrapping_add(n))
    }

    pub fn offset(&self, ip: Ipv4Addr) -> Option<u64> {
        let v = u32::from(ip);
        let rel = v.checked_sub(self.network)? as u64;
        (rel >= 1 && rel <= self.size()).then(|| rel - 1)
    }

    pub fn at(&self, offset: u64) -> Ipv4Addr {
        Ipv4Addr::from(self.network.wrapping_add(offset as u32 + 1))
    }
}

impl Space for IpRange {
    fn size(&self) -> u64 {
        (1u64 << (32 - self.prefix)) - 2
    }
    fn static_band(&self) -> u64 {
        (self.size() / 16).clamp(16, 256).min(self.size())
    }
}

/// A node port range, `first-last` inclusive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn parse(s: &str) -> Result<PortRange, String> {
        let parse = |p: &str| p.trim().parse::<u16>().ok().filter(|p| *p > 0);
        let (a, b) = match s.split_once('-') {
            Some((a, b)) => (parse(a), parse(b)),
            None => (parse(s), parse(s)),
        };
        match (a, b) {
            (Some(first), Some(last)) if first <= last => Ok(PortRange { first, last }),
            _ => Err(format!("invalid port range {s:?}: want FIRST-LAST")),
        }
    }

    pub fn offset(&self, port: i64) -> Option<u64> {
        (port >= self.first as i64 && port <= self.last as i64)
            .then(|| (port - self.first as i64) as u64)
    }

    pub fn at(&self, offset: u64) -> u16 {
        self.first + offset as u16
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl Space for PortRange {
    fn size(&self) -> u64 {
        (self.last - self.first) as u64 + 1
    }
    fn static_band(&self) -> u64 {
        (self.size() / 32).clamp(16, 128).min(self.size())
    }
}

/// Offsets to try for a random allocation, in order: the dynamic band from
/// `start` onward (wrapping), then the static band, skipping `known`
/// (values believed taken). `start` is any number; callers pass a random
/// one so concurrent allocators rarely collide.
pub fn candidates<'a>(
    space: &impl Space,
    start: u64,
    known: &'a HashSet<u64>,
) -> impl Iterator<Item = u64> + 'a {
    let len = space.size();
    let band = space.static_band().min(len);
    let dynamic = len - band;
    let (d_start, s_start) = (
        if dynamic > 0 { start % dynamic } else { 0 },
        if band > 0 { start % band } else { 0 },
    );
    let upper = (0..dynamic).map(move |i| band + (d_start + i) % dynamic);
    let lower = (0..band).map(move |i| (s_start + i) % band);
    upper.chain(lower).filter(move |o| !known.contains(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing_and_offsets() {
        let r = IpRange::parse("10.43.7.9/16").expect("valid");
        assert_eq!(r.cidr(), "10.43.0.0/16");
        assert_eq!(r.size(), 65534);
        assert_eq!(r.nth(1), Ipv4Addr::new(10, 43, 0, 1));
        assert_eq!(r.nth(10), Ipv4Addr::new(10, 43, 0, 10));
        assert_eq!(r.offset(Ipv4Addr::new(10, 43, 0, 1)), Some(0));
        assert_eq!(r.at(0), Ipv4Addr::new(10, 43, 0, 1));
        assert_eq!(
            r.offset(Ipv4Addr::new(10, 43, 0, 0)),
            None,
            "network address"
        );
        assert_eq!(r.offset(Ipv4Addr::new(10, 43, 255, 255)), None, "broadcast");
        assert_eq!(r.offset(Ipv4Addr::new(10, 44, 0, 1)), None);
        assert_eq!(r.static_band(), 256);
        assert!(IpRange::parse("fd00::/64").is_err());
        assert!(IpRange::parse("10.0.0.0").is_err());
        assert!(IpRange::parse("10.0.0.0/31").is_err());
    }

    #[test]
    fn port_range() {
        let p = PortRange::parse("30000-32767").expect("valid");
        assert_eq!(p.size(), 2768);
        assert_eq!(p.static_band(), 86);
        assert_eq!(p.offset(30000), Some(0));
        assert_eq!(p.offset(29999), None);
        assert_eq!(p.offset(32768), None);
        assert_eq!(p.at(5), 30005);
        assert!(PortRange::parse("32767-30000").is_err());
        assert!(PortRange::parse("x").is_err());
    }

    #[test]
    fn random_allocation_avoids_the_static_band_until_full() {
        let r = IpRange::parse("10.43.0.0/24").expect("valid");
        let band = r.static_band();
        assert_eq!(band, 16);
        let dns = r.offset(r.nth(10)).expect("in range");
        let none = HashSet::new();
        let order: Vec<u64> = candidates(&r, 12345, &none).collect();
        assert_eq!(order.len() as u64, r.size(), "every offset once");
        let first_static = order
            .iter()
            .position(|o| *o < band)
            .expect("static band last");
        assert_eq!(first_static as u64, r.size() - band);
        assert!(order.iter().position(|o| *o == dns).expect("dns") >= first_static);
        let taken: HashSet<u64> = (band..r.size()).collect();
        assert!(
            candidates(&r, 7, &taken).all(|o| o < band),
            "falls back when full"
        );
    }
}
