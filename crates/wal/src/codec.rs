//! The primitives of the engines' binary records, checkpoints, block footers and pages:
//! unsigned LEB128 varints, zigzag for signed ones, length-prefixed UTF-8 strings, label
//! sets, and a reader that checks every read against the end — a damaged input is an
//! error, never a panic or a huge allocation.
//!
//! ```text
//! uvarint := LEB128          varint := uvarint of zigzag(v)
//! str     := uvarint len | UTF-8 bytes
//! labels  := uvarint n | (str name | str value)*
//! ```

use periscope_model::Labels;

pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

pub fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

pub fn put_labels(buf: &mut Vec<u8>, labels: &Labels) {
    put_uvarint(buf, labels.len() as u64);
    for l in labels.iter() {
        put_str(buf, &l.name);
        put_str(buf, &l.value);
    }
}

/// Malformed encoded bytes: what was wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed record: {0}")]
pub struct CodecError(pub &'static str);

/// A reader over encoded bytes; every read is checked against the end.
pub struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Cur { b, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn left(&self) -> usize {
        self.b.len() - self.pos
    }

    /// Whether every byte was read.
    pub fn at_end(&self) -> bool {
        self.pos == self.b.len()
    }

    pub fn u8(&mut self) -> Result<u8, CodecError> {
        let v = *self.b.get(self.pos).ok_or(CodecError("truncated"))?;
        self.pos += 1;
        Ok(v)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self.pos.checked_add(n).ok_or(CodecError("length overflow"))?;
        let s = self.b.get(self.pos..end).ok_or(CodecError("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    pub fn uvarint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for i in 0..10 {
            let byte = self.u8()?;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError("varint too long"))
    }

    pub fn varint(&mut self) -> Result<i64, CodecError> {
        let z = self.uvarint()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    pub fn u32(&mut self) -> Result<u32, CodecError> {
        u32::try_from(self.uvarint()?).map_err(|_| CodecError("number beyond u32"))
    }

    /// A count of items that take at least `min` bytes each: larger than the bytes left can
    /// hold is an error, so a damaged count never sizes an allocation.
    pub fn count(&mut self, min: usize) -> Result<usize, CodecError> {
        let n = self.uvarint()?;
        if n > (self.left() / min.max(1)) as u64 {
            return Err(CodecError("count larger than the record"));
        }
        Ok(n as usize)
    }

    /// A string, borrowed.
    pub fn str_ref(&mut self) -> Result<&'a str, CodecError> {
        let n = self.count(1)?;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| CodecError("invalid utf-8"))
    }

    pub fn str(&mut self) -> Result<String, CodecError> {
        self.str_ref().map(str::to_owned)
    }

    /// A label set written by [`put_labels`].
    pub fn labels(&mut self) -> Result<Labels, CodecError> {
        let n = self.count(2)?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            pairs.push((self.str()?, self.str()?));
        }
        Labels::from_pairs(pairs).map_err(|_| CodecError("invalid label set"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut b = Vec::new();
        for v in [0u64, 1, 127, 128, u64::MAX] {
            put_uvarint(&mut b, v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            put_varint(&mut b, v);
        }
        put_str(&mut b, "héllo");
        let labels = Labels::from_pairs([("job", "api")]).unwrap_or_default();
        put_labels(&mut b, &labels);
        let mut c = Cur::new(&b);
        let u: Vec<u64> = (0..5).map(|_| c.uvarint().unwrap_or(7)).collect();
        assert_eq!(u, vec![0, 1, 127, 128, u64::MAX]);
        let s: Vec<i64> = (0..5).map(|_| c.varint().unwrap_or(7)).collect();
        assert_eq!(s, vec![0, -1, 1, i64::MIN, i64::MAX]);
        assert_eq!(c.str(), Ok("héllo".to_string()));
        assert_eq!(c.labels(), Ok(labels));
        assert!(c.at_end());
        assert_eq!(c.u8(), Err(CodecError("truncated")));
        assert_eq!(Cur::new(&[0xff; 11]).uvarint(), Err(CodecError("varint too long")));
        assert_eq!(Cur::new(&[200, 1, b'a']).count(1), Err(CodecError("count larger than the record")));
        assert_eq!(Cur::new(&[2, 0xff, 0xfe]).str(), Err(CodecError("invalid utf-8")));
        let mut c = Cur::new(&[3, 0]);
        assert_eq!(c.u8(), Ok(3));
        assert_eq!(c.bytes(usize::MAX), Err(CodecError("length overflow")));
        assert_eq!(c.bytes(2), Err(CodecError("truncated")));
    }
}
