//! Address space for session networks: the IPv4 range (`network_pool`, default
//! `10.200.0.0/16`) carved into small subnets (`network_prefix`, default `/28`), one per
//! session network. A stock dockerd has only ~30 default address pools (172.17–172.31/16 and
//! 192.168.0.0/16 in /20s), so letting it choose caps a host at ~30 sessions; explicit /28s
//! from one /16 give 4096. Pure arithmetic: which subnets exist, which one is free given the
//! subnets already in use on the engine. No I/O.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// One IPv4 network: address (host bits zero) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    addr: u32,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    #[error("{input:?} is not an IPv4 network in CIDR form (like 10.200.0.0/16): {why}")]
    Parse { input: String, why: String },
    #[error(
        "network_prefix /{prefix} does not fit network_pool {pool}: it must be between \
         /{} and /29",
        pool.prefix
    )]
    PrefixOutOfRange { pool: Ipv4Net, prefix: u8 },
    #[error(
        "network_prefix /{prefix} leaves {hosts} addresses for instances, fewer than \
         max_instances_per_session ({instances}): use a shorter prefix"
    )]
    TooSmall {
        prefix: u8,
        hosts: u32,
        instances: usize,
    },
}

impl Ipv4Net {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Net> {
        if prefix > 32 {
            return None;
        }
        let addr = u32::from(addr) & mask(prefix);
        Some(Ipv4Net { addr, prefix })
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr)
    }

    /// The first host address, which Docker's bridge driver uses as the gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr + 1)
    }

    fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    fn last(&self) -> u32 {
        (u64::from(self.addr) + self.size() - 1) as u32
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.addr <= other.last() && other.addr <= self.last()
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = SubnetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| SubnetError::Parse {
            input: s.to_owned(),
            why: why.to_owned(),
        };
        let (addr, prefix) = s.trim().split_once('/').ok_or_else(|| err("no /prefix"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| err("bad address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| err("the prefix must be a number in 0..=32"))?;
        Ipv4Net::new(addr, prefix).ok_or_else(|| err("bad prefix"))
    }
}

/// The range session networks are carved from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetPool {
    pub range: Ipv4Net,
    /// Prefix length of each session network.
    pub prefix: u8,
}

impl SubnetPool {
    /// Checks that `prefix` fits `range` and leaves room for `instances` instances (plus the
    /// network address, the gateway and the broadcast address).
    pub fn new(range: Ipv4Net, prefix: u8, instances: usize) -> Result<SubnetPool, SubnetError> {
        if prefix < range.prefix || prefix > 29 {
            return Err(SubnetError::PrefixOutOfRange {
                pool: range,
                prefix,
            });
        }
        let hosts = (1u32 << (32 - u32::from(prefix))) - 3;
        if (hosts as usize) < instances {
            return Err(SubnetError::TooSmall {
                prefix,
                hosts,
                instances,
            });
        }
        Ok(SubnetPool { range, prefix })
    }

    /// How many session networks the pool holds.
    pub fn capacity(&self) -> u64 {
        1u64 << (self.prefix - self.range.prefix)
    }

    /// The `i`-th subnet of the pool.
    fn nth(&self, i: u64) -> Ipv4Net {
        let step = 1u64 << (32 - u32::from(self.prefix));
        Ipv4Net {
            addr: (u64::from(self.range.addr) + i * step) as u32,
            prefix: self.prefix,
        }
    }

    /// The first subnet of the pool that overlaps none of `used`, if any is left.
    pub fn first_free(&self, used: &[Ipv4Net]) -> Option<Ipv4Net> {
        let relevant: Vec<&Ipv4Net> = used.iter().filter(|u| u.overlaps(&self.range)).collect();
        (0..self.capacity())
            .map(|i| self.nth(i))
            .find(|c| !relevant.iter().any(|u| u.overlaps(c)))
    }

    /// How many of the pool's subnets overlap something in `used`.
    pub fn in_use(&self, used: &[Ipv4Net]) -> u64 {
        let relevant: Vec<&Ipv4Net> = used.iter().filter(|u| u.overlaps(&self.range)).collect();
        (0..self.capacity())
            .map(|i| self.nth(i))
            .filter(|c| relevant.iter().any(|u| u.overlaps(c)))
            .count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(net("10.200.3.7/16").to_string(), "10.200.0.0/16");
        assert_eq!(net("10.200.0.0/28").gateway(), Ipv4Addr::new(10, 200, 0, 1));
        for bad in ["10.200.0.0", "10.200.0.0/33", "x/16", "10.200.0/16", ""] {
            let e = bad.parse::<Ipv4Net>().unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn overlap() {
        assert!(net("10.200.0.0/16").overlaps(&net("10.200.5.16/28")));
        assert!(net("10.200.0.16/28").overlaps(&net("10.200.0.0/24")));
        assert!(!net("10.200.0.0/28").overlaps(&net("10.200.0.16/28")));
        assert!(!net("172.17.0.0/16").overlaps(&net("10.200.0.0/16")));
        assert!(net("0.0.0.0/0").overlaps(&net("10.0.0.0/8")));
    }

    #[test]
    fn picks_the_first_free_subnet() {
        let pool = SubnetPool::new(net("10.200.0.0/16"), 28, 5).unwrap();
        assert_eq!(pool.capacity(), 4096);
        assert_eq!(pool.first_free(&[]), Some(net("10.200.0.0/28")));
        let used = [
            net("10.200.0.0/28"),
            net("10.200.0.32/28"),
            net("172.17.0.0/16"),
        ];
        assert_eq!(pool.first_free(&used), Some(net("10.200.0.16/28")));
        assert_eq!(pool.in_use(&used), 2);
        // Something bigger inside the pool (another tool's /24) blocks every /28 in it.
        let used = [net("10.200.0.0/24")];
        assert_eq!(pool.first_free(&used), Some(net("10.200.1.0/28")));
        assert_eq!(pool.in_use(&used), 16);
    }

    #[test]
    fn a_full_pool_has_nothing_free() {
        let pool = SubnetPool::new(net("10.200.0.0/27"), 28, 5).unwrap();
        let used = [net("10.200.0.0/28"), net("10.200.0.16/28")];
        assert_eq!(pool.first_free(&used), None);
        assert_eq!(pool.in_use(&used), 2);
        let covering = [net("10.0.0.0/8")];
        assert_eq!(pool.first_free(&covering), None);
    }

    #[test]
    fn prefix_must_fit_the_pool_and_the_instances() {
        let range = net("10.200.0.0/16");
        let e = SubnetPool::new(range, 12, 5).unwrap_err().to_string();
        assert!(e.contains("/12") && e.contains("10.200.0.0/16"), "{e}");
        assert!(SubnetPool::new(range, 30, 1).is_err());
        let e = SubnetPool::new(range, 29, 6).unwrap_err().to_string();
        assert!(e.contains("5 addresses") && e.contains("(6)"), "{e}");
        assert!(SubnetPool::new(range, 29, 5).is_ok());
    }
}
