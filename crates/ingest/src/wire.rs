//! Hand-written protobuf wire format: a zero-copy reader and the few writer helpers the
//! encoders need. No code generation, no reflection.
//!
//! Invariants of [`Reader`]:
//! - It never reads outside its slice and never allocates; length-delimited fields are returned
//!   as sub-slices of the input.
//! - Varints are at most ten bytes and at most 64 bits (the tenth byte may only be 0 or 1);
//!   anything else is [`WireErrorKind::VarintOverflow`], as protobuf-go.
//! - A tag must carry a field number in `1..2^29` and a wire type in `0..=5`.
//! - Unknown fields are skipped per the protobuf rules, groups included (iteratively, with a
//!   bounded nesting depth); a lone end-group tag is an error.
//! - Errors carry the message name given at construction and the absolute byte offset in the
//!   whole body (the reader knows the offset of its slice).

use crate::error::{WireError, WireErrorKind, WireType};

/// Deepest group nesting [`Reader::skip`] follows before giving up.
const MAX_GROUP_DEPTH: usize = 32;

/// A cursor over one protobuf message.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the whole body, for error messages.
    base: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, which starts at byte `base` of the body and holds a `message`.
    #[inline]
    pub(crate) fn new(buf: &'a [u8], base: usize, message: &'static str) -> Self {
        Reader { buf, pos: 0, base, message }
    }

    #[cold]
    fn err_at(&self, pos: usize, kind: WireErrorKind) -> WireError {
        WireError { kind, message: self.message, offset: self.base + pos }
    }

    /// A wire-type mismatch for the known field `field`, reported at the cursor.
    #[cold]
    pub(crate) fn mismatch(&self, field: &'static str, expected: WireType, found: WireType) -> WireError {
        self.err_at(self.pos, WireErrorKind::WireTypeMismatch { field, expected, found })
    }

    /// `Ok` when a known field arrived with its expected wire type, the mismatch error otherwise.
    #[inline]
    pub(crate) fn expect(&self, found: WireType, expected: WireType, field: &'static str) -> Result<(), WireError> {
        if found == expected {
            Ok(())
        } else {
            Err(self.mismatch(field, expected, found))
        }
    }

    /// The cursor's position in this reader's slice.
    #[inline]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Reads a varint.
    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        // One- and two-byte varints (tags, lengths below 16 KiB) are nearly all of them.
        match self.buf.get(self.pos..) {
            Some(&[b, ..]) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            Some(&[b0, b1, ..]) if b1 < 0x80 => {
                self.pos += 2;
                Ok(u64::from(b0 & 0x7f) | (u64::from(b1) << 7))
            }
            _ => self.varint_slow(),
        }
    }

    fn varint_slow(&mut self) -> Result<u64, WireError> {
        let start = self.pos;
        let mut pos = start;
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let Some(&b) = self.buf.get(pos) else {
                return Err(self.err_at(start, WireErrorKind::TruncatedVarint));
            };
            pos += 1;
            if shift == 63 && b > 1 {
                return Err(self.err_at(start, WireErrorKind::VarintOverflow));
            }
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                self.pos = pos;
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// Reads four little-endian bytes.
    pub(crate) fn fixed32(&mut self) -> Result<u32, WireError> {
        match self.buf.get(self.pos..self.pos + 4) {
            Some(b) => {
                let mut a = [0u8; 4];
                a.copy_from_slice(b);
                self.pos += 4;
                Ok(u32::from_le_bytes(a))
            }
            None => Err(self.err_at(self.pos, WireErrorKind::TruncatedFixed)),
        }
    }

    /// Reads eight little-endian bytes.
    #[inline]
    pub(crate) fn fixed64(&mut self) -> Result<u64, WireError> {
        match self.buf.get(self.pos..self.pos + 8) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                self.pos += 8;
                Ok(u64::from_le_bytes(a))
            }
            None => Err(self.err_at(self.pos, WireErrorKind::TruncatedFixed)),
        }
    }

    /// Reads a length-delimited field's payload; returns it and its absolute offset.
    #[inline]
    pub(crate) fn bytes(&mut self) -> Result<(&'a [u8], usize), WireError> {
        let start = self.pos;
        let len = self.varint()?;
        let remaining = self.buf.len() - self.pos;
        if len > remaining as u64 {
            let kind = if len > i64::MAX as u64 {
                WireErrorKind::NegativeLength
            } else {
                WireErrorKind::LengthOutOfBounds { length: len, remaining }
            };
            return Err(self.err_at(start, kind));
        }
        // `len <= remaining`, so it fits usize and the slice is in bounds.
        let len = len as usize;
        let from = self.pos;
        self.pos += len;
        Ok((&self.buf[from..from + len], self.base + from))
    }

    /// The next field's number and wire type, or `None` at the end of the message.
    #[inline]
    pub(crate) fn field(&mut self) -> Result<Option<(u32, WireType)>, WireError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let start = self.pos;
        let tag = self.varint()?;
        if tag > u64::from(u32::MAX) {
            return Err(self.err_at(start, WireErrorKind::FieldNumberTooLarge));
        }
        let number = (tag >> 3) as u32;
        if number == 0 {
            return Err(self.err_at(start, WireErrorKind::FieldNumberZero));
        }
        let wire_type = match tag & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            3 => WireType::StartGroup,
            4 => WireType::EndGroup,
            5 => WireType::Fixed32,
            t => return Err(self.err_at(start, WireErrorKind::InvalidWireType(t as u8))),
        };
        Ok(Some((number, wire_type)))
    }

    /// Skips the payload of an unknown field whose tag was just read.
    pub(crate) fn skip(&mut self, number: u32, wire_type: WireType) -> Result<(), WireError> {
        match wire_type {
            WireType::StartGroup => self.skip_group(number),
            WireType::EndGroup => Err(self.err_at(self.pos, WireErrorKind::UnexpectedEndGroup)),
            scalar => self.skip_scalar(scalar),
        }
    }

    fn skip_scalar(&mut self, wire_type: WireType) -> Result<(), WireError> {
        match wire_type {
            WireType::Varint => self.varint().map(drop),
            WireType::Fixed64 => self.fixed64().map(drop),
            WireType::Len => self.bytes().map(drop),
            WireType::Fixed32 => match self.buf.get(self.pos..self.pos + 4) {
                Some(_) => {
                    self.pos += 4;
                    Ok(())
                }
                None => Err(self.err_at(self.pos, WireErrorKind::TruncatedFixed)),
            },
            WireType::StartGroup | WireType::EndGroup => Err(self.err_at(self.pos, WireErrorKind::UnexpectedEndGroup)),
        }
    }

    /// Skips a group up to its matching end tag, iteratively with a bounded stack.
    fn skip_group(&mut self, number: u32) -> Result<(), WireError> {
        let mut open = [0u32; MAX_GROUP_DEPTH];
        open[0] = number;
        let mut depth = 1usize;
        loop {
            let at = self.pos;
            let Some((n, wt)) = self.field()? else {
                return Err(self.err_at(at, WireErrorKind::UnterminatedGroup));
            };
            match wt {
                WireType::StartGroup => {
                    if depth == MAX_GROUP_DEPTH {
                        return Err(self.err_at(at, WireErrorKind::GroupTooDeep));
                    }
                    open[depth] = n;
                    depth += 1;
                }
                WireType::EndGroup => {
                    depth -= 1;
                    if open[depth] != n {
                        return Err(self.err_at(at, WireErrorKind::UnexpectedEndGroup));
                    }
                    if depth == 0 {
                        return Ok(());
                    }
                }
                scalar => self.skip_scalar(scalar)?,
            }
        }
    }
}

