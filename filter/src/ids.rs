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

    /// This VM's seed in 16 hex digits: who a health report is from.
    pub fn reporter(&self) -> String {
        let mut id = String::with_capacity(16);
        push_hex(&mut id, self.seed, 16);
        id
    }

    /// `req_`, the seed in 16 hex digits, then the counter in at least 8.
    pub fn next_id(&mut self) -> String {
        self.counter = self.counter.wrapping_add(1);
        let counter_digits = (64 - self.counter.leading_zeros()).div_ceil(4).max(8);
        let mut id = String::with_capacity(20 + counter_digits as usize);
        id.push_str("req_");
        push_hex(&mut id, self.seed, 16);
        push_hex(&mut id, self.counter, counter_digits);
        id
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

/// The low `digits` hex digits of `n`, zero-padded (what `{:0Nx}` writes,
/// without the formatting machinery, once per request).
fn push_hex(out: &mut String, n: u64, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..digits).rev() {
        let nibble = (n >> (i * 4)) & 0xf;
        out.push(char::from(
            HEX.get(nibble as usize).copied().unwrap_or(b'0'),
        ));
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

    #[test]
    fn ids_are_what_the_format_macro_would_write() {
        for counter in [0, 9, 0xffff_fffe, 0xffff_ffff, 0x1_0000_0009, u64::MAX - 1] {
            let mut ids = RequestIds {
                seed: 0x00ab_cdef_0123_4567,
                counter,
            };
            let id = ids.next_id();
            let want = format!("req_{:016x}{:08x}", ids.seed, ids.counter);
            assert_eq!(id, want, "counter {counter:#x}");
        }
    }
}
