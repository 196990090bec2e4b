//! API key secrets: `<prefix><32 random base62><6 base62 checksum>`.
//!
//! The random part carries 32 * log2(62) ~ 190 bits. The checksum is CRC-32 of
//! the random part, in base62, so that a mistyped or made-up key is refused
//! offline, before any lookup (GitHub's token format). The prefix is free text
//! for people (`tg-`, `sv2-`, ...) and is never an input to authentication: only
//! the SHA-256 of the whole secret is stored and looked up.

use crate::sha256;

pub const RANDOM_LEN: usize = 32;
pub const CHECKSUM_LEN: usize = 6;
pub const MAX_PREFIX_LEN: usize = 32;
/// How many characters of a key the admin API shows, for people to tell keys apart.
pub const DISPLAY_LEN: usize = 8;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    Empty,
    TooLong,
    BadCharacters,
    BadPrefix,
    BadChecksum,
}

/// CRC-32 (IEEE) of every byte value, built at compile time: a byte at a
/// time instead of a bit at a time (the filter checks a key per request).
#[expect(
    clippy::indexing_slicing,
    reason = "i < 256 in a const block, where get_mut is not available"
)]
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        let index = ((crc ^ u32::from(byte)) & 0xff) as usize;
        crc = (crc >> 8) ^ CRC_TABLE.get(index).copied().unwrap_or(0);
    }
    !crc
}

fn checksum(random: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32(random);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET.get((n % 62) as usize).copied().unwrap_or(b'0');
        n /= 62;
    }
    out
}

fn is_base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Whether `prefix` may start a key: short, and only letters, digits, `-`, `_`.
pub fn valid_prefix(prefix: &str) -> bool {
    prefix.len() <= MAX_PREFIX_LEN
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Builds a key from a prefix and random bytes (the caller brings the
/// randomness: the control plane uses the OS generator). Every byte picks one
/// base62 character by rejection sampling, so `random` needs more than
/// `RANDOM_LEN` bytes; `None` when it runs out or the prefix is invalid.
pub fn format_key(prefix: &str, random: &[u8]) -> Option<String> {
    if !valid_prefix(prefix) {
        return None;
    }
    let mut chars = Vec::with_capacity(RANDOM_LEN);
    for &b in random {
        if chars.len() == RANDOM_LEN {
            break;
        }
        // 248 = 4 * 62: bytes at or over it would bias the draw.
        if b < 248 {
            chars.push(ALPHABET.get(usize::from(b % 62)).copied()?);
        }
    }
    if chars.len() < RANDOM_LEN {
        return None;
    }
    let sum = checksum(&chars);
    let mut key = String::with_capacity(prefix.len() + RANDOM_LEN + CHECKSUM_LEN);
    key.push_str(prefix);
    key.extend(chars.iter().map(|&b| char::from(b)));
    key.extend(sum.iter().map(|&b| char::from(b)));
    Some(key)
}

/// Checks the shape and checksum of a presented key, from raw header bytes.
/// Cheap and allocation-free: this runs before any lookup.
pub fn check(key: &[u8]) -> Result<&str, KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_PREFIX_LEN + RANDOM_LEN + CHECKSUM_LEN {
        return Err(KeyError::TooLong);
    }
    let Some(split) = key.len().checked_sub(RANDOM_LEN + CHECKSUM_LEN) else {
        return Err(KeyError::BadCharacters);
    };
    let (prefix, body) = key.split_at(split);
    if !body.iter().all(|&b| is_base62(b)) {
        return Err(KeyError::BadCharacters);
    }
    let prefix_str = std::str::from_utf8(prefix).map_err(|_| KeyError::BadPrefix)?;
    if !valid_prefix(prefix_str) {
        return Err(KeyError::BadPrefix);
    }
    let (random, sum) = body.split_at(RANDOM_LEN);
    if checksum(random) != sum {
        return Err(KeyError::BadChecksum);
    }
    std::str::from_utf8(key).map_err(|_| KeyError::BadCharacters)
}

/// The stored form of a key: lower-case hex SHA-256 of the whole secret.
pub fn hash(key: &str) -> String {
    sha256::hex_digest(key.as_bytes())
}

/// The first characters of a key, safe to show in lists.
pub fn display_prefix(key: &str) -> String {
    let keep = key
        .len()
        .min(DISPLAY_LEN + key.len().saturating_sub(RANDOM_LEN + CHECKSUM_LEN));
    key.get(..keep).unwrap_or_default().to_string()
}

#[cfg(test)]
#[path = "key_tests.rs"]
mod tests;
