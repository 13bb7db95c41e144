//! An adaptive binary range coder, and the binarization of quantized coefficients on it.
//!
//! Coder: 32-bit range, carry-propagating low with an LZMA-style byte cache, probabilities of
//! a 0 bit in 15 bits. After an adaptive bit, `p += (32768 - p) >> 5` on 0 and `p -= p >> 5`
//! on 1. Bypass bits have p = 1/2 and no adaptation. Termination writes the value in
//! `[low, low + range)` with the most trailing zero bits, then drops the first byte (always
//! 0) and trailing zero bytes; the decoder reads zeros past the end, so the payload length
//! (from the wire header) is all it needs.
//!
//! Coefficients, in order, each with a context set `cs` and a neighbour count `nc` (how many
//! of its left and upper neighbours are non-zero):
//! - zero flag: `q != 0` with context `Z[cs][nc]`;
//! - sign: a bypass bit, 1 for negative;
//! - magnitude `m = |q| - 1`: unary bits `m > t` for `t = 0..14` with contexts `U[cs][t]`,
//!   stopping at the first 0; from `m >= 14`, `m - 14` follows as order-0 Exp-Golomb in
//!   bypass bits.
//!
//! Each context set holds `3 + 14` probabilities: `Z0..Z2`, then `U0..U13`.

/// Bits of a probability.
pub const PROB_BITS: u32 = 15;
const ONE: u32 = 1 << PROB_BITS;
const HALF: u16 = 1 << (PROB_BITS - 1);
const TOP: u32 = 1 << 24;
const SHIFT: u32 = 5;
/// Unary magnitude bits before the Exp-Golomb escape.
pub const UNARY: usize = 14;
/// Probabilities per context set.
pub const CONTEXTS_PER_SET: usize = 3 + UNARY;
/// Largest magnitude coded; larger ones are saturated (quantized features never come near).
pub const MAX_MAGNITUDE: u32 = 1 << 24;
/// Longest Exp-Golomb prefix a decoder accepts: [`MAX_MAGNITUDE`] needs 23 bits, so longer
/// ones only come from corrupt data (and an endless run of zeros past the end would
/// otherwise never stop).
const MAX_PREFIX: u32 = 24;

fn adapt(p: &mut u16, bit: bool) {
    let v = u32::from(*p);
    *p = if bit { v - (v >> SHIFT) } else { v + ((ONE - v) >> SHIFT) } as u16;
}

/// Writes bits.
pub struct Encoder {
    low: u64,
    range: u32,
    cache: u8,
    cache_size: u64,
    out: Vec<u8>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder { low: 0, range: u32::MAX, cache: 0, cache_size: 1, out: Vec::new() }
    }
}

impl Encoder {
    fn shift_low(&mut self) {
        if self.low < 0xFF00_0000 || self.low >= 1 << 32 {
            let carry = (self.low >> 32) as u8;
            let mut byte = self.cache;
            loop {
                self.out.push(byte.wrapping_add(carry));
                byte = 0xFF;
                self.cache_size -= 1;
                if self.cache_size == 0 {
                    break;
                }
            }
            self.cache = ((self.low >> 24) & 0xFF) as u8;
        }
        self.cache_size += 1;
        self.low = (self.low & 0x00FF_FFFF) << 8;
    }

    fn put(&mut self, p0: u16, bit: bool) {
        let bound = (self.range >> PROB_BITS) * u32::from(p0);
        if bit {
            self.low += u64::from(bound);
            self.range -= bound;
        } else {
            self.range = bound;
        }
        while self.range < TOP {
            self.range <<= 8;
            self.shift_low();
        }
    }

    /// Codes `bit` with the adaptive probability `p`, then adapts it.
    pub fn adaptive(&mut self, p: &mut u16, bit: bool) {
        self.put(*p, bit);
        adapt(p, bit);
    }

    /// Codes `bit` at probability one half.
    pub fn bypass(&mut self, bit: bool) {
        self.put(HALF, bit);
    }

