//! The packed chunk encoding of blocks: integers (or decimals scaled to integers) as
//! bit-packed deltas, timestamps as bit-packed delta-of-deltas, chosen per chunk when it is
//! smaller than Gorilla's XOR encoding.
//!
//! Layout (see `docs/format/chunks.md`), after the block's encoding byte:
//! ```text
//! uvarint n                              samples, ≥ 1
//! varint t0 | uvarint d0 (n>1) | packed(n−2 zig-zag delta-of-deltas) (n>2)
//! u8 scale k                             values are integers / 10^k
//! varint v0 | u8 order (n>1): 1 = deltas, 2 = delta-of-deltas (first delta as varint)
//!          | packed(zig-zag residuals)
//! packed(m values) := u8 width | ceil(m·width/8) bytes, values LSB-first
//! ```
//!
//! Invariants: lossless — a chunk is encoded this way only if every value survives the trip
//! through `i64 / 10^k` bit for bit (so `-0.0`, NaN, the stale marker and values with more than
//! 15 significant digits fall back to XOR); the decoder never panics and never allocates more
//! than the announced count allows for the bytes present.

use crate::bytes::{put_uvarint, put_varint, unzigzag, zigzag, Cur};
use periscope_model::Sample;

/// Largest decimal scale tried.
const MAX_SCALE: u32 = 9;
/// Most samples in one chunk (the format counts them in 16 bits for XOR chunks; packed
/// chunks keep the same limit), which also bounds what a corrupt count can allocate.
pub(crate) const MAX_SAMPLES: usize = 65_535;
/// Integers beyond ±2^53 do not round-trip through f64.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

fn width(vals: &[u64]) -> u8 {
    vals.iter().map(|v| 64 - v.leading_zeros() as u8).max().unwrap_or(0)
}

/// Bytes of an unsigned varint.
fn uvarint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// How to pack `vals`: the width, and whether values wider than it go to an exception list
/// (chunks format 3), chosen for the fewest bytes; with that byte count (for exception lists
/// an upper bound: every gap is costed at its largest varint).
fn plan(vals: &[u64], exceptions: bool) -> (u8, bool, usize) {
    let widest = width(vals);
    let plain = 1 + (vals.len() * widest as usize).div_ceil(8);
    if !exceptions || widest == 0 {
        return (widest, false, plain);
    }
    // Values by bit length, so every width is costed in O(64).
    let mut by_len = [0usize; 65];
    for &v in vals {
        by_len[64 - v.leading_zeros() as usize] += 1;
    }
    let gap_cost = uvarint_len(vals.len() as u64);
    let mut best = (widest, false, plain);
    for w in 0..widest {
        let (mut count, mut cost) = (0usize, 0usize);
        for (len, &n) in by_len.iter().enumerate().skip(w as usize + 1) {
            count += n;
            cost += n * (gap_cost + (len - w as usize).div_ceil(7));
        }
        let total = 1 + uvarint_len(count as u64) + (vals.len() * w as usize).div_ceil(8) + cost;
        if total < best.2 {
            best = (w, true, total);
        }
    }
    best
}

fn put_bits(buf: &mut Vec<u8>, vals: &[u64], w: u8) {
    if w == 0 {
        return;
    }
    let mask: u64 = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    let mut acc: u128 = 0;
    let mut bits = 0u32;
    for &v in vals {
        acc |= ((v & mask) as u128) << bits;
        bits += w as u32;
        while bits >= 8 {
            buf.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        buf.push(acc as u8);
    }
}

/// Writes `packed(m)`: the width byte (with bit 7 set when an exception list follows, its
/// count as a varint), the low `width` bits of every value, then per exception the gap to
/// the previous exception's index and the value's bits above `width`.
fn put_packed(buf: &mut Vec<u8>, vals: &[u64], exceptions: bool) {
    let (w, with_exceptions, _) = plan(vals, exceptions);
    if !with_exceptions {
        buf.push(w);
        put_bits(buf, vals, w);
        return;
    }
    buf.push(0x80 | w);
    let wide: Vec<(usize, u64)> = vals.iter().enumerate().filter(|(_, v)| *v >> w != 0).map(|(i, v)| (i, *v)).collect();
    put_uvarint(buf, wide.len() as u64);
    put_bits(buf, vals, w);
    let mut last = 0;
    for (i, v) in wide {
        put_uvarint(buf, (i - last) as u64);
        put_uvarint(buf, v >> w);
        last = i;
    }
}

/// The exact integers of `values` at the smallest decimal scale that represents them all.
fn scaled(values: &[f64]) -> Option<(u32, Vec<i64>)> {
    'scale: for k in 0..=MAX_SCALE {
        let f = 10f64.powi(k as i32);
        let mut out = Vec::with_capacity(values.len());
        for &v in values {
            let x = (v * f).round();
            if !x.is_finite() || x.abs() > MAX_EXACT {
                continue 'scale;
            }
            // Checked through the integer, exactly as the decoder computes it (this also keeps
            // -0.0 out: it becomes 0 and would come back as +0.0).
            let i = x as i64;
            if (i as f64 / f).to_bits() != v.to_bits() {
                continue 'scale;
            }
            out.push(i);
        }
        return Some((k, out));
    }
    None
}

