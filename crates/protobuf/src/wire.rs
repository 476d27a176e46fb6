//! The protobuf wire format: just enough to read and write the fields of
//! Kubernetes messages (proto2, no groups in use).
//!
//! Hand-written rather than taken from `prost`: the decoder is driven by the
//! schema table, not by generated structs, and this is all of it.

/// A wire type, from the low three bits of a field key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

impl WireType {
    fn from_bits(bits: u64) -> Option<Self> {
        match bits {
            0 => Some(Self::Varint),
            1 => Some(Self::Fixed64),
            2 => Some(Self::Len),
            5 => Some(Self::Fixed32),
            _ => None,
        }
    }

    fn bits(self) -> u64 {
        match self {
            Self::Varint => 0,
            Self::Fixed64 => 1,
            Self::Len => 2,
            Self::Fixed32 => 5,
        }
    }
}

/// A field's raw value as found on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

/// A cursor over one message's bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Reads a base-128 varint of at most ten bytes.
    pub(crate) fn varint(&mut self) -> Result<u64, String> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(format!("truncated varint at byte {}", self.pos));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(format!(
            "varint longer than ten bytes before byte {}",
            self.pos
        ))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "{n} bytes announced at byte {} but only {} left",
                    self.pos,
                    self.buf.len().saturating_sub(self.pos)
                )
            })?;
        let bytes = self.buf.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(bytes)
    }

    /// Reads eight little-endian bytes (a packed `double`).
    pub(crate) fn fixed64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }

    /// Reads the next field: its tag and raw value.
    pub(crate) fn field(&mut self) -> Result<(u32, Value<'a>), String> {
        let start = self.pos;
        let key = self.varint()?;
        let wire = WireType::from_bits(key & 7)
            .ok_or_else(|| format!("unsupported wire type {} at byte {start}", key & 7))?;
        let tag = u32::try_from(key >> 3)
            .ok()
            .filter(|&t| t != 0)
            .ok_or_else(|| format!("invalid field number {} at byte {start}", key >> 3))?;
        let value = match wire {
            WireType::Varint => Value::Varint(self.varint()?),
            WireType::Fixed64 => Value::Fixed64(self.fixed64()?),
            WireType::Fixed32 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes(b.try_into().unwrap_or_default()))
            }
            WireType::Len => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| format!("length {n} too large"))?;
                Value::Len(self.take(n)?)
            }
        };
        Ok((tag, value))
    }
}

/// Appends protobuf fields to a buffer.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub(crate) fn key(&mut self, tag: u32, wire: WireType) {
        self.varint((u64::from(tag) << 3) | wire.bits());
    }

    pub(crate) fn varint_field(&mut self, tag: u32, v: u64) {
        self.key(tag, WireType::Varint);
        self.varint(v);
    }

    pub(crate) fn bytes_field(&mut self, tag: u32, b: &[u8]) {
        self.key(tag, WireType::Len);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn fixed64_field(&mut self, tag: u32, v: u64) {
        self.key(tag, WireType::Fixed64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut w = Writer::default();
            w.varint(v);
            assert_eq!(Reader::new(&w.buf).varint(), Ok(v));
        }
    }

    #[test]
    fn rejects_overlong_and_truncated_input() {
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
        assert!(Reader::new(&[0x80]).varint().is_err());
        // Field 1, length 5, but only 1 byte follows.
        assert!(Reader::new(&[0x0a, 5, 0]).field().is_err());
        // Field number 0.
        assert!(Reader::new(&[0x00, 0]).field().is_err());
        // Wire type 3 (group start) is not used by Kubernetes.
        assert!(Reader::new(&[0x0b]).field().is_err());
    }
}
