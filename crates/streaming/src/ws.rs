//! WebSocket upgrades on hyper (RFC 6455 handshake with subprotocol
//! choice), and [`pipe`]: a byte stream carried in binary messages, which
//! is how kubectl 1.31+ tunnels SPDY (`SPDY/3.1+portforward.k8s.io`).

use std::io;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::Body;

pub type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// Whether the request asks for a WebSocket upgrade.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    let has = |name: header::HeaderName, want: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(want)))
                .unwrap_or(false)
        })
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

/// The subprotocols the client offered, in its order of preference.
pub fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// An accepted upgrade: the 101 to send, the chosen subprotocol, and the
/// connection once hyper hands it over.
pub struct Accepted {
    pub response: Response<Body>,
    pub protocol: String,
    pub upgrade: OnUpgrade,
}

/// Answers a WebSocket handshake choosing the client's most preferred
/// protocol among `supported`; with no protocol offered, `default` is
/// used (upstream treats that as the oldest channel protocol). Refusals
/// are 400 Status responses (kubectl then falls back to SPDY).
#[allow(clippy::result_large_err)] // the refusal is the response to send
pub fn accept<B>(
    req: &mut Request<B>,
    supported: &[&str],
    default: Option<&str>,
) -> Result<Accepted, Response<Body>> {
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes().to_vec())
        .ok_or_else(|| crate::status::bad_request("missing Sec-WebSocket-Key"))?;
    let offered = offered_protocols(req.headers());
    let protocol = if offered.is_empty() {
        default.map(str::to_string)
    } else {
        offered
            .iter()
            .find(|p| supported.contains(&p.as_str()))
            .cloned()
    };
    let Some(protocol) = protocol else {
        return Err(crate::status::bad_request(&format!(
            "requested protocol(s) are not supported: {offered:?}; supports {supported:?}"
        )));
    };
    let upgrade = hyper::upgrade::on(req);
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
    let mut response = Response::new(crate::status::full(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if !offered.is_empty()
        && let Ok(v) = HeaderValue::from_str(&protocol)
    {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }
    Ok(Accepted {
        response,
        protocol,
        upgrade,
    })
}

/// Waits for hyper to hand over the upgraded connection.
pub async fn upgraded(upgrade: OnUpgrade) -> io::Result<Ws> {
    let io = upgrade.await.map_err(io::Error::other)?;
    Ok(WebSocketStream::from_raw_socket(TokioIo::new(io), Role::Server, None).await)
}

/// A byte stream over binary messages: what is written to the returned
/// end goes out as messages, incoming binary messages come out of it.
/// Ends when either side closes.
pub fn pipe(ws: Ws) -> DuplexStream {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    tokio::spawn(async move {
        let (mut sink, mut stream) = ws.split();
        let (mut rd, mut wr) = tokio::io::split(ours);
        let inbound = async {
            while let Some(Ok(msg)) = stream.next().await {
                match msg {
                    Message::Binary(b) if wr.write_all(&b).await.is_err() => break,
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            let _ = wr.shutdown().await;
        };
        let outbound = async {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if sink
                            .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
            let _ = sink.send(crate::channel::normal_close()).await;
            let _ = sink.close().await;
        };
        // The tunnel ends when our side stops writing (the SPDY server
        // closed the connection) or the client closed the WebSocket.
        tokio::select! {
            _ = outbound => {}
            _ = inbound => {}
        }
    });
    theirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_picks_the_clients_first_supported_protocol() {
        let mut req = Request::builder()
            .header("Upgrade", "websocket")
            .header("Connection", "Upgrade")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("Sec-WebSocket-Protocol", "v9.nope, v4.channel.k8s.io")
            .header("Sec-WebSocket-Protocol", "v5.channel.k8s.io")
            .body(())
            .unwrap();
        assert!(is_websocket(req.headers()));
        let a = accept(&mut req, &["v5.channel.k8s.io", "v4.channel.k8s.io"], None)
            .ok()
            .unwrap();
        assert_eq!(a.protocol, "v4.channel.k8s.io");
        assert_eq!(a.response.status(), 101);
        // RFC 6455's example key and answer.
        assert_eq!(
            a.response.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let mut bad = Request::builder()
            .header("Sec-WebSocket-Key", "x")
            .header("Sec-WebSocket-Protocol", "v9.nope")
            .body(())
            .unwrap();
        assert_eq!(
            accept(&mut bad, &["v5.channel.k8s.io"], None)
                .err()
                .unwrap()
                .status(),
            400
        );
    }
}
