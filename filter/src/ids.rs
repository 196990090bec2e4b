//! Request ids minted by the filter: the dedup key of usage records. A random
//! 64-bit seed per VM (from the WASI random source, through std's hasher keys)
//! and a counter, so ids never repeat within a VM and collide across VMs with
//! probability 2^-64 per pair.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

pub struct RequestIds {
    seed: u64,
    counter: u64,
}

impl RequestIds {
    pub fn new(extra_entropy: u64) -> RequestIds {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(extra_entropy);
        RequestIds {
            seed: hasher.finish(),
            counter: 0,
        }
    }

    pub fn next_id(&mut self) -> String {
        self.counter = self.counter.wrapping_add(1);
        format!("req_{:016x}{:08x}", self.seed, self.counter)
    }

    /// A number for weighted choices, different on every call.
    pub fn next_pick(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(1);
        let mut x = self.seed ^ self.counter.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_never_repeat_within_a_vm_and_differ_across_vms() {
        let mut a = RequestIds::new(1);
        let mut b = RequestIds::new(1);
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(a.next_id()));
            assert!(seen.insert(b.next_id()));
        }
        assert!(a.next_id().starts_with("req_"));
    }
}