    /// Flushes and returns the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        let hi = self.low + u64::from(self.range);
        let mut value = self.low;
        for s in (0..=40u32).rev() {
            let v = ((self.low + (1u64 << s) - 1) >> s) << s;
            if v < hi {
                value = v;
                break;
            }
        }
        self.low = value;
        for _ in 0..5 {
            self.shift_low();
        }
        let mut end = self.out.len();
        while end > 1 && self.out[end - 1] == 0 {
            end -= 1;
        }
        self.out.truncate(end);
        self.out.remove(0);
        self.out
    }
}

/// Reads bits back.
pub struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
    range: u32,
    code: u32,
}

impl<'a> Decoder<'a> {
    /// Starts decoding `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        let mut d = Decoder { bytes, at: 0, range: u32::MAX, code: 0 };
        for _ in 0..4 {
            d.code = (d.code << 8) | u32::from(d.next());
        }
        d
    }

    fn next(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn get(&mut self, p0: u16) -> bool {
        let bound = (self.range >> PROB_BITS) * u32::from(p0);
        let bit = self.code >= bound;
        if bit {
            self.code -= bound;
            self.range -= bound;
        } else {
            self.range = bound;
        }
        while self.range < TOP {
            self.range <<= 8;
            self.code = (self.code << 8) | u32::from(self.next());
        }
        bit
    }

    /// Reads a bit with the adaptive probability `p`, then adapts it.
    pub fn adaptive(&mut self, p: &mut u16) -> bool {
        let bit = self.get(*p);
        adapt(p, bit);
        bit
    }

    /// Reads a bit at probability one half.
    pub fn bypass(&mut self) -> bool {
        self.get(HALF)
    }
}

/// Where each coefficient's neighbours are and which context set it uses.
pub struct Layout<'a> {
    /// Context set of each coefficient.
    pub sets: &'a [u16],
    /// Index of the left neighbour (an earlier coefficient), or `u32::MAX`.
    pub left: &'a [u32],
    /// Index of the upper neighbour, or `u32::MAX`.
    pub up: &'a [u32],
}

fn neighbours(q: &[i32], layout: &Layout<'_>, i: usize) -> usize {
    let nz = |j: u32| j != u32::MAX && q.get(j as usize).is_some_and(|&v| v != 0);
    usize::from(nz(layout.left[i])) + usize::from(nz(layout.up[i]))
}

/// Codes quantized coefficients; `probs` are the starting tables (one set of
/// [`CONTEXTS_PER_SET`] per context set), copied, not changed. Magnitudes over
/// [`MAX_MAGNITUDE`] are saturated.
pub fn encode(q: &[i32], layout: &Layout<'_>, probs: &[u16]) -> Vec<u8> {
    let mut p = probs.to_vec();
    let mut enc = Encoder::default();
    for (i, &v) in q.iter().enumerate() {
        let base = usize::from(layout.sets[i]) * CONTEXTS_PER_SET;
        enc.adaptive(&mut p[base + neighbours(q, layout, i)], v != 0);
        if v == 0 {
            continue;
        }
        enc.bypass(v < 0);
        let m = v.unsigned_abs().min(MAX_MAGNITUDE) - 1;
        for t in 0..UNARY {
            let more = m > t as u32;
            enc.adaptive(&mut p[base + 3 + t], more);
            if !more {
                break;
            }
        }
        if m >= UNARY as u32 {
            let r = m - UNARY as u32 + 1;
            let n = 31 - r.leading_zeros();
            for _ in 0..n {
                enc.bypass(false);
            }
            enc.bypass(true);
            for k in (0..n).rev() {
                enc.bypass((r >> k) & 1 == 1);
            }
        }
    }
    enc.finish()
}

