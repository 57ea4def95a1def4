//! The XOR chunk: Gorilla's compression of `(i64 ms, f64)` samples, as Prometheus's TSDB uses it.
//!
//! Layout (see `docs/format/chunks.md`): a 2-byte big-endian sample count, then a bit stream:
//! - sample 0: timestamp as a zig-zag varint, value as 64 raw bits;
//! - sample 1: timestamp delta as an unsigned varint, value XOR-encoded;
//! - sample n ≥ 2: delta-of-delta in one of five buckets (`0`, `10`+14 bits, `110`+17 bits,
//!   `1110`+20 bits, `1111`+64 bits), value XOR-encoded: `0` for an equal value, `10` to reuse
//!   the previous leading/trailing-zero window, `11`+5 bits leading+6 bits length+bits otherwise.
//!
//! Invariants: timestamps in a chunk strictly increase; at most `u16::MAX` samples; the stale
//! NaN and every other bit pattern round-trip exactly. The decoder never panics on arbitrary
//! bytes: a malformed chunk ends its iteration early and reports [`XorIter::err`].

/// Bit writer over a growable byte buffer.
#[derive(Debug, Clone, Default)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits still free in the last byte (0 means the next bit starts a new byte).
    free: u8,
}

impl BitWriter {
    #[inline]
    fn write_bit(&mut self, bit: bool) {
        if self.free == 0 {
            self.bytes.push(0);
            self.free = 8;
        }
        if bit {
            if let Some(last) = self.bytes.last_mut() {
                *last |= 1 << (self.free - 1);
            }
        }
        self.free -= 1;
    }

    /// Writes the low `n` bits of `v`, most significant first.
    #[inline]
    fn write_bits(&mut self, v: u64, mut n: u8) {
        while n > 0 {
            if self.free == 0 {
                self.bytes.push(0);
                self.free = 8;
            }
            let take = n.min(self.free);
            let shift = n - take;
            let chunk = ((v >> shift) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.bytes.last_mut() {
                *last |= chunk << (self.free - take);
            }
            self.free -= take;
            n -= take;
        }
    }

    fn write_uvarint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.write_bits(b as u64, 8);
                return;
            }
            self.write_bits((b | 0x80) as u64, 8);
        }
    }
}

/// Bit reader; reads past the end yield `None`.
#[derive(Debug, Clone)]
struct BitReader<'a> {
    bytes: &'a [u8],
    /// The next byte to load into `acc`.
    next: usize,
    /// Unread bits, most significant first.
    acc: u64,
    /// How many bits of `acc` are valid.
    n: u32,
}

impl<'a> BitReader<'a> {
    /// A reader of `bytes` starting at byte `start`.
    fn new(bytes: &'a [u8], start: usize) -> Self {
        BitReader { bytes, next: start.min(bytes.len()), acc: 0, n: 0 }
    }

    /// Loads whole bytes into `acc` while they fit: eight at a time when the input has them.
    #[inline]
    fn refill(&mut self) {
        let take = (64 - self.n) / 8;
        if take == 0 {
            return;
        }
        if let Some(w) = self.bytes.get(self.next..self.next + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
            let w = u64::from_be_bytes(w);
            let bits = take * 8;
            let add = if bits == 64 { w } else { (w >> (64 - bits)) << (64 - bits) };
            self.acc |= add >> self.n;
            self.n += bits;
            self.next += take as usize;
        } else {
            while self.n <= 56 && self.next < self.bytes.len() {
                self.acc |= (self.bytes[self.next] as u64) << (56 - self.n);
                self.n += 8;
                self.next += 1;
            }
        }
    }

    #[inline]
    fn read_bit(&mut self) -> Option<bool> {
        if self.n == 0 {
            self.refill();
            if self.n == 0 {
                return None;
            }
        }
        let b = self.acc >> 63 == 1;
        self.acc <<= 1;
        self.n -= 1;
        Some(b)
    }

    #[inline]
    fn take(&mut self, k: u32) -> u64 {
        // 1 <= k <= n
        let v = self.acc >> (64 - k);
        self.acc = if k == 64 { 0 } else { self.acc << k };
        self.n -= k;
        v
    }

