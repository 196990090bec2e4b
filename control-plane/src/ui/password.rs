//! Operators' passwords: Argon2id with the `argon2` crate's defaults (19 MiB,
//! 2 passes, 1 lane: OWASP's minimum), kept as PHC strings with a random
//! 16-byte salt. Hashing and checking run on the blocking pool.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;

use crate::error::{ApiError, ApiResult};

fn hash_now(password: &str) -> ApiResult<String> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("password salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("password hash: {e}")))
}

fn matches_now(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// The PHC string of a new password.
pub async fn hash(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
}

/// Whether `password` is the one `phc` was made from. Without a stored hash
/// (no such operator) a stand-in is checked all the same, so that an unknown
/// name takes as long to refuse as a wrong password.
pub async fn matches(password: String, phc: Option<String>) -> bool {
    static STAND_IN: OnceLock<String> = OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| {
            STAND_IN
                .get_or_init(|| hash_now("no such operator").unwrap_or_default())
                .clone()
        });
        matches_now(&password, &phc) && known
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_checks_its_password_only_and_is_salted() {
        let a = hash_now("correct horse battery").expect("hash");
        let b = hash_now("correct horse battery").expect("hash");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(!a.contains("correct horse"));
        assert!(matches_now("correct horse battery", &a));
        assert!(!matches_now("correct horse batterY", &a));
        assert!(!matches_now("correct horse battery", "not a phc string"));
    }
}
