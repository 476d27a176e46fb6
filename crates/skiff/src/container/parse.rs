//! The `skiff run` flags that carry syntax of their own: `-p`, `-m`,
//! `--cpus`, `-e`. Parsed before anything is created, so bad input changes
//! nothing.

use anyhow::{Context, bail};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// `-p [IP:]HOSTPORT:PORT[/tcp]`: listen on IP:HOSTPORT (default loopback)
/// and forward to PORT on the container's loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub host: SocketAddr,
    pub container_port: u16,
}

impl std::fmt::Display for Publish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}->{}/tcp", self.host, self.container_port)
    }
}

pub fn publish(spec: &str) -> anyhow::Result<Publish> {
    let bad = || format!("invalid port publication {spec:?}: want [IP:]HOSTPORT:PORT");
    let body = match spec.rsplit_once('/') {
        Some((b, "tcp")) => b,
        Some((_, proto)) => {
            bail!("invalid port publication {spec:?}: only tcp is supported, not {proto:?}")
        }
        None => spec,
    };
    let (rest, port) = body.rsplit_once(':').with_context(bad)?;
    let container_port = parse_port(port).with_context(bad)?;
    let (ip, host_port) = match rest.rsplit_once(':') {
        Some((ip, hp)) => {
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            let ip: IpAddr = ip.parse().with_context(bad)?;
            (ip, hp)
        }
        None => (IpAddr::V4(Ipv4Addr::LOCALHOST), rest),
    };
    let host_port = parse_port(host_port).with_context(bad)?;
    Ok(Publish {
        host: SocketAddr::new(ip, host_port),
        container_port,
    })
}

fn parse_port(s: &str) -> anyhow::Result<u16> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => bail!("bad port {s:?}"),
    }
}

/// `-m 64m`: bytes with an optional b/k/m/g suffix (powers of 1024), as
/// Docker reads it. At least 6 MiB, Docker's minimum, so a typo like
/// `-m 64` (bytes) is caught instead of OOM-killing at once.
pub fn memory(s: &str) -> anyhow::Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n > 0.0)
        .with_context(|| format!("invalid memory limit {s:?}: want e.g. 64m, 512k, 1g"))?;
    let bytes = (n * mult as f64) as i64;
    if bytes < 6 << 20 {
        bail!("invalid memory limit {s:?}: minimum is 6m");
    }
    Ok(bytes)
}

/// `--cpus 0.5` as a CFS quota per 100 ms period, in microseconds.
pub fn cpus(s: &str) -> anyhow::Result<i64> {
    let n: f64 = s
        .trim()
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.01 && *n <= 1024.0)
        .with_context(|| format!("invalid --cpus {s:?}: want a number like 0.5 (0.01 to 1024)"))?;
    Ok((n * 100_000.0).round() as i64)
}

/// `-e K=V`, or `-e K` taking K from this process's environment (as
/// Docker does; dropped when unset).
pub fn env(items: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in items {
        match e.split_once('=') {
            Some((k, _)) if !k.is_empty() => out.push(e.clone()),
            Some(_) => bail!("invalid environment variable {e:?}: empty name"),
            None if e.is_empty() => bail!("invalid environment variable: empty"),
            None => {
                if let Ok(v) = std::env::var(e) {
                    out.push(format!("{e}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// A container name as Docker allows it: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn name(s: &str) -> anyhow::Result<()> {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) || s.len() > 128
    {
        bail!("invalid container name {s:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_forms() {
        let p = publish("8080:80").unwrap();
        assert_eq!(p.host, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(p.container_port, 80);
        let p = publish("0.0.0.0:9000:8080/tcp").unwrap();
        assert_eq!(p.host, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(p.to_string(), "0.0.0.0:9000->8080/tcp");
        assert!(publish("[::1]:9000:80").is_ok());
        for bad in [
            "80",
            "a:80",
            "70000:80",
            "1.2.3:80:80",
            "80:80/udp",
            "0:80",
            "",
        ] {
            assert!(publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_and_cpus() {
        assert_eq!(memory("64m").unwrap(), 64 << 20);
        assert_eq!(memory("1g").unwrap(), 1 << 30);
        assert_eq!(memory("65536k").unwrap(), 64 << 20);
        assert_eq!(memory("67108864").unwrap(), 64 << 20);
        for bad in ["64", "lots", "-5m", "0m", "1x"] {
            assert!(memory(bad).is_err(), "{bad}");
        }
        assert_eq!(cpus("0.5").unwrap(), 50_000);
        assert_eq!(cpus("2").unwrap(), 200_000);
        for bad in ["0", "x", "-1", "NaN"] {
            assert!(cpus(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_and_names() {
        assert_eq!(env(&["A=1".into(), "B=".into()]).unwrap(), ["A=1", "B="]);
        assert!(env(&["=x".into()]).is_err());
        assert!(name("web-1.a_b").is_ok());
        assert!(name("-x").is_err() && name("a/b").is_err() && name("").is_err());
    }
}
