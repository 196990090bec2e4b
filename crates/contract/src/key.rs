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

/// CRC-32/ISO-HDLC (the IEEE CRC of zip and PNG): keys issued with it stay valid.
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

fn crc32(data: &[u8]) -> u32 {
    CRC32.checksum(data)
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

/// A key's SHA-256 as the filter indexes it. Equality is constant-time
/// (`subtle`): looking a presented key up compares its hash with stored
/// ones, and how long that takes must not tell how many bytes matched.
#[derive(Debug, Clone, Copy, Eq)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// The hash of a presented secret.
    pub fn of(secret: &str) -> KeyHash {
        KeyHash(sha256::digest(secret.as_bytes()))
    }
}

impl PartialEq for KeyHash {
    fn eq(&self, other: &KeyHash) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}

impl std::hash::Hash for KeyHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
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
