//! The guest's random numbers (getrandom, /dev/urandom, AT_RANDOM):
//! xoshiro256** seeded from std's per-process random hasher keys, which
//! the host seeds from its own entropy.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn from_host() -> Rng {
        let mut s = [0u64; 4];
        for (i, w) in s.iter_mut().enumerate() {
            let mut h = RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            *w = h.finish() | 1;
        }
        Rng { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differs_between_calls() {
        let mut r = Rng::from_host();
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        r.fill(&mut a);
        r.fill(&mut b);
        assert_ne!(a, b);
    }
}
