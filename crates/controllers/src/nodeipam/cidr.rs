//! Splitting the cluster CIDR into per-node ranges (IPv4).

use std::net::Ipv4Addr;

#[derive(Clone, Debug)]
pub struct ClusterCidr {
    network: u32,
    prefix: u8,
    /// Prefix length of each node's range.
    mask: u8,
}

impl ClusterCidr {
    pub fn parse(cidr: &str, mask: u8) -> Result<ClusterCidr, String> {
        let (ip, prefix) = cidr
            .split_once('/')
            .ok_or_else(|| format!("invalid cluster CIDR {cidr:?}"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("invalid cluster CIDR {cidr:?}: only IPv4 is supported"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= mask && *p >= 1)
            .ok_or_else(|| {
                format!("invalid cluster CIDR {cidr:?}: prefix must be at most /{mask}")
            })?;
        if !(prefix..=30).contains(&mask) {
            return Err(format!("node mask /{mask} does not fit in {cidr}"));
        }
        Ok(ClusterCidr {
            network: u32::from(ip) & (u32::MAX << (32 - prefix)),
            prefix,
            mask,
        })
    }

    /// How many node ranges there are.
    pub fn count(&self) -> u64 {
        1u64 << (self.mask - self.prefix)
    }

    pub fn range(&self, i: u64) -> String {
        let base = self.network + ((i as u32) << (32 - self.mask));
        format!("{}/{}", Ipv4Addr::from(base), self.mask)
    }

    /// The first range not in `used`.
    pub fn next_free<'a>(&self, used: impl Iterator<Item = &'a str>) -> Option<String> {
        let used: std::collections::HashSet<&str> = used.collect();
        (0..self.count())
            .map(|i| self.range(i))
            .find(|r| !used.contains(r.as_str()))
    }
}

impl std::fmt::Display for ClusterCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_slash_24s_in_order_skipping_used() {
        let c = ClusterCidr::parse("10.42.0.0/16", 24).expect("valid");
        assert_eq!(c.count(), 256);
        assert_eq!(c.range(0), "10.42.0.0/24");
        assert_eq!(c.range(255), "10.42.255.0/24");
        assert_eq!(
            c.next_free(["10.42.0.0/24", "10.42.2.0/24"].into_iter())
                .as_deref(),
            Some("10.42.1.0/24")
        );
        let all: Vec<String> = (0..256).map(|i| c.range(i)).collect();
        assert_eq!(c.next_free(all.iter().map(String::as_str)), None);
        assert!(ClusterCidr::parse("10.42.0.0/25", 24).is_err());
        assert!(ClusterCidr::parse("fd00::/48", 24).is_err());
    }
}
