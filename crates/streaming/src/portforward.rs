//! Port-forward: TCP connections to `127.0.0.1:PORT` inside the pod's
//! network namespace, carried over SPDY (a stream pair per connection:
//! `streamType: error|data` with `port` and `requestID` headers; the same
//! inside kubectl 1.31+'s WebSocket tunnel) or over WebSocket channels
//! (`v4.channel.k8s.io`/`portforward.k8s.io`: channels 2·i (data) and
//! 2·i+1 (error) for the i-th `ports=` entry, each opened by a frame
//! holding the port as little-endian u16).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::channel::{ChannelConn, Protocol};
use crate::spdy;

/// The SPDY `X-Stream-Protocol-Version` and WebSocket subprotocols.
pub const SPDY_PROTOCOL: &str = "portforward.k8s.io";
pub const WS_TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
pub const WS_PROTOCOLS: &[&str] = &["v4.channel.k8s.io", "portforward.k8s.io"];

/// Connects to `127.0.0.1:port` inside the network namespace at `netns`.
/// The `setns` happens on a throwaway thread (the socket keeps the
/// namespace it was made in), never on a runtime worker.
pub async fn connect_in_netns(netns: &Path, port: u16) -> io::Result<TcpStream> {
    let netns = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("portforward-netns".into())
        .spawn(move || {
            let _ = tx.send(connect_blocking(&netns, port));
        })?;
    let std_stream = rx
        .await
        .map_err(|_| io::Error::other("netns connect thread died"))??;
    std_stream.set_nonblocking(true)?;
    TcpStream::from_std(std_stream)
}

fn connect_blocking(netns: &Path, port: u16) -> io::Result<std::net::TcpStream> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(netns)?;
    // SAFETY: setns on this (throwaway) thread only; the fd is valid.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(10),
    )
}

fn forward_error(pod: &str, port: u16, e: &io::Error) -> String {
    format!(
        "error forwarding port {port} to pod {pod}: failed to connect to localhost:{port} inside the pod's network namespace: {e}"
    )
}

/// Serves port-forward streams on a SPDY connection until it ends.
pub async fn serve_spdy(mut conn: spdy::Connection, netns: PathBuf, pod: String) {
    // requestID -> (error, data) until both halves of a pair arrived.
    let mut pending: HashMap<String, (Option<spdy::Stream>, Option<spdy::Stream>)> = HashMap::new();
    while let Some(s) = conn.accept().await {
        let request = s
            .header("requestid")
            .map(str::to_string)
            .unwrap_or_else(|| format!("stream-{}", s.id));
        let kind = s.header("streamtype").unwrap_or("").to_string();
        let entry = pending.entry(request.clone()).or_default();
        match kind.as_str() {
            "error" => entry.0 = Some(s),
            "data" => entry.1 = Some(s),
            _ => {
                s.writer.reset(spdy::frame::rst::PROTOCOL_ERROR).await;
                continue;
            }
        }
        if entry.0.is_some()
            && entry.1.is_some()
            && let Some((Some(err), Some(data))) = pending.remove(&request)
        {
            tokio::spawn(forward_pair(err, data, netns.clone(), pod.clone()));
        }
    }
    conn.close().await;
}

async fn forward_pair(err: spdy::Stream, data: spdy::Stream, netns: PathBuf, pod: String) {
    let port = match data.header("port").map(str::parse::<u16>) {
        Some(Ok(p)) if p > 0 => p,
        _ => {
            let msg = format!("invalid port header {:?}", data.header("port"));
            let _ = err.writer.write(Bytes::from(msg)).await;
            err.writer.close().await;
            data.writer.close().await;
            return;
        }
    };
    let tcp = match connect_in_netns(&netns, port).await {
        Ok(t) => t,
        Err(e) => {
            let msg = forward_error(&pod, port, &e);
            let _ = err.writer.write(Bytes::from(msg)).await;
            err.writer.close().await;
            data.writer.close().await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let (mut rd, mut wr) = tcp.into_split();
    let spdy::Stream {
        reader: mut from_client,
        writer: to_client,
        ..
    } = data;
    let upstream = async move {
        while let Some(chunk) = from_client.recv().await {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to_client
                        .write(Bytes::copy_from_slice(&buf[..n]))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        to_client.close().await;
    };
    // The pod closing its side ends the forwarded connection; the client
    // half-closing only ends our writes to the pod.
    let up = tokio::spawn(upstream);
    downstream.await;
    up.abort();
    err.writer.close().await;
}

/// The `ports` query parameter (`ports=80&ports=8080` or `ports=80,8080`).
pub fn ports_from_query(q: Option<&str>) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
        if k == "ports" || k == "port" {
            for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match p.parse::<u16>() {
                    Ok(n) if n > 0 => ports.push(n),
                    _ => return Err(format!("unable to parse \"{p}\" as a port: invalid port")),
                }
            }
        }
    }
    Ok(ports)
}

/// Serves WebSocket channel port-forwarding: one connection per port.
pub async fn serve_ws(ws: crate::ws::Ws, ports: Vec<u16>, netns: PathBuf, pod: String) {
    // The channel framing is v4's, whichever of the two names was chosen.
    let protocol = Protocol {
        version: 4,
        base64: false,
    };
    let readable: Vec<u8> = (0..ports.len()).map(|i| (2 * i) as u8).collect();
    let mut conn = ChannelConn::start(ws, protocol, &readable);
    let mut tasks = Vec::new();
    for (i, port) in ports.iter().copied().enumerate() {
        let data_ch = (2 * i) as u8;
        let data = conn.sender(data_ch);
        let err = conn.sender(data_ch + 1);
        let from_client = conn.reader(data_ch);
        let netns = netns.clone();
        let pod = pod.clone();
        tasks.push(tokio::spawn(async move {
            let hello = Bytes::copy_from_slice(&port.to_le_bytes());
            let _ = data.write(hello.clone()).await;
            let _ = err.write(hello).await;
            let tcp = match connect_in_netns(&netns, port).await {
                Ok(t) => t,
                Err(e) => {
                    let _ = err.write(Bytes::from(forward_error(&pod, port, &e))).await;
                    return;
                }
            };
            let (mut rd, mut wr) = tcp.into_split();
            let up = tokio::spawn(async move {
                if let Some(mut rx) = from_client {
                    while let Some(chunk) = rx.recv().await {
                        if wr.write_all(&chunk).await.is_err() {
                            break;
                        }
                    }
                }
                let _ = wr.shutdown().await;
            });
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if data.write(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                            break;
                        }
                    }
                }
            }
            up.abort();
        }));
    }
    let gone = conn.gone.clone();
    drop(conn);
    let all = futures::future::join_all(tasks);
    let mut gone = gone;
    tokio::select! {
        _ = all => {}
        _ = gone.wait_for(|g| *g) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_query() {
        assert_eq!(
            ports_from_query(Some("ports=80&ports=8080,9090")),
            Ok(vec![80, 8080, 9090])
        );
        assert!(ports_from_query(Some("ports=http")).is_err());
        assert!(ports_from_query(Some("ports=0")).is_err());
    }

    #[tokio::test]
    async fn connects_inside_a_namespace_file() {
        // The caller's own namespace stands in for a pod's.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let accept = tokio::spawn(async move { l.accept().await.map(|_| ()) });
        let s = connect_in_netns(Path::new("/proc/self/ns/net"), port).await;
        // setns needs CAP_SYS_ADMIN; without it the error must be clean.
        match s {
            Ok(_) => accept.await.unwrap().unwrap(),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM)),
        }
    }
}