/// Encodes samples (sorted, unique timestamps, at least one) in the packed encoding, or `None`
/// when the values cannot be represented exactly. `exceptions` allows the exception lists of
/// chunks format 3.
pub(crate) fn encode(samples: &[Sample], exceptions: bool) -> Option<Vec<u8>> {
    let first = samples.first()?;
    let values: Vec<f64> = samples.iter().map(|s| s.v).collect();
    let (k, ints) = scaled(&values)?;
    let mut buf = Vec::with_capacity(16 + samples.len() * 2);
    put_uvarint(&mut buf, samples.len() as u64);
    put_varint(&mut buf, first.t);
    if samples.len() > 1 {
        let d0 = samples[1].t.wrapping_sub(first.t);
        put_uvarint(&mut buf, d0 as u64);
        if samples.len() > 2 {
            let dods: Vec<u64> = samples
                .windows(3)
                .map(|w| zigzag(w[2].t.wrapping_sub(w[1].t).wrapping_sub(w[1].t.wrapping_sub(w[0].t))))
                .collect();
            put_packed(&mut buf, &dods, exceptions);
        }
    }
    buf.push(k as u8);
    put_varint(&mut buf, ints[0]);
    if ints.len() > 1 {
        let deltas: Vec<i64> = ints.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
        let d1: Vec<u64> = deltas.iter().map(|d| zigzag(*d)).collect();
        let d2: Vec<u64> = deltas.windows(2).map(|w| zigzag(w[1].wrapping_sub(w[0]))).collect();
        let first_len = {
            let mut b = Vec::new();
            put_varint(&mut b, deltas[0]);
            b.len()
        };
        if !d2.is_empty() && plan(&d2, exceptions).2 + first_len < plan(&d1, exceptions).2 {
            buf.push(2);
            put_varint(&mut buf, deltas[0]);
            put_packed(&mut buf, &d2, exceptions);
        } else {
            buf.push(1);
            put_packed(&mut buf, &d1, exceptions);
        }
    }
    Some(buf)
}

/// Reads a `packed(m)` field (with an exception list when bit 7 of the width is set).
fn read_packed(c: &mut Cur<'_>, m: usize) -> Option<Vec<u64>> {
    let b = c.u8()?;
    let with_exceptions = b & 0x80 != 0;
    let w = (b & 0x7f) as u32;
    if w > 64 || (with_exceptions && w >= 64) {
        return None;
    }
    let count = if with_exceptions { c.uvarint()? as usize } else { 0 };
    if count > m {
        return None;
    }
    let mut out = if w == 0 {
        vec![0; m]
    } else {
        let nbytes = (m * w as usize).div_ceil(8);
        let bytes = c.bytes(nbytes)?;
        let mut out = Vec::with_capacity(m);
        let mut acc: u128 = 0;
        let mut bits = 0u32;
        let mut it = bytes.iter();
        let mask: u128 = if w == 64 { u64::MAX as u128 } else { (1u128 << w) - 1 };
        for _ in 0..m {
            while bits < w {
                acc |= (*it.next()? as u128) << bits;
                bits += 8;
            }
            out.push((acc & mask) as u64);
            acc >>= w;
            bits -= w;
        }
        out
    };
    let mut last = 0usize;
    for k in 0..count {
        let gap = c.uvarint()? as usize;
        let i = last.checked_add(gap)?;
        // Indexes strictly increase (the first may be 0) and stay inside the field.
        if i >= m || (k > 0 && gap == 0) {
            return None;
        }
        let high = c.uvarint()?;
        if high == 0 || high.leading_zeros() < w {
            return None;
        }
        out[i] |= high << w;
        last = i;
    }
    Some(out)
}

