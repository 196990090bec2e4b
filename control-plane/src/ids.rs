//! Ids the control plane mints.

use rand::Rng;

use crate::clock::now_ms;

/// `<prefix>_<11 base36 time ms><10 random base36>`: ids that sort by creation
/// time, so that listing by id lists oldest first and cursors stay stable.
pub fn new_id(prefix: &str) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(prefix.len() + 22);
    out.push_str(prefix);
    out.push('_');
    let mut t = now_ms().max(0) as u64;
    let mut time = [b'0'; 11];
    for slot in time.iter_mut().rev() {
        *slot = DIGITS[(t % 36) as usize];
        t /= 36;
    }
    out.extend(time.iter().map(|&b| char::from(b)));
    let mut rng = rand::thread_rng();
    for _ in 0..10 {
        out.push(char::from(DIGITS[rng.gen_range(0..36)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_time() {
        let a = new_id("key");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id("key");
        assert!(a < b, "{a} < {b}");
        assert_eq!(a.len(), "key_".len() + 21);
    }
}
