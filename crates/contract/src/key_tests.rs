use super::*;

fn bytes(seed: u8) -> Vec<u8> {
    (0..64u16)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) % 240)
        .collect()
}

#[test]
fn a_formatted_key_passes_its_own_check() {
    for prefix in ["tg-", "sv2-", "", "a_b-C9"] {
        let key = format_key(prefix, &bytes(7)).expect("key");
        assert_eq!(key.len(), prefix.len() + RANDOM_LEN + CHECKSUM_LEN);
        assert!(key.starts_with(prefix));
        assert_eq!(check(key.as_bytes()), Ok(key.as_str()));
    }
}

#[test]
fn a_key_with_a_wrong_checksum_is_refused_before_lookup() {
    let key = format_key("tg-", &bytes(1)).expect("key");
    let mut bad = key.clone().into_bytes();
    let last = bad.len() - 1;
    bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
    assert_eq!(check(&bad), Err(KeyError::BadChecksum));
    // One changed character of the random part is caught too.
    let mut bad = key.into_bytes();
    bad[5] = if bad[5] == b'x' { b'y' } else { b'x' };
    assert_eq!(check(&bad), Err(KeyError::BadChecksum));
}

#[test]
fn malformed_keys_are_refused_with_a_reason() {
    let good = format_key("tg-", &bytes(3)).expect("key");
    let long = format!("{}{}", "p".repeat(40), good);
    let cases: &[(&[u8], KeyError)] = &[
        (b"", KeyError::Empty),
        (b"short", KeyError::BadCharacters),
        (long.as_bytes(), KeyError::TooLong),
        (
            b"tg-\xff\xfe0123456789012345678901234567890123456789",
            KeyError::BadPrefix,
        ),
        (
            b"' OR 1=1 --aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            KeyError::BadPrefix,
        ),
        (
            b"tg-000000000000000000000000000000000000000!",
            KeyError::BadCharacters,
        ),
        (
            b"t g0000000000000000000000000000000000000000",
            KeyError::BadPrefix,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            check(input),
            Err(*want),
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn random_look_alikes_almost_never_pass_the_checksum() {
    // A made-up key of the right shape passes with probability 1/62^6 at best
    // (CRC-32 has 2^32 values): none of 20000 should.
    let mut passed = 0;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20_000 {
        let mut raw = Vec::with_capacity(80);
        for _ in 0..80 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            raw.push((state & 0xff) as u8);
        }
        let key = format_key("tg-", &raw).expect("key");
        let mut forged = key.into_bytes();
        let n = forged.len();
        forged[n - 6..].copy_from_slice(b"AAAAAA");
        if check(&forged).is_ok() {
            passed += 1;
        }
    }
    assert!(passed <= 1, "{passed} forged keys passed");
}

#[test]
fn too_little_randomness_gives_no_key() {
    assert_eq!(format_key("tg-", &[0u8; 10]), None);
    assert_eq!(format_key("tg-", &[255u8; 100]), None);
    assert_eq!(format_key("bad prefix", &bytes(1)), None);
}

#[test]
fn the_hash_is_of_the_whole_secret_and_the_display_prefix_is_short() {
    let a = format_key("tg-", &bytes(5)).expect("key");
    let b = format_key("tg-", &bytes(6)).expect("key");
    assert_ne!(hash(&a), hash(&b));
    assert_eq!(hash(&a).len(), 64);
    let shown = display_prefix(&a);
    assert_eq!(shown.len(), 3 + DISPLAY_LEN);
    assert!(a.starts_with(&shown));
}

#[test]
fn the_checksum_is_the_standard_crc32() {
    // The check value of CRC-32/ISO-HDLC: keys issued before stay valid.
    assert_eq!(super::crc32(b"123456789"), 0xcbf4_3926);
    assert_eq!(super::crc32(b""), 0);
}

#[test]
fn a_key_made_before_the_crates_keeps_its_checksum_and_hash() {
    // Issued and hashed by the hand-written CRC-32 and SHA-256 this crate
    // carried before `crc` and `sha2`: the same bytes give the same key.
    let random: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) % 240).collect();
    let key = format_key("tg-", &random).expect("key");
    assert_eq!(key, "tg-0bCnOza3eFqR2d6hItU5g9kLwX8jCnOz44Td2S");
    assert_eq!(
        hash(&key),
        "e1e90c7bfa791734ef5a88454bc4a4e92f0c5b549da2ca43bfe67bde669bb23a"
    );
    assert_eq!(KeyHash::of(&key).0.to_vec(), {
        let h = hash(&key);
        (0..32)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex"))
            .collect::<Vec<_>>()
    });
}

#[test]
fn key_hashes_are_equal_only_when_every_byte_is() {
    let a = KeyHash([7; 32]);
    let mut last = [7; 32];
    last[31] = 8;
    let mut first = [7; 32];
    first[0] = 8;
    assert_eq!(a, KeyHash([7; 32]));
    assert_ne!(a, KeyHash(last));
    assert_ne!(a, KeyHash(first));
}
