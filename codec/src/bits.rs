//! Bit packing, least significant bit first: value bit 0 goes to the lowest free bit of the
//! current byte. Used for product-quantization codes, which are 4 to 8 bits wide.

/// Packs fixed-width codes into bytes.
#[derive(Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    /// Appends the low `bits` bits of `value` (`bits` <= 32).
    pub fn put(&mut self, value: u32, bits: u32) {
        debug_assert!(bits <= 32 && (bits == 32 || value < (1 << bits)));
        for i in 0..bits {
            if self.used == 0 {
                self.bytes.push(0);
            }
            let last = self.bytes.len() - 1;
            self.bytes[last] |= (((value >> i) & 1) as u8) << self.used;
            self.used = (self.used + 1) % 8;
        }
    }

    /// The packed bytes; unused high bits of the last byte are zero.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads fixed-width codes back.
pub struct BitReader<'a> {
    bytes: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    /// Reads from the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, bit: 0 }
    }

    /// The next `bits` bits as a value, or `None` past the end.
    pub fn get(&mut self, bits: u32) -> Option<u32> {
        let mut value = 0u32;
        for i in 0..bits {
            let byte = *self.bytes.get(self.bit / 8)?;
            value |= u32::from((byte >> (self.bit % 8)) & 1) << i;
            self.bit += 1;
        }
        Some(value)
    }
}

/// Bytes needed for `count` codes of `bits` bits.
pub fn packed_len(count: usize, bits: u32) -> usize {
    (count * bits as usize).div_ceil(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_at_every_width() {
        for bits in 1..=12u32 {
            let codes: Vec<u32> = (0..97u32).map(|i| (i * 2_654_435_761) % (1 << bits)).collect();
            let mut w = BitWriter::default();
            codes.iter().for_each(|&c| w.put(c, bits));
            let bytes = w.finish();
            assert_eq!(bytes.len(), packed_len(codes.len(), bits));
            let mut r = BitReader::new(&bytes);
            let back: Vec<u32> = codes.iter().map(|_| r.get(bits).unwrap()).collect();
            assert_eq!(back, codes, "{bits} bits");
        }
    }

    #[test]
    fn lsb_first_layout_and_overrun() {
        let mut w = BitWriter::default();
        w.put(0b101, 3);
        w.put(0b11111, 5);
        w.put(1, 1);
        assert_eq!(w.finish(), vec![0b1111_1101, 0b1]);
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.get(8), Some(255));
        assert_eq!(r.get(1), None);
    }
}