    #[inline]
    fn read_bits(&mut self, k: u8) -> Option<u64> {
        let k = k as u32;
        if k == 0 {
            return Some(0);
        }
        if k > 64 {
            return None;
        }
        if self.n < k {
            self.refill();
        }
        if self.n >= k {
            return Some(self.take(k));
        }
        // More bits than the accumulator holds after a refill (only for k > 56): two parts.
        let hi_bits = self.n;
        if hi_bits == 0 {
            return None;
        }
        let hi = self.take(hi_bits);
        self.refill();
        let rest = k - hi_bits;
        if self.n < rest {
            return None;
        }
        Some((hi << rest) | self.take(rest))
    }

    fn read_uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.read_bits(8)? as u8;
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends samples to an XOR chunk.
#[derive(Debug, Clone, Default)]
pub struct XorAppender {
    w: BitWriter,
    count: u16,
    t: i64,
    t_delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
}

impl XorAppender {
    /// An empty chunk.
    pub fn new() -> Self {
        let mut w = BitWriter::default();
        w.bytes.extend_from_slice(&[0, 0]);
        XorAppender { w, leading: 0xff, ..Default::default() }
    }

    /// Number of samples.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Timestamp of the last sample (meaningless when empty).
    pub fn last_t(&self) -> i64 {
        self.t
    }

    /// Value of the last sample (meaningless when empty).
    pub fn last_v(&self) -> f64 {
        f64::from_bits(self.v)
    }

    /// Appends a sample. The caller guarantees `t` is greater than the last timestamp and the
    /// chunk has fewer than `u16::MAX` samples.
    pub fn append(&mut self, t: i64, v: f64) {
        let vb = v.to_bits();
        match self.count {
            0 => {
                self.w.write_uvarint(zigzag(t));
                self.w.write_bits(vb, 64);
            }
            1 => {
                let delta = t.wrapping_sub(self.t);
                self.w.write_uvarint(delta as u64);
                self.write_value(vb);
                self.t_delta = delta;
            }
            _ => {
                let delta = t.wrapping_sub(self.t);
                let dod = delta.wrapping_sub(self.t_delta);
                if dod == 0 {
                    self.w.write_bit(false);
                } else if fits(dod, 14) {
                    self.w.write_bits(0b10, 2);
                    self.w.write_bits(dod as u64, 14);
                } else if fits(dod, 17) {
                    self.w.write_bits(0b110, 3);
                    self.w.write_bits(dod as u64, 17);
                } else if fits(dod, 20) {
                    self.w.write_bits(0b1110, 4);
                    self.w.write_bits(dod as u64, 20);
                } else {
                    self.w.write_bits(0b1111, 4);
                    self.w.write_bits(dod as u64, 64);
                }
                self.write_value(vb);
                self.t_delta = delta;
            }
        }
        self.t = t;
        self.v = vb;
        self.count += 1;
        let c = self.count.to_be_bytes();
        self.w.bytes[0] = c[0];
        self.w.bytes[1] = c[1];
    }

    fn write_value(&mut self, vb: u64) {
        let x = vb ^ self.v;
        if x == 0 {
            self.w.write_bit(false);
            return;
        }
        self.w.write_bit(true);
        let mut leading = x.leading_zeros() as u8;
        let trailing = x.trailing_zeros() as u8;
        // 5 bits hold at most 31 leading zeros.
        if leading >= 32 {
            leading = 31;
        }
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.w.write_bit(false);
            self.w.write_bits(x >> self.trailing, 64 - self.leading - self.trailing);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        self.w.write_bit(true);
        self.w.write_bits(leading as u64, 5);
        let sig = 64 - leading - trailing;
        // 64 significant bits are stored as 0 in 6 bits.
        self.w.write_bits((sig & 63) as u64, 6);
        self.w.write_bits(x >> trailing, sig);
    }

    /// The encoded chunk.
    pub fn bytes(&self) -> &[u8] {
        &self.w.bytes
    }

    /// Resumes appending to an encoded chunk (e.g. the head chunk after a restart).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut it = XorIter::new(bytes);
        let mut a = XorAppender::new();
        for (t, v) in it.by_ref() {
            a.append(t, v);
        }
        if it.err() {
            return None;
        }
        Some(a)
    }
}

fn fits(v: i64, bits: u8) -> bool {
    let lim = 1i64 << (bits - 1);
    -lim < v && v <= lim
}

fn sign_extend(v: u64, bits: u8) -> i64 {
    let shift = 64 - bits as u32;
    ((v << shift) as i64) >> shift
}

/// Iterates the samples of an encoded XOR chunk.
#[derive(Debug, Clone)]
pub struct XorIter<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    t_delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
    err: bool,
}