/// Decodes `n` coefficients written by [`encode`] with the same layout and tables.
///
/// # Errors
/// A description of the damage, for streams no encoder writes (an Exp-Golomb prefix over
/// 24 bits).
pub fn decode(
    bytes: &[u8],
    n: usize,
    layout: &Layout<'_>,
    probs: &[u16],
) -> Result<Vec<i32>, String> {
    let mut p = probs.to_vec();
    let mut dec = Decoder::new(bytes);
    let mut q = vec![0i32; n];
    for i in 0..n {
        let base = usize::from(layout.sets[i]) * CONTEXTS_PER_SET;
        if !dec.adaptive(&mut p[base + neighbours(&q, layout, i)]) {
            continue;
        }
        let negative = dec.bypass();
        let mut m = 0u32;
        for t in 0..UNARY {
            if !dec.adaptive(&mut p[base + 3 + t]) {
                break;
            }
            m = t as u32 + 1;
        }
        if m >= UNARY as u32 {
            let mut prefix = 0;
            while !dec.bypass() {
                prefix += 1;
                if prefix > MAX_PREFIX {
                    return Err(format!(
                        "coefficient {i}: magnitude escape longer than {MAX_PREFIX} bits"
                    ));
                }
            }
            let mut r = 1u32;
            for _ in 0..prefix {
                r = (r << 1) | u32::from(dec.bypass());
            }
            m = r - 1 + UNARY as u32;
        }
        let v = (m + 1) as i32;
        q[i] = if negative { -v } else { v };
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn flat_layout(n: usize, w: usize) -> (Vec<u16>, Vec<u32>, Vec<u32>) {
        let sets = (0..n).map(|i| (i % 3) as u16).collect();
        let left = (0..n).map(|i| if i % w == 0 { u32::MAX } else { i as u32 - 1 }).collect();
        let up = (0..n).map(|i| if i < w { u32::MAX } else { (i - w) as u32 }).collect();
        (sets, left, up)
    }

    #[test]
    fn bits_round_trip_with_adaptation() {
        let mut rng = SplitMix64::new(1);
        let bits: Vec<bool> = (0..20_000).map(|_| rng.next_f64() < 0.1).collect();
        let mut enc = Encoder::default();
        let mut p = HALF;
        for &b in &bits {
            enc.adaptive(&mut p, b);
            enc.bypass(!b);
        }
        let bytes = enc.finish();
        // A 10% source costs about 0.47 bits per bit, plus one bypass bit each.
        assert!(bytes.len() < 20_000 * 15 / 10 / 8, "{} bytes", bytes.len());
        let mut dec = Decoder::new(&bytes);
        let mut p = HALF;
        for &b in &bits {
            assert_eq!(dec.adaptive(&mut p), b);
            assert_eq!(dec.bypass(), !b);
        }
    }

    #[test]
    fn coefficients_round_trip_including_escapes_and_extremes() {
        let mut rng = SplitMix64::new(2);
        let n = 5000;
        let mut q: Vec<i32> = (0..n)
            .map(|_| {
                let u = rng.next_f64();
                if u < 0.7 { 0 } else { ((rng.normal() * 6.0) as i32).clamp(-40, 40) }
            })
            .collect();
        q[10] = MAX_MAGNITUDE as i32;
        q[11] = -(1 << 20);
        q[12] = 15;
        q[13] = 14;
        let (sets, left, up) = flat_layout(n, 50);
        let layout = Layout { sets: &sets, left: &left, up: &up };
        let probs = vec![HALF; 3 * CONTEXTS_PER_SET];
        let bytes = encode(&q, &layout, &probs);
        assert_eq!(decode(&bytes, n, &layout, &probs).unwrap(), q);
        // All zeros costs almost nothing.
        let zeros = vec![0; n];
        assert!(encode(&zeros, &layout, &probs).len() < 60);
    }

    #[test]
    fn garbage_decodes_without_panicking() {
        let (sets, left, up) = flat_layout(300, 10);
        let layout = Layout { sets: &sets, left: &left, up: &up };
        let probs = vec![HALF; 3 * CONTEXTS_PER_SET];
        let mut rng = SplitMix64::new(3);
        for len in [0usize, 1, 7, 64, 500] {
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let _ = decode(&bytes, 300, &layout, &probs);
        }
        // A stream no encoder writes: an escape prefix of 30 zero bits.
        let mut p = probs.clone();
        let mut enc = Encoder::default();
        enc.adaptive(&mut p[0], true);
        enc.bypass(false);
        for t in 0..UNARY {
            enc.adaptive(&mut p[3 + t], true);
        }
        for _ in 0..30 {
            enc.bypass(false);
        }
        enc.bypass(true);
        let err = decode(&enc.finish(), 300, &layout, &probs).unwrap_err();
        assert!(err.contains("escape"), "{err}");
    }
}
