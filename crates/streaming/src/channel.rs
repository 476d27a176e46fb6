//! The Kubernetes channel protocols over WebSocket (`wsstream`): every
//! message starts with its channel number. Binary protocols put the byte
//! in front (`[ch][data]`); the base64 ones send text `'0'+ch` followed by
//! the data in base64. `v5.channel.k8s.io` adds a close signal: the
//! message `[255, ch]` half-closes channel `ch` (kubectl uses it to end
//! stdin). For remotecommand the channels are stdin 0, stdout 1, stderr 2,
//! error 3 and resize 4; for port-forward 2·i and 2·i+1 per port.

use std::collections::HashMap;

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::ws::Ws;

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5's close signal channel.
pub const CLOSE: u8 = 255;

/// Remotecommand subprotocols we accept, newest first.
pub const REMOTECOMMAND_PROTOCOLS: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];

/// A parsed channel subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol {
    /// 1 (`channel.k8s.io`) to 5.
    pub version: u8,
    pub base64: bool,
}

impl Protocol {
    pub fn parse(name: &str) -> Option<Protocol> {
        let p = |version, base64| Some(Protocol { version, base64 });
        match name {
            "v5.channel.k8s.io" => p(5, false),
            "v4.channel.k8s.io" => p(4, false),
            "v4.base64.channel.k8s.io" => p(4, true),
            "v3.channel.k8s.io" => p(3, false),
            "v2.channel.k8s.io" => p(2, false),
            "channel.k8s.io" | "" => p(1, false),
            "base64.channel.k8s.io" => p(1, true),
            _ => None,
        }
    }

    /// One message on channel `ch`.
    pub fn encode(self, ch: u8, data: &[u8]) -> Message {
        if self.base64 {
            let mut s = String::with_capacity(1 + data.len() * 4 / 3 + 4);
            s.push((b'0' + ch) as char);
            base64::engine::general_purpose::STANDARD.encode_string(data, &mut s);
            Message::Text(s.into())
        } else {
            let mut b = BytesMut::with_capacity(1 + data.len());
            b.put_u8(ch);
            b.extend_from_slice(data);
            Message::Binary(b.freeze())
        }
    }

    /// What an incoming message means, `None` for messages to ignore.
    pub fn decode(self, msg: &Message) -> Option<Incoming> {
        let (ch, data) = match msg {
            Message::Binary(b) if !self.base64 && !b.is_empty() => (b[0], b.slice(1..)),
            Message::Text(t) if self.base64 && !t.is_empty() => {
                let t = t.as_bytes();
                let ch = t[0].checked_sub(b'0')?;
                let data = base64::engine::general_purpose::STANDARD
                    .decode(&t[1..])
                    .ok()?;
                (ch, Bytes::from(data))
            }
            _ => return None,
        };
        if self.version >= 5 && ch == CLOSE {
            return data.first().map(|c| Incoming::Close(*c));
        }
        Some(Incoming::Data(ch, data))
    }
}

/// A close frame with status 1000.
pub fn normal_close() -> Message {
    use tokio_tungstenite::tungstenite::protocol::{CloseFrame, frame::coding::CloseCode};
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Data(u8, Bytes),
    Close(u8),
}

enum Out {
    Data(u8, Bytes),
    Close(u8),
}

/// A WebSocket speaking a channel protocol: one receiver per readable
/// channel, and [`Sender`]s for writing. The socket is closed (close frame
/// sent) once every `Sender` is dropped.
pub struct ChannelConn {
    pub protocol: Protocol,
    readers: HashMap<u8, mpsc::UnboundedReceiver<Bytes>>,
    out: mpsc::Sender<Out>,
    /// Becomes true when the client's side ends.
    pub gone: watch::Receiver<bool>,
}

/// Writes to one channel. `close` sends v5's close signal.
#[derive(Clone)]
pub struct Sender {
    ch: u8,
    out: mpsc::Sender<Out>,
}

impl Sender {
    pub fn channel(&self) -> u8 {
        self.ch
    }

