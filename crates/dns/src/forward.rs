//! Forwarding of names outside the cluster zone to the host's resolvers.
//!
//! The query is relayed as it came (same id, flags, EDNS) over UDP, retried
//! over TCP when the answer is truncated, to each upstream in turn; the
//! answer's sections and code are handed back unchanged. No cache: the
//! upstream resolvers have their own.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(2);

/// `nameserver` lines of a resolv.conf, on port 53.
pub fn resolv_conf_upstreams(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "nameserver").then_some(())?;
            let ip: std::net::IpAddr = w.next()?.split('%').next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

/// Sends the raw query to the upstreams; the first decodable answer wins.
pub async fn forward(upstreams: &[SocketAddr], query: &[u8], id: u16) -> Option<Message> {
    for up in upstreams {
        match tokio::time::timeout(TIMEOUT, udp(*up, query, id)).await {
            Ok(Some(m)) if m.metadata.truncation => {
                if let Ok(Some(m)) = tokio::time::timeout(TIMEOUT, tcp(*up, query)).await {
                    return Some(m);
                }
            }
            Ok(Some(m)) => return Some(m),
            _ => tracing::debug!("dns upstream {up} did not answer"),
        }
    }
    None
}

async fn udp(up: SocketAddr, query: &[u8], id: u16) -> Option<Message> {
    let bind: SocketAddr = if up.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .ok()?;
    let sock = tokio::net::UdpSocket::bind(bind).await.ok()?;
    sock.connect(up).await.ok()?;
    sock.send(query).await.ok()?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await.ok()?;
        match Message::from_vec(&buf[..n]) {
            Ok(m) if m.metadata.id == id => return Some(m),
            _ => continue,
        }
    }
}

async fn tcp(up: SocketAddr, query: &[u8]) -> Option<Message> {
    let mut s = tokio::net::TcpStream::connect(up).await.ok()?;
    let len = u16::try_from(query.len()).ok()?;
    s.write_all(&len.to_be_bytes()).await.ok()?;
    s.write_all(query).await.ok()?;
    let mut lb = [0u8; 2];
    s.read_exact(&mut lb).await.ok()?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(lb))];
    s.read_exact(&mut buf).await.ok()?;
    Message::from_vec(&buf).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_resolv_conf() {
        let u = super::resolv_conf_upstreams(
            "# x\nsearch a\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\n",
        );
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].to_string(), "10.0.0.1:53");
    }
}
