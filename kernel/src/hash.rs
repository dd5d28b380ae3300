//! A fast hasher for the per-prefix maps (a million keys on the hot path;
//! SipHash's cost shows up there). Keys come from configured BGP peers, so
//! it is not hardened against deliberately colliding keys.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl FastHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(23) ^ w).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    /// A full 64-bit mix at the end (the splitmix64 finaliser), so that
    /// both the low bits (bucket) and the high bits (tag) are well spread.
    #[inline]
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
pub(crate) type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::IpNet;
    use std::hash::BuildHasher;

    #[test]
    fn spreads_consecutive_prefixes() {
        let b = BuildHasherDefault::<FastHasher>::default();
        let mut buckets = vec![0u32; 1024];
        for i in 0..100_000u32 {
            let p: IpNet = format!("{}.{}.{}.0/24", 10 + (i >> 16), (i >> 8) & 255, i & 255)
                .parse()
                .unwrap();
            buckets[(b.hash_one(p) & 1023) as usize] += 1;
        }
        let max = *buckets.iter().max().unwrap();
        assert!(max < 200, "worst bucket {max} (mean ~98)");
    }
}
