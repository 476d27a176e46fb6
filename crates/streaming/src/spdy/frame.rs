//! SPDY/3.1 frames on the wire (draft-mbelshe-httpbis-spdy-00 §2.2, plus
//! 3.1's connection-level WINDOW_UPDATE on stream 0).
//!
//! Control frames: `1 | version(15) | type(16) | flags(8) | length(24)`.
//! Data frames:    `0 | stream-id(31) | flags(8) | length(24)`.
//! Header blocks stay compressed here; [`super::headers`] owns the zlib
//! streams, which are per connection and so must see blocks in wire order.

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub const VERSION: u16 = 3;
pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// SETTINGS id of the initial per-stream window.
pub const SETTINGS_INITIAL_WINDOW_SIZE: u32 = 7;
/// Frames larger than this are refused (we never send more than 32 KiB).
pub const MAX_FRAME: usize = 1 << 24;

/// RST_STREAM status codes.
pub mod rst {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INVALID_STREAM: u32 = 2;
    pub const REFUSED_STREAM: u32 = 3;
    pub const CANCEL: u32 = 5;
    pub const INTERNAL_ERROR: u32 = 6;
    pub const FLOW_CONTROL_ERROR: u32 = 7;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated: u32,
        priority: u8,
        flags: u8,
        /// Compressed header block.
        headers: Bytes,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Bytes,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        /// (flags, id, value)
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Bytes,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame type this endpoint ignores (e.g. CREDENTIAL).
    Unknown {
        kind: u16,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("frame of {0} bytes is too large")]
    TooLarge(usize),
    #[error("malformed {0} frame")]
    Malformed(&'static str),
}

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

const STREAM_MASK: u32 = 0x7fff_ffff;

/// Takes one whole frame off the front of `buf`; `Ok(None)` when more
/// bytes are needed.
pub fn parse(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let len = ((buf[5] as usize) << 16) | ((buf[6] as usize) << 8) | buf[7] as usize;
    if len >= MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    if buf.len() < 8 + len {
        return Ok(None);
    }
    let head = buf.split_to(8);
    let mut body = buf.split_to(len).freeze();
    let flags = head[4];
    if head[0] & 0x80 == 0 {
        let stream_id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & STREAM_MASK;
        return Ok(Some(Frame::Data {
            stream_id,
            flags,
            data: body,
        }));
    }
    let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
    if version != VERSION {
        return Err(FrameError::Version(version));
    }
    let kind = u16::from_be_bytes([head[2], head[3]]);
    let need = |b: &Bytes, n: usize, what: &'static str| {
        if b.len() < n {
            Err(FrameError::Malformed(what))
        } else {
            Ok(())
        }
    };
    let frame = match kind {
        SYN_STREAM => {
            need(&body, 10, "SYN_STREAM")?;
            let stream_id = body.get_u32() & STREAM_MASK;
            let associated = body.get_u32() & STREAM_MASK;
            let priority = body.get_u8() >> 5;
            let _slot = body.get_u8();
            Frame::SynStream {
                stream_id,
                associated,
                priority,
                flags,
                headers: body,
            }
        }
        SYN_REPLY => {
            need(&body, 4, "SYN_REPLY")?;
            let stream_id = body.get_u32() & STREAM_MASK;
            Frame::SynReply {
                stream_id,
                flags,
                headers: body,
            }
        }
        RST_STREAM => {
            need(&body, 8, "RST_STREAM")?;
            Frame::RstStream {
                stream_id: body.get_u32() & STREAM_MASK,
                status: body.get_u32(),
            }
        }
        SETTINGS => {
            need(&body, 4, "SETTINGS")?;
            let n = body.get_u32() as usize;
            if body.len() < n.saturating_mul(8) {
                return Err(FrameError::Malformed("SETTINGS"));
            }
            let entries = (0..n)
                .map(|_| {
                    let fid = body.get_u32();
                    ((fid >> 24) as u8, fid & 0x00ff_ffff, body.get_u32())
                })
                .collect();
            Frame::Settings { flags, entries }
        }
        PING => {
            need(&body, 4, "PING")?;
            Frame::Ping { id: body.get_u32() }
        }
        GOAWAY => {
            need(&body, 4, "GOAWAY")?;
            let last_good = body.get_u32() & STREAM_MASK;
            // SPDY/2 peers omit the status.
            let status = if body.len() >= 4 { body.get_u32() } else { 0 };
            Frame::GoAway { last_good, status }
        }
        HEADERS => {
            need(&body, 4, "HEADERS")?;
            let stream_id = body.get_u32() & STREAM_MASK;
            Frame::Headers {
                stream_id,
                flags,
                headers: body,
            }
        }
        WINDOW_UPDATE => {
            need(&body, 8, "WINDOW_UPDATE")?;
            Frame::WindowUpdate {
                stream_id: body.get_u32() & STREAM_MASK,
                delta: body.get_u32() & STREAM_MASK,
            }
        }
        other => Frame::Unknown { kind: other },
    };
    Ok(Some(frame))
}