    pub async fn write(&self, data: Bytes) -> std::io::Result<()> {
        self.out
            .send(Out::Data(self.ch, data))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "websocket closed"))
    }

    /// Sends v5's close signal for this channel. Servers do not close
    /// their output channels this way (clients reject it as an unknown
    /// stream 255); it exists for client-to-server half-closes.
    pub async fn close_signal(&self) {
        let _ = self.out.send(Out::Close(self.ch)).await;
    }
}

impl ChannelConn {
    /// Starts pumping `ws`; data for `readable` channels is delivered to
    /// their receivers, anything else is dropped.
    pub fn start(ws: Ws, protocol: Protocol, readable: &[u8]) -> ChannelConn {
        let mut txs = HashMap::new();
        let mut readers = HashMap::new();
        for &ch in readable {
            let (tx, rx) = mpsc::unbounded_channel();
            txs.insert(ch, tx);
            readers.insert(ch, rx);
        }
        let (out, mut out_rx) = mpsc::channel::<Out>(64);
        let (gone_tx, gone) = watch::channel(false);
        tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            let mut reading = true;
            loop {
                tokio::select! {
                    msg = stream.next(), if reading => match msg {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                            reading = false;
                            txs.clear();
                            let _ = gone_tx.send(true);
                        }
                        Some(Ok(m)) => match protocol.decode(&m) {
                            Some(Incoming::Data(ch, data)) => {
                                if let Some(tx) = txs.get(&ch) {
                                    let _ = tx.send(data);
                                }
                            }
                            Some(Incoming::Close(ch)) => {
                                txs.remove(&ch);
                            }
                            None => {}
                        },
                    },
                    out = out_rx.recv() => match out {
                        Some(Out::Data(ch, data)) => {
                            if sink.send(protocol.encode(ch, &data)).await.is_err() {
                                break;
                            }
                        }
                        Some(Out::Close(ch)) => {
                            if protocol.version >= 5
                                && sink.send(Message::Binary(Bytes::from(vec![CLOSE, ch]))).await.is_err()
                            {
                                break;
                            }
                        }
                        None => {
                            // A normal closure (1000): clients treat 1005 as an error.
                            let _ = sink.send(normal_close()).await;
                            let _ = sink.flush().await;
                            break;
                        }
                    },
                }
            }
            let _ = gone_tx.send(true);
        });
        ChannelConn {
            protocol,
            readers,
            out,
            gone,
        }
    }

    /// The receiver of a readable channel (once).
    pub fn reader(&mut self, ch: u8) -> Option<mpsc::UnboundedReceiver<Bytes>> {
        self.readers.remove(&ch)
    }

    pub fn sender(&self, ch: u8) -> Sender {
        Sender {
            ch,
            out: self.out.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_close_signal() {
        let v5 = Protocol::parse("v5.channel.k8s.io").unwrap();
        let m = v5.encode(STDOUT, b"hi");
        assert_eq!(m, Message::Binary(Bytes::from_static(&[1, b'h', b'i'])));
        assert_eq!(
            v5.decode(&Message::Binary(Bytes::from_static(&[0, b'x']))),
            Some(Incoming::Data(0, Bytes::from_static(b"x")))
        );
        assert_eq!(
            v5.decode(&Message::Binary(Bytes::from_static(&[255, 0]))),
            Some(Incoming::Close(0))
        );
        // v4 has no close signal: 255 is just a channel.
        let v4 = Protocol::parse("v4.channel.k8s.io").unwrap();
        assert_eq!(
            v4.decode(&Message::Binary(Bytes::from_static(&[255, 0]))),
            Some(Incoming::Data(255, Bytes::from_static(&[0])))
        );
        assert_eq!(v4.decode(&Message::Binary(Bytes::new())), None);
    }

    #[test]
    fn base64_variant() {
        let p = Protocol::parse("v4.base64.channel.k8s.io").unwrap();
        assert_eq!(p.encode(STDERR, b"hi"), Message::Text("2aGk=".into()));
        assert_eq!(
            p.decode(&Message::Text("0aGk=".into())),
            Some(Incoming::Data(0, Bytes::from_static(b"hi")))
        );
        assert_eq!(p.decode(&Message::Text("0!!".into())), None);
    }
}