impl<'a> XorIter<'a> {
    /// Iterates `bytes`; a chunk shorter than its header yields nothing and sets the error flag.
    pub fn new(bytes: &'a [u8]) -> Self {
        let (total, err) = match bytes {
            [a, b, ..] => (u16::from_be_bytes([*a, *b]), false),
            _ => (0, true),
        };
        XorIter { r: BitReader::new(bytes, 2), total, read: 0, t: 0, t_delta: 0, v: 0, leading: 0, trailing: 0, err }
    }

    /// Number of samples the header announces.
    pub fn len(&self) -> u16 {
        self.total
    }

    /// Whether the chunk has no samples.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Whether iteration stopped because the chunk was malformed.
    pub fn err(&self) -> bool {
        self.err
    }

    fn step(&mut self) -> Option<(i64, f64)> {
        match self.read {
            0 => {
                self.t = unzigzag(self.r.read_uvarint()?);
                self.v = self.r.read_bits(64)?;
            }
            1 => {
                self.t_delta = self.r.read_uvarint()? as i64;
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_value()?;
            }
            _ => {
                let mut prefix = 0u8;
                for _ in 0..4 {
                    if !self.r.read_bit()? {
                        break;
                    }
                    prefix += 1;
                }
                let dod = match prefix {
                    0 => 0,
                    1 => sign_extend(self.r.read_bits(14)?, 14),
                    2 => sign_extend(self.r.read_bits(17)?, 17),
                    3 => sign_extend(self.r.read_bits(20)?, 20),
                    _ => self.r.read_bits(64)? as i64,
                };
                self.t_delta = self.t_delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_value()?;
            }
        }
        Some((self.t, f64::from_bits(self.v)))
    }

    fn read_value(&mut self) -> Option<()> {
        if !self.r.read_bit()? {
            return Some(());
        }
        if self.r.read_bit()? {
            self.leading = self.r.read_bits(5)? as u8;
            let mut sig = self.r.read_bits(6)? as u8;
            if sig == 0 {
                sig = 64;
            }
            self.trailing = 64u8.checked_sub(self.leading + sig)?;
        }
        let sig = 64 - self.leading - self.trailing;
        let bits = self.r.read_bits(sig)?;
        self.v ^= bits.checked_shl(self.trailing as u32)?;
        Some(())
    }
}

impl Iterator for XorIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if self.err || self.read >= self.total {
            return None;
        }
        match self.step() {
            Some(s) => {
                self.read += 1;
                Some(s)
            }
            None => {
                self.err = true;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(samples: &[(i64, f64)]) {
        let mut a = XorAppender::new();
        for &(t, v) in samples {
            a.append(t, v);
        }
        let got: Vec<(i64, u64)> = XorIter::new(a.bytes()).map(|(t, v)| (t, v.to_bits())).collect();
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(got, want);
        let resumed = XorAppender::from_bytes(a.bytes()).unwrap();
        assert_eq!(resumed.bytes(), a.bytes());
    }

    #[test]
    fn regular_scrape_compresses_well() {
        let samples: Vec<(i64, f64)> = (0..120).map(|i| (1_700_000_000_000 + i * 15_000, 42.0)).collect();
        round_trip(&samples);
        let mut a = XorAppender::new();
        for &(t, v) in &samples {
            a.append(t, v);
        }
        // 2 header + ~6 varint + 8 value bytes, then 2 bits per sample.
        assert!(a.bytes().len() < 50, "{}", a.bytes().len());
    }

    #[test]
    fn special_values_and_extremes() {
        round_trip(&[
            (i64::MIN + 1, f64::NAN),
            (-5, periscope_model::STALE_NAN),
            (0, f64::INFINITY),
            (1, f64::NEG_INFINITY),
            (2, -0.0),
            (1 << 40, f64::MIN_POSITIVE),
            (i64::MAX, f64::MAX),
        ]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn any_increasing_series_round_trips(
            start in any::<i64>(),
            deltas in proptest::collection::vec(1i64..1_000_000_000, 0..300),
            values in proptest::collection::vec(any::<u64>(), 300),
        ) {
            let mut t = start;
            let mut samples = vec![];
            for (i, d) in std::iter::once(0).chain(deltas).enumerate() {
                t = match t.checked_add(d) { Some(t) => t, None => break };
                samples.push((t, f64::from_bits(values[i])));
            }
            round_trip(&samples);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let n = XorIter::new(&bytes).count();
            prop_assert!(n <= u16::MAX as usize);
        }
    }
}