/// Appends `v` as a varint.
#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes `v` takes as a varint.
#[inline]
pub(crate) fn varint_len(v: u64) -> usize {
    // ceil(significant bits / 7); zero still takes one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends a tag.
#[inline]
pub(crate) fn put_tag(out: &mut Vec<u8>, number: u32, wire_type: WireType) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire_type.code()));
}

/// Appends a length-delimited field.
#[inline]
pub(crate) fn put_bytes(out: &mut Vec<u8>, number: u32, data: &[u8]) {
    put_tag(out, number, WireType::Len);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// Bytes a length-delimited field of `len` payload bytes takes, for a field number below 16.
#[inline]
pub(crate) fn bytes_field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_varint(b: &[u8]) -> Result<u64, WireErrorKind> {
        Reader::new(b, 0, "Test").varint().map_err(|e| e.kind)
    }

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX - 1, u64::MAX, (-1i64) as u64] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            assert_eq!(read_varint(&out), Ok(v));
        }
        assert_eq!(read_varint(&[]), Err(WireErrorKind::TruncatedVarint));
        assert_eq!(read_varint(&[0x80, 0x80]), Err(WireErrorKind::TruncatedVarint));
        // Ten bytes whose last carries more than the one remaining bit.
        let mut ten = vec![0xff; 9];
        ten.push(0x02);
        assert_eq!(read_varint(&ten), Err(WireErrorKind::VarintOverflow));
        // Eleven bytes: the tenth has its continuation bit set.
        let mut eleven = vec![0xff; 10];
        eleven.push(0x01);
        assert_eq!(read_varint(&eleven), Err(WireErrorKind::VarintOverflow));
        // Non-minimal but valid encodings are accepted, as protobuf does.
        assert_eq!(read_varint(&[0x81, 0x80, 0x00]), Ok(1));
    }

    #[test]
    fn lengths() {
        let mut r = Reader::new(&[0x05, 1, 2], 10, "Test");
        let e = r.bytes().unwrap_err();
        assert_eq!(e.kind, WireErrorKind::LengthOutOfBounds { length: 5, remaining: 2 });
        assert_eq!(e.offset, 10);
        let mut neg = Vec::new();
        put_varint(&mut neg, (-1i64) as u64);
        assert_eq!(Reader::new(&neg, 0, "Test").bytes().unwrap_err().kind, WireErrorKind::NegativeLength);
        let mut r = Reader::new(&[0x02, 7, 8, 9], 3, "Test");
        assert_eq!(r.bytes().unwrap(), (&[7u8, 8][..], 4));
        assert_eq!(r.field().unwrap(), Some((1, WireType::Fixed64)));
        assert_eq!(r.fixed64().unwrap_err().offset, 7);
    }

    #[test]
    fn tags() {
        let kind = |b: &[u8]| Reader::new(b, 0, "Test").field().map_err(|e| e.kind);
        assert_eq!(kind(&[0x08]), Ok(Some((1, WireType::Varint))));
        assert_eq!(kind(&[]), Ok(None));
        assert_eq!(kind(&[0x00]), Err(WireErrorKind::FieldNumberZero));
        assert_eq!(kind(&[0x0e]), Err(WireErrorKind::InvalidWireType(6)));
        assert_eq!(kind(&[0x0f]), Err(WireErrorKind::InvalidWireType(7)));
        assert_eq!(kind(&[0x80, 0x80, 0x80, 0x80, 0x10]), Err(WireErrorKind::FieldNumberTooLarge));
    }

    #[test]
    fn skips_every_wire_type_and_groups() {
        // field 1 varint, field 2 fixed64, field 3 len, field 4 group{field 5 fixed32, group 6 {}},
        // then field 7 varint 9.
        let mut b = Vec::new();
        put_tag(&mut b, 1, WireType::Varint);
        put_varint(&mut b, 300);
        put_tag(&mut b, 2, WireType::Fixed64);
        b.extend_from_slice(&[0; 8]);
        put_bytes(&mut b, 3, b"abc");
        put_tag(&mut b, 4, WireType::StartGroup);
        put_tag(&mut b, 5, WireType::Fixed32);
        b.extend_from_slice(&[0; 4]);
        put_tag(&mut b, 6, WireType::StartGroup);
        put_tag(&mut b, 6, WireType::EndGroup);
        put_tag(&mut b, 4, WireType::EndGroup);
        put_tag(&mut b, 7, WireType::Varint);
        put_varint(&mut b, 9);
        let mut r = Reader::new(&b, 0, "Test");
        for _ in 0..4 {
            let (n, wt) = r.field().unwrap().unwrap();
            r.skip(n, wt).unwrap();
        }
        assert_eq!(r.field().unwrap(), Some((7, WireType::Varint)));
        assert_eq!(r.varint().unwrap(), 9);
        assert_eq!(r.field().unwrap(), None);
    }

    #[test]
    fn bad_groups() {
        let skip_first = |b: &[u8]| {
            let mut r = Reader::new(b, 0, "Test");
            let (n, wt) = r.field().unwrap().unwrap();
            r.skip(n, wt).map_err(|e| e.kind)
        };
        assert_eq!(skip_first(&[0x0c]), Err(WireErrorKind::UnexpectedEndGroup));
        assert_eq!(skip_first(&[0x0b]), Err(WireErrorKind::UnterminatedGroup));
        assert_eq!(skip_first(&[0x0b, 0x14]), Err(WireErrorKind::UnexpectedEndGroup));
        let deep: Vec<u8> = std::iter::repeat_n(0x0b, MAX_GROUP_DEPTH + 1).collect();
        assert_eq!(skip_first(&deep), Err(WireErrorKind::GroupTooDeep));
        assert_eq!(skip_first(&[0x0d, 1, 2]), Err(WireErrorKind::TruncatedFixed));
    }
}