fn control(out: &mut BytesMut, kind: u16, flags: u8, len: usize) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u8(flags);
    out.put_uint(len as u64, 3);
}

/// Appends `frame` to `out`.
pub fn serialize(frame: &Frame, out: &mut BytesMut) {
    match frame {
        Frame::SynStream {
            stream_id,
            associated,
            priority,
            flags,
            headers,
        } => {
            control(out, SYN_STREAM, *flags, 10 + headers.len());
            out.put_u32(stream_id & STREAM_MASK);
            out.put_u32(associated & STREAM_MASK);
            out.put_u8((priority & 0x7) << 5);
            out.put_u8(0);
            out.extend_from_slice(headers);
        }
        Frame::SynReply {
            stream_id,
            flags,
            headers,
        } => {
            control(out, SYN_REPLY, *flags, 4 + headers.len());
            out.put_u32(stream_id & STREAM_MASK);
            out.extend_from_slice(headers);
        }
        Frame::RstStream { stream_id, status } => {
            control(out, RST_STREAM, 0, 8);
            out.put_u32(stream_id & STREAM_MASK);
            out.put_u32(*status);
        }
        Frame::Settings { flags, entries } => {
            control(out, SETTINGS, *flags, 4 + 8 * entries.len());
            out.put_u32(entries.len() as u32);
            for (f, id, v) in entries {
                out.put_u32(((*f as u32) << 24) | (id & 0x00ff_ffff));
                out.put_u32(*v);
            }
        }
        Frame::Ping { id } => {
            control(out, PING, 0, 4);
            out.put_u32(*id);
        }
        Frame::GoAway { last_good, status } => {
            control(out, GOAWAY, 0, 8);
            out.put_u32(last_good & STREAM_MASK);
            out.put_u32(*status);
        }
        Frame::Headers {
            stream_id,
            flags,
            headers,
        } => {
            control(out, HEADERS, *flags, 4 + headers.len());
            out.put_u32(stream_id & STREAM_MASK);
            out.extend_from_slice(headers);
        }
        Frame::WindowUpdate { stream_id, delta } => {
            control(out, WINDOW_UPDATE, 0, 8);
            out.put_u32(stream_id & STREAM_MASK);
            out.put_u32(delta & STREAM_MASK);
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            out.put_u32(stream_id & STREAM_MASK);
            out.put_u8(*flags);
            out.put_uint(data.len() as u64, 3);
            out.extend_from_slice(data);
        }
        Frame::Unknown { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(f: Frame) {
        let mut buf = BytesMut::new();
        serialize(&f, &mut buf);
        // A partial frame asks for more.
        let mut short = BytesMut::from(&buf[..buf.len() - 1]);
        assert_eq!(parse(&mut short), Ok(None));
        assert_eq!(parse(&mut buf), Ok(Some(f)));
        assert!(buf.is_empty());
    }

    #[test]
    fn frames_round_trip() {
        round_trip(Frame::SynStream {
            stream_id: 1,
            associated: 0,
            priority: 3,
            flags: FLAG_FIN,
            headers: Bytes::from_static(b"abc"),
        });
        round_trip(Frame::SynReply {
            stream_id: 3,
            flags: 0,
            headers: Bytes::from_static(b"x"),
        });
        round_trip(Frame::RstStream {
            stream_id: 5,
            status: rst::CANCEL,
        });
        round_trip(Frame::Settings {
            flags: 0,
            entries: vec![(0, SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20)],
        });
        round_trip(Frame::Ping { id: 7 });
        round_trip(Frame::GoAway {
            last_good: 9,
            status: 0,
        });
        round_trip(Frame::WindowUpdate {
            stream_id: 1,
            delta: 4096,
        });
        round_trip(Frame::Data {
            stream_id: 1,
            flags: FLAG_FIN,
            data: Bytes::from_static(b"hello"),
        });
    }

    #[test]
    fn wire_layout_of_a_data_and_ping_frame() {
        let mut buf = BytesMut::new();
        serialize(
            &Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hi"),
            },
            &mut buf,
        );
        assert_eq!(&buf[..], &[0, 0, 0, 3, 1, 0, 0, 2, b'h', b'i']);
        buf.clear();
        serialize(&Frame::Ping { id: 1 }, &mut buf);
        assert_eq!(&buf[..], &[0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
    }

    #[test]
    fn rejects_bad_input() {
        let mut v2 = BytesMut::from(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert_eq!(parse(&mut v2), Err(FrameError::Version(2)));
        let mut short_rst = BytesMut::from(&[0x80, 3, 0, 3, 0, 0, 0, 2, 0, 0][..]);
        assert_eq!(
            parse(&mut short_rst),
            Err(FrameError::Malformed("RST_STREAM"))
        );
    }
}
