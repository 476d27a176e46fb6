//! SPDY/3 header blocks: `u32 count`, then per pair `u32 len, name,
//! u32 len, value` (several values joined by NUL), zlib-compressed with a
//! preset dictionary. Each direction of a connection is ONE zlib stream,
//! flushed with `Z_SYNC_FLUSH` after every block, so the compressor and
//! decompressor live as long as the connection.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Header names and values as the peer sent them (names lower-case).
pub type Headers = Vec<(String, String)>;

/// Words at the start of the SPDY/3 dictionary, each length-prefixed.
const WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The dictionary's tail: status lines, dates and common values, unprefixed.
const TAIL: &str = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505\
203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized\
403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable\
Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT\
chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,\
text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

/// The SPDY/3 header compression dictionary (spec §2.6.10.1), 1423 bytes.
/// It must be byte-exact, or the peer's inflate fails on the first block.
pub fn dictionary() -> &'static [u8] {
    static DICT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DICT.get_or_init(|| {
        let mut d = Vec::with_capacity(1423);
        for w in WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(TAIL.as_bytes());
        d
    })
}

#[derive(Debug, thiserror::Error)]
#[error("bad SPDY header block: {0}")]
pub struct HeaderError(pub String);

/// Compresses header blocks for one direction of a connection.
pub struct Compressor {
    z: Compress,
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor {
    pub fn new() -> Self {
        let mut z = Compress::new(Compression::default(), true);
        // Infallible for a fresh stream (only a stream already in progress
        // refuses a dictionary).
        let _ = z.set_dictionary(dictionary());
        Compressor { z }
    }

    pub fn encode(&mut self, headers: &[(&str, &str)]) -> Bytes {
        let mut raw = BytesMut::new();
        raw.put_u32(headers.len() as u32);
        for (k, v) in headers {
            let k = k.to_ascii_lowercase();
            raw.put_u32(k.len() as u32);
            raw.extend_from_slice(k.as_bytes());
            raw.put_u32(v.len() as u32);
            raw.extend_from_slice(v.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        loop {
            out.reserve(256);
            let before = self.z.total_in();
            // Deflate into spare capacity; Sync flush ends each block on a
            // byte boundary so the peer can inflate it alone.
            let _ = self.z.compress_vec(input, &mut out, FlushCompress::Sync);
            let used = (self.z.total_in() - before) as usize;
            input = &input[used..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        Bytes::from(out)
    }
}

/// Inflates header blocks for one direction of a connection.
pub struct Decompressor {
    z: Decompress,
}

impl Default for Decompressor {
    fn default() -> Self {
        Self::new()
    }
}

/// Largest decompressed header block accepted.
const MAX_HEADER_BLOCK: usize = 1 << 20;

impl Decompressor {
    pub fn new() -> Self {
        Decompressor {
            z: Decompress::new(true),
        }
    }

    fn inflate(&mut self, block: &[u8]) -> Result<Vec<u8>, HeaderError> {
        let mut out = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(256));
            }
            if out.len() > MAX_HEADER_BLOCK {
                return Err(HeaderError("header block too large".into()));
            }
            let before_in = self.z.total_in();
            let before_out = self.z.total_out();
            match self
                .z
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(dictionary())
                        .map_err(|e| HeaderError(e.to_string()))?;
                }
                Err(e) => return Err(HeaderError(e.to_string())),
            }
            input = &input[(self.z.total_in() - before_in) as usize..];
            let progressed = self.z.total_in() != before_in || self.z.total_out() != before_out;
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            if !progressed && input.is_empty() {
                break;
            }
        }
        Ok(out)
    }

    pub fn decode(&mut self, block: &[u8]) -> Result<Headers, HeaderError> {
        if block.is_empty() {
            return Ok(Vec::new());
        }
        let raw = self.inflate(block)?;
        let mut b = &raw[..];
        let bad = || HeaderError("truncated".into());
        if b.remaining() < 4 {
            return Err(bad());
        }
        let n = b.get_u32() as usize;
        let mut out = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let mut field = || -> Result<String, HeaderError> {
                if b.remaining() < 4 {
                    return Err(bad());
                }
                let len = b.get_u32() as usize;
                if b.remaining() < len {
                    return Err(bad());
                }
                let s = String::from_utf8_lossy(&b[..len]).into_owned();
                b.advance(len);
                Ok(s)
            };
            let name = field()?.to_ascii_lowercase();
            let value = field()?;
            for v in value.split('\0') {
                out.push((name.clone(), v.to_string()));
            }
        }
        Ok(out)
    }
}

/// The first value of `name` (lower-case) in `headers`.
pub fn get<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_the_spec_one() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        assert_eq!(&d[..11], b"\0\0\0\x07options");
        assert!(d.ends_with(b",*,enq=0."));
        // zlib's checksum of the dictionary, as a peer's header announces it.
        let mut z = Compress::new(Compression::default(), true);
        assert_eq!(z.set_dictionary(d).ok(), Some(adler32(d)));
    }

    fn adler32(d: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &x in d {
            a = (a + x as u32) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }

    #[test]
    fn blocks_round_trip_on_one_stream() {
        let mut c = Compressor::new();
        let mut d = Decompressor::new();
        for i in 0..5 {
            let port = format!("{}", 8000 + i);
            let block = c.encode(&[("streamType", "data"), ("port", &port), ("requestID", "0")]);
            let h = d.decode(&block).unwrap();
            assert_eq!(get(&h, "streamtype"), Some("data"));
            assert_eq!(get(&h, "port"), Some(port.as_str()));
            assert_eq!(get(&h, "requestid"), Some("0"));
        }
        // A large block (longer than any internal buffer) too.
        let big = "x".repeat(100_000);
        let block = c.encode(&[("big", &big)]);
        assert_eq!(get(&d.decode(&block).unwrap(), "big"), Some(big.as_str()));
    }

    #[test]
    fn multi_values_split_on_nul() {
        let mut c = Compressor::new();
        let mut d = Decompressor::new();
        let block = c.encode(&[("x-stream-protocol-version", "v4\0v3")]);
        let h = d.decode(&block).unwrap();
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut d = Decompressor::new();
        assert!(d.decode(b"\x78\xbb\x00\x00garbage").is_err());
    }
}
