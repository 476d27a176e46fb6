//! gRPC probes: the standard health service call,
//! `grpc.health.v1.Health/Check`, over cleartext HTTP/2 (h2c, what
//! upstream's prober dials: no TLS), with upstream's messages.
//!
//! The messages are tiny, so they are encoded by hand instead of pulling
//! in a gRPC stack: `HealthCheckRequest { string service = 1; }` and
//! `HealthCheckResponse { ServingStatus status = 1; }`, each framed by
//! gRPC's 5-byte prefix (compressed flag, big-endian length). The call's
//! result is `grpc-status` in the trailers (or in the headers of a
//! trailers-only answer).

use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::probes::Outcome;

const PATH: &str = "/grpc.health.v1.Health/Check";

/// `ServingStatus` names, as upstream's message quotes them.
fn status_name(v: u64) -> String {
    match v {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        n => n.to_string(),
    }
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The framed request: field 1 (`service`), omitted when empty as proto3
/// does.
pub fn encode_request(service: &str) -> Vec<u8> {
    let mut msg = Vec::new();
    if !service.is_empty() {
        msg.push(0x0a); // field 1, length-delimited
        push_varint(&mut msg, service.len() as u64);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut out = vec![0u8];
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(&msg);
    out
}

/// The `status` of the first framed `HealthCheckResponse` in `body`
/// (0, UNKNOWN, when the field is absent); `None` when malformed.
pub fn decode_response(body: &[u8]) -> Option<u64> {
    if body.len() < 5 || body[0] != 0 {
        return None;
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let mut msg = body.get(5..5 + len)?;
    let mut status = 0;
    while !msg.is_empty() {
        let key = read_varint(&mut msg)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = read_varint(&mut msg)?,
            (_, 0) => {
                read_varint(&mut msg)?;
            }
            (_, 1) => msg = msg.get(8..)?,
            (_, 2) => {
                let n = read_varint(&mut msg)? as usize;
                msg = msg.get(n..)?;
            }
            (_, 5) => msg = msg.get(4..)?,
            _ => return None,
        }
    }
    Some(status)
}

/// A probe timeout as Go's `time.Duration` prints it (`1s`; `300ms`
/// only in tests: probe timeouts are whole seconds).
fn go_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// gRPC's status codes that upstream's prober tells apart.
const UNIMPLEMENTED: u32 = 12;
const DEADLINE_EXCEEDED: u32 = 4;

/// Calls `Check` for `service` on `host:port`, within `timeout` for the
/// connection and again for the call, as upstream does.
pub async fn check(host: &str, port: u16, service: &str, timeout: Duration) -> Outcome {
    let addr = format!("{host}:{port}");
    let secs = go_duration(timeout);
    let connect = async {
        let tcp = tokio::net::TcpStream::connect((host, port)).await?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok::<_, std::io::Error>(sender)
    };
    let mut sender = match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Outcome::Failure(format!(
                "timeout: failed to connect service \"{addr}\" within {secs}: {e}"
            ));
        }
        Err(_) => {
            return Outcome::Failure(format!(
                "timeout: failed to connect service \"{addr}\" within {secs}: context deadline exceeded"
            ));
        }
    };
    let req = match http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("http://{addr}{PATH}"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .header(http::header::USER_AGENT, "kube-probe/1.33")
        .header("grpc-timeout", format!("{}m", timeout.as_millis().max(1)))
        .body(Full::new(Bytes::from(encode_request(service))))
    {
        Ok(r) => r,
        Err(e) => return Outcome::Failure(format!("error: health rpc probe failed: {e}")),
    };
    let call = async {
        let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let (parts, body) = res.into_parts();
        let collected = body.collect().await.map_err(|e| e.to_string())?;
        let trailers = collected.trailers().cloned();
        let mut bytes = collected.aggregate();
        let data = bytes.copy_to_bytes(bytes.remaining());
        Ok::<_, String>((parts, data, trailers))
    };
    let (parts, data, trailers) = match tokio::time::timeout(timeout, call).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Outcome::Failure(format!("error: health rpc probe failed: {e}")),
        Err(_) => {
            return Outcome::Failure(format!(
                "timeout: health rpc did not complete within {secs}"
            ));
        }
    };
    if parts.status != http::StatusCode::OK {
        return Outcome::Failure(format!(
            "error: health rpc probe failed: unexpected HTTP status code received from server: {}",
            parts.status.as_u16()
        ));
    }
    // grpc-status: in the trailers, or the headers of a trailers-only answer.
    let header = |name: &str| {
        trailers
            .as_ref()
            .and_then(|t| t.get(name))
            .or_else(|| parts.headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let code: u32 = header("grpc-status")
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    if code != 0 {
        let message = header("grpc-message").unwrap_or_default();
        return Outcome::Failure(match code {
            UNIMPLEMENTED => format!(
                "this server does not implement the grpc health protocol (grpc.health.v1.Health): rpc error: code = Unimplemented desc = {message}"
            ),
            DEADLINE_EXCEEDED => format!("timeout: health rpc did not complete within {secs}"),
            _ => {
                format!("error: health rpc probe failed: rpc error: code = {code} desc = {message}")
            }
        });
    }
    match decode_response(&data) {
        Some(1) => Outcome::Success,
        Some(s) => Outcome::Failure(format!(
            "service unhealthy (responded with \"{}\")",
            status_name(s)
        )),
        None => {
            Outcome::Failure("error: health rpc probe failed: malformed HealthCheckResponse".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    use http_body_util::StreamBody;
    use hyper::body::Frame;

    #[test]
    fn wire_format() {
        assert_eq!(encode_request(""), [0, 0, 0, 0, 0]);
        assert_eq!(encode_request("db"), [0, 0, 0, 0, 4, 0x0a, 2, b'd', b'b']);
        assert_eq!(decode_response(&[0, 0, 0, 0, 2, 0x08, 1]), Some(1));
        assert_eq!(decode_response(&[0, 0, 0, 0, 0]), Some(0));
        // An unknown field before the status is skipped.
        assert_eq!(
            decode_response(&[0, 0, 0, 0, 5, 0x12, 1, b'x', 0x08, 2]),
            Some(2)
        );
        assert_eq!(decode_response(&[0, 0, 0, 0, 9, 0x08]), None);
        assert_eq!(decode_response(&[1, 0, 0, 0, 0]), None);
    }

    type TestBody =
        StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

    /// A health server: `""` and `"db"` are SERVING, `"down"` is
    /// NOT_SERVING, `"slow"` never answers, anything else is
    /// Unimplemented (trailers-only); wrong paths or content types 404.
    async fn handle(
        req: http::Request<hyper::body::Incoming>,
    ) -> Result<http::Response<TestBody>, Infallible> {
        let ok_req = req.uri().path() == PATH
            && req.headers().get("content-type").map(|v| v.as_bytes()) == Some(b"application/grpc");
        let body = req
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let service = body
            .get(7..)
            .map(|s| String::from_utf8_lossy(s).to_string())
            .unwrap_or_default();
        let frames = |frames: Vec<Frame<Bytes>>| {
            StreamBody::new(futures::stream::iter(
                frames.into_iter().map(Ok).collect::<Vec<_>>(),
            ))
        };
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let serving = |status: u8| {
            frames(vec![
                Frame::data(Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status])),
                Frame::trailers(trailers.clone()),
            ])
        };
        let res = if !ok_req {
            http::Response::builder().status(404).body(frames(vec![]))
        } else {
            match service.as_str() {
                "" | "db" => http::Response::builder()
                    .header("content-type", "application/grpc")
                    .body(serving(1)),
                "down" => http::Response::builder()
                    .header("content-type", "application/grpc")
                    .body(serving(2)),
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    http::Response::builder().body(frames(vec![]))
                }
                _ => http::Response::builder()
                    .header("content-type", "application/grpc")
                    .header("grpc-status", "12")
                    .header("grpc-message", "unknown service")
                    .body(frames(vec![])),
            }
        };
        Ok(res.unwrap())
    }

    #[tokio::test]
    async fn health_check_against_an_h2c_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), hyper::service::service_fn(handle))
                        .await;
                });
            }
        });
        let t = Duration::from_secs(1);
        assert_eq!(check("127.0.0.1", port, "", t).await, Outcome::Success);
        assert_eq!(check("127.0.0.1", port, "db", t).await, Outcome::Success);
        assert_eq!(
            check("127.0.0.1", port, "down", t).await,
            Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())
        );
        let Outcome::Failure(m) = check("127.0.0.1", port, "other", t).await else {
            panic!("unimplemented service passed");
        };
        assert!(
            m.starts_with("this server does not implement the grpc health protocol"),
            "{m}"
        );
        assert!(m.ends_with("desc = unknown service"), "{m}");
        assert_eq!(
            check("127.0.0.1", port, "slow", Duration::from_millis(300)).await,
            Outcome::Failure("timeout: health rpc did not complete within 300ms".into())
        );
        server.abort();
        // Nobody listening.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap().port();
        drop(closed);
        let Outcome::Failure(m) = check("127.0.0.1", dead, "", t).await else {
            panic!("a closed port passed");
        };
        assert!(
            m.starts_with(&format!(
                "timeout: failed to connect service \"127.0.0.1:{dead}\" within 1s"
            )),
            "{m}"
        );
    }
}
