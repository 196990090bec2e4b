//! SHA-256 of key secrets and snapshot bodies, from the RustCrypto `sha2`
//! crate (which builds for wasm32-wasip1 with no feature beyond its
//! defaults off).

use sha2::{Digest, Sha256};

/// The SHA-256 digest of `data`.
pub fn digest(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Lower-case hex of the SHA-256 digest of `data` (the `hex` crate).
pub fn hex_digest(data: &[u8]) -> String {
    hex::encode(digest(data))
}

/// 64 hex digits (either case) to the 32 bytes of a digest; `None` for
/// anything else.
pub fn parse_hex_digest(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{hex_digest, parse_hex_digest};

    #[test]
    fn matches_the_nist_vectors() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
            (
                b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                hex_digest(input),
                *want,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn a_million_a_matches_the_nist_vector() {
        let input = vec![b'a'; 1_000_000];
        assert_eq!(
            hex_digest(&input),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn every_length_around_the_padding_boundary_hashes() {
        // 55, 56 and 64 bytes cross the one-block / two-block padding edge.
        assert_eq!(
            hex_digest(&[b'a'; 55]),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"
        );
        assert_eq!(
            hex_digest(&[b'a'; 56]),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"
        );
        assert_eq!(
            hex_digest(&[b'a'; 64]),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"
        );
    }

    #[test]
    fn a_hex_digest_parses_back_and_anything_else_does_not() {
        let text = hex_digest(b"abc");
        let bytes = parse_hex_digest(&text).expect("parses");
        assert_eq!(bytes, super::digest(b"abc"));
        assert_eq!(parse_hex_digest(&text.to_uppercase()), Some(bytes));
        for bad in ["", "ab", &"g".repeat(64), &"a".repeat(63), &"a".repeat(66)] {
            assert_eq!(parse_hex_digest(bad), None, "{bad}");
        }
    }
}