/// Decodes a packed chunk; `None` if it is malformed.
pub(crate) fn decode(bytes: &[u8]) -> Option<Vec<Sample>> {
    let mut c = Cur::at(bytes, 0);
    let n = c.uvarint()? as usize;
    // A count beyond the format's limit is corruption. (Samples may cost no bits at all — a
    // constant series at regular times packs to zero-width fields — so the count cannot be
    // bounded by the bytes present: that bound refused such chunks once they had more samples
    // than eight per byte, e.g. 120 constant samples 100 ms apart, and lost them.)
    if n == 0 || n > MAX_SAMPLES {
        return None;
    }
    let mut ts = Vec::with_capacity(n);
    let t0 = c.varint()?;
    ts.push(t0);
    if n > 1 {
        let mut d = c.uvarint()? as i64;
        let mut t = t0.wrapping_add(d);
        ts.push(t);
        if n > 2 {
            for dod in read_packed(&mut c, n - 2)? {
                d = d.wrapping_add(unzigzag(dod));
                t = t.wrapping_add(d);
                ts.push(t);
            }
        }
    }
    let k = c.u8()? as u32;
    if k > MAX_SCALE {
        return None;
    }
    let f = 10f64.powi(k as i32);
    let mut v = c.varint()?;
    let mut out = Vec::with_capacity(n);
    out.push(Sample::new(ts[0], v as f64 / f));
    if n > 1 {
        match c.u8()? {
            1 => {
                for d in read_packed(&mut c, n - 1)? {
                    v = v.wrapping_add(unzigzag(d));
                    out.push(Sample::new(ts[out.len()], v as f64 / f));
                }
            }
            2 => {
                let mut d = c.varint()?;
                v = v.wrapping_add(d);
                out.push(Sample::new(ts[1], v as f64 / f));
                for dd in read_packed(&mut c, n - 2)? {
                    d = d.wrapping_add(unzigzag(dd));
                    v = v.wrapping_add(d);
                    out.push(Sample::new(ts[out.len()], v as f64 / f));
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Round-trips both with and without exception lists; the size with them.
    fn round_trip(samples: &[Sample]) -> Option<usize> {
        let want: Vec<(i64, u64)> = samples.iter().map(|s| (s.t, s.v.to_bits())).collect();
        let mut len = 0;
        for exceptions in [false, true] {
            let enc = encode(samples, exceptions)?;
            let dec = decode(&enc).unwrap();
            let got: Vec<(i64, u64)> = dec.iter().map(|s| (s.t, s.v.to_bits())).collect();
            assert_eq!(got, want, "exceptions {exceptions}");
            len = enc.len();
        }
        Some(len)
    }

    #[test]
    fn outliers_go_to_the_exception_list() {
        // Small steps with two big jumps: packed at a narrow width plus two exceptions.
        let mut v = 0i64;
        let samples: Vec<Sample> = (0..360)
            .map(|i| {
                v += if i == 100 || i == 300 { 1_000_000 } else { i % 7 };
                Sample::new(1_700_000_000_000 + i * 60_000, v as f64)
            })
            .collect();
        let plain = encode(&samples, false).unwrap().len();
        let with = round_trip(&samples).unwrap();
        assert!(with * 2 < plain, "{with} vs {plain}");
        // Exception lists that lie are refused, not trusted.
        let enc = encode(&samples, true).unwrap();
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0x80;
            let _ = decode(&bad);
        }
    }

    #[test]
    fn integers_decimals_and_fallbacks() {
        let regular: Vec<Sample> =
            (0..120).map(|i| Sample::new(1_700_000_000_000 + i * 15_000, (i * 7) as f64)).collect();
        // Regular timestamps and a constant rate: a handful of bytes for 120 samples.
        assert!(round_trip(&regular).unwrap() < 16);
        let cpu: Vec<Sample> =
            (0..120).map(|i| Sample::new(i * 15_000, (i * 37 % 11) as f64 / 100.0 + i as f64)).collect();
        round_trip(&cpu).unwrap();
        assert!(
            encode(&[Sample::new(0, 0.1 + 0.2)], true).is_none() || round_trip(&[Sample::new(0, 0.1 + 0.2)]).is_some()
        );
        assert!(encode(&[Sample::new(0, f64::NAN)], true).is_none());
        assert!(encode(&[Sample::new(0, periscope_model::STALE_NAN)], true).is_none());
        assert!(encode(&[Sample::new(0, -0.0)], true).is_none());
        assert!(encode(&[Sample::new(0, 1e300)], true).is_none());
        round_trip(&[Sample::new(-5, -3.0)]).unwrap();
        // Regression: constant values at regular times pack to zero-width fields; long
        // chunks of them (or short ones at small times and steps) must still decode.
        let constant: Vec<Sample> = (0..480).map(|i| Sample::new(1_700_000_000_000 + i * 100, 1.0)).collect();
        assert!(round_trip(&constant).unwrap() < 20);
        let small: Vec<Sample> = (0..120).map(|i| Sample::new(i * 100, 0.0)).collect();
        round_trip(&small).unwrap();
        round_trip(&[Sample::new(i64::MIN + 1, 1.0), Sample::new(i64::MAX, 2.0)]).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn round_trips_whatever_it_accepts(
            start in any::<i64>(),
            deltas in proptest::collection::vec(1i64..100_000, 0..130),
            ints in proptest::collection::vec(-1_000_000_000i64..1_000_000_000, 131),
            scale in 0u32..4,
            raw in proptest::collection::vec(any::<u64>(), 131),
            use_raw in any::<bool>(),
        ) {
            let mut t = start;
            let mut samples = vec![];
            for (i, d) in std::iter::once(0).chain(deltas).enumerate() {
                t = match t.checked_add(d) { Some(t) => t, None => break };
                let v = if use_raw { f64::from_bits(raw[i]) } else { ints[i] as f64 / 10f64.powi(scale as i32) };
                samples.push(Sample::new(t, v));
            }
            round_trip(&samples);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }
    }
}

/// Size analysis of real blocks (run by hand):
/// `PERISCOPE_ANALYZE_BLOCKS=<blocks dir> cargo test -p periscope-tsdb --release analyze -- --ignored --nocapture`
#[cfg(test)]
mod analysis {
    use super::*;
    use crate::chunkenc::XorAppender;

    fn uv(v: u64) -> usize {
        let mut b = Vec::new();
        put_uvarint(&mut b, v);
        b.len()
    }

    /// Bytes of `packed(m)` with exceptions: values wider than `w` keep their low bits in the
    /// array, their high bits and gap-coded index in an exception list.
    fn pfor_size(vals: &[u64]) -> usize {
        (0..=64u32)
            .map(|w| {
                let main = (vals.len() * w as usize).div_ceil(8);
                let mut exc = 0usize;
                let mut n = 0usize;
                let mut last = 0usize;
                for (i, &v) in vals.iter().enumerate() {
                    if w < 64 && v >> w != 0 {
                        exc += uv((i - last) as u64) + uv(v >> w);
                        last = i;
                        n += 1;
                    }
                }
                1 + main + uv(n as u64) + exc
            })
            .min()
            .unwrap_or(0)
    }

    #[test]
    #[ignore]
    fn analyze() {
        let Some(dir) = std::env::var_os("PERISCOPE_ANALYZE_BLOCKS") else { return };
        let (mut samples, mut current, mut packed_ts, mut packed_vals, mut pfor_vals, mut xor_only) =
            (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
        let mut format3 = 0usize;
        let all = periscope_model::Matcher::new(periscope_model::MatchOp::Regex, "__name__", ".+").unwrap();
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let Ok(b) = crate::block::Block::open(&e.path()) else { continue };
            for id in crate::postings::select(&b, std::slice::from_ref(&all)) {
                let Some((_, metas)) = b.series(id) else { continue };
                for m in metas {
                    let Some(s) = b.chunk(m.offset) else { continue };
                    samples += s.len();
                    let mut x = XorAppender::new();
                    for p in &s {
                        x.append(p.t, p.v);
                    }
                    let xor = x.bytes().len();
                    let Some(p) = encode(&s, false) else {
                        current += xor + 1;
                        format3 += xor + 1;
                        xor_only += xor + 1;
                        continue;
                    };
                    current += xor.min(p.len()) + 1;
                    format3 += xor.min(encode(&s, true).map_or(usize::MAX, |e| e.len())) + 1;
                    // Split of the packed form: timestamps vs values, and values with exceptions.
                    let values: Vec<f64> = s.iter().map(|x| x.v).collect();
                    let (_, ints) = scaled(&values).unwrap();
                    let deltas: Vec<i64> = ints.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
                    let d1: Vec<u64> = deltas.iter().map(|d| zigzag(*d)).collect();
                    let d2: Vec<u64> = deltas.windows(2).map(|w| zigzag(w[1].wrapping_sub(w[0]))).collect();
                    let plain = |v: &[u64]| 1 + (v.len() * width(v) as usize).div_ceil(8);
                    let vals_plain = plain(&d1).min(if d2.is_empty() { usize::MAX } else { plain(&d2) });
                    let vals_pfor = pfor_size(&d1).min(if d2.is_empty() { usize::MAX } else { pfor_size(&d2) });
                    packed_vals += vals_plain;
                    pfor_vals += vals_pfor;
                    packed_ts += p.len() - vals_plain;
                }
            }
        }
        eprintln!("chunks format 3 (exception lists): {:.3} B/sample", format3 as f64 / samples as f64);
        eprintln!(
            "samples {samples}: current chunks {:.3} B/sample; packed timestamps+headers {:.3}, values {:.3}, values with exceptions {:.3}; xor-only chunks {:.3}",
            current as f64 / samples as f64,
            packed_ts as f64 / samples as f64,
            packed_vals as f64 / samples as f64,
            pfor_vals as f64 / samples as f64,
            xor_only as f64 / samples as f64
        );
    }
}
