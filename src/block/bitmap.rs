//! The COW bitmap in memory: bit s set = sector s lives in the COW file.
//! Byte s/8, bit s%8, least significant bit first (UML's `ubd_test_bit`).

/// A bitmap over `sectors` sectors, stored exactly as on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    bytes: Vec<u8>,
    sectors: u64,
}

impl Bitmap {
    /// Wraps on-disk bytes; bits past `sectors` are kept but never consulted.
    /// `bytes` must hold at least `ceil(sectors / 8)` bytes (the header parser
    /// guarantees it); missing bytes are treated as clear.
    pub fn from_bytes(mut bytes: Vec<u8>, sectors: u64) -> Self {
        let need = sectors.div_ceil(8) as usize;
        if bytes.len() < need {
            bytes.resize(need, 0);
        }
        Bitmap { bytes, sectors }
    }

    /// All clear.
    pub fn new(sectors: u64) -> Self {
        Self::from_bytes(Vec::new(), sectors)
    }

    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Is sector `s` in the COW file? Out-of-range sectors are not.
    pub fn test(&self, s: u64) -> bool {
        s < self.sectors && self.bytes[(s / 8) as usize] & (1 << (s % 8)) != 0
    }

    /// Marks sectors `[start, end)` present; returns the byte range of the
    /// bitmap that changed (empty if nothing did), to be written back.
    pub fn set_range(&mut self, start: u64, end: u64) -> std::ops::Range<usize> {
        let end = end.min(self.sectors);
        let mut lo = usize::MAX;
        let mut hi = 0;
        for s in start..end {
            let byte = (s / 8) as usize;
            let bit = 1u8 << (s % 8);
            if self.bytes[byte] & bit == 0 {
                self.bytes[byte] |= bit;
                lo = lo.min(byte);
                hi = byte + 1;
            }
        }
        if lo == usize::MAX {
            0..0
        } else {
            lo..hi
        }
    }

    /// The stored bytes (for writing a range back to the file).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Sectors present in the COW file.
    pub fn count(&self) -> u64 {
        (0..self.sectors).filter(|&s| self.test(s)).count() as u64
    }

    /// Maximal runs `[start, end)` within `[from, to)` whose sectors share
    /// one state, with that state.
    pub fn runs(&self, from: u64, to: u64) -> Runs<'_> {
        Runs {
            map: self,
            at: from,
            to: to.min(self.sectors),
        }
    }
}

/// Iterator of `(start, end, in_cow)` runs; see [`Bitmap::runs`].
pub struct Runs<'a> {
    map: &'a Bitmap,
    at: u64,
    to: u64,
}

impl Iterator for Runs<'_> {
    type Item = (u64, u64, bool);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.to {
            return None;
        }
        let start = self.at;
        let state = self.map.test(start);
        let mut end = start + 1;
        while end < self.to && self.map.test(end) == state {
            end += 1;
        }
        self.at = end;
        Some((start, end, state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsb_first() {
        let mut b = Bitmap::new(20);
        assert_eq!(b.set_range(0, 1), 0..1);
        assert_eq!(b.bytes()[0], 0x01);
        assert_eq!(b.set_range(9, 10), 1..2);
        assert_eq!(b.bytes()[1], 0x02);
        assert_eq!(b.set_range(9, 10), 0..0);
        assert!(b.test(9) && !b.test(8) && !b.test(25));
        assert_eq!(b.count(), 2);
    }

    #[test]
    fn runs_split_by_state() {
        let mut b = Bitmap::new(16);
        b.set_range(3, 6);
        let r: Vec<_> = b.runs(0, 16).collect();
        assert_eq!(r, vec![(0, 3, false), (3, 6, true), (6, 16, false)]);
        let r: Vec<_> = b.runs(4, 7).collect();
        assert_eq!(r, vec![(4, 6, true), (6, 7, false)]);
    }

    #[test]
    fn from_disk_bytes() {
        let b = Bitmap::from_bytes(vec![0x80, 0x01], 16);
        assert!(b.test(7) && b.test(8) && !b.test(0));
    }
}
