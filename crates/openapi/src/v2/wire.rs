//! A minimal protobuf writer: just what encoding one gnostic
//! `openapi.v2.Document` needs (varints, length-delimited fields, doubles).

/// A message under construction.
#[derive(Default)]
pub struct Msg(Vec<u8>);

impl Msg {
    pub fn new() -> Self {
        Msg(Vec::new())
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire_type));
    }

    pub fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    /// A string field; empty strings are omitted as proto3 does.
    pub fn string(&mut self, field: u32, s: &str) -> &mut Self {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
        self
    }

    pub fn message(&mut self, field: u32, m: Msg) -> &mut Self {
        self.bytes(field, &m.0)
    }

    pub fn boolean(&mut self, field: u32, b: bool) -> &mut Self {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
        self
    }

    pub fn int64(&mut self, field: u32, v: i64) -> &mut Self {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
        self
    }

    pub fn double(&mut self, field: u32, v: f64) -> &mut Self {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_protobuf() {
        let mut m = Msg::new();
        m.string(1, "2.0").int64(2, 300).boolean(3, true);
        assert_eq!(
            m.into_bytes(),
            vec![0x0a, 3, b'2', b'.', b'0', 0x10, 0xac, 0x02, 0x18, 1]
        );
    }
}
