//! The control plane's own secrets: the admin token, the filter secret and the
//! data key that seals provider credentials at rest. Each comes from the
//! environment or is generated once into the data directory (mode 0600).

use std::path::Path;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// A fresh URL-safe token with 192 bits of randomness.
pub fn token() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The value from the environment, else the one in `data_dir/name`, else a new
/// one written there. Returns the value and whether it was just generated.
pub fn load_or_create(
    from_env: Option<&str>,
    data_dir: &Path,
    name: &str,
    make: fn() -> String,
) -> anyhow::Result<(String, bool)> {
    if let Some(v) = from_env {
        return Ok((v.to_string(), false));
    }
    let path = data_dir.join(name);
    if let Ok(v) = std::fs::read_to_string(&path) {
        let v = v.trim().to_string();
        if !v.is_empty() {
            return Ok((v, false));
        }
    }
    let v = make();
    write_private(&path, &v).with_context(|| format!("writing {}", path.display()))?;
    Ok((v, true))
}

fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(value.as_bytes())?;
    file.sync_all()
}

/// Seals provider credentials with XChaCha20-Poly1305 so that a copy of the
/// database alone does not give them away.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

const SEALED_PREFIX: &str = "v1:";

impl Sealer {
    pub fn from_base64(key: &str) -> anyhow::Result<Sealer> {
        let bytes = B64
            .decode(key.trim())
            .context("TOLLGATE_SECRET_KEY must be base64")?;
        if bytes.len() != 32 {
            bail!("TOLLGATE_SECRET_KEY must be 32 bytes, base64-encoded");
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
            .map_err(|_| anyhow::anyhow!("bad secret key"))?;
        Ok(Sealer { cipher })
    }

    pub fn generate_base64() -> String {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        B64.encode(key)
    }

    /// `""` stays `""` (a provider without a credential).
    pub fn seal(&self, plain: &str) -> anyhow::Result<String> {
        if plain.is_empty() {
            return Ok(String::new());
        }
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plain.as_bytes())
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", B64.encode(out)))
    }

    pub fn open(&self, sealed: &str) -> anyhow::Result<String> {
        if sealed.is_empty() {
            return Ok(String::new());
        }
        let data = sealed
            .strip_prefix(SEALED_PREFIX)
            .context("unknown sealed format")?;
        let data = B64.decode(data).context("sealed value is not base64")?;
        if data.len() < 24 {
            bail!("sealed value too short");
        }
        let (nonce, body) = data.split_at(24);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), body)
            .map_err(|_| {
                anyhow::anyhow!("a provider credential does not open with this TOLLGATE_SECRET_KEY")
            })?;
        String::from_utf8(plain).context("sealed value is not UTF-8")
    }
}

/// Compares secrets in constant time.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_credentials_open_only_with_their_key() {
        let a = Sealer::from_base64(&Sealer::generate_base64()).unwrap();
        let b = Sealer::from_base64(&Sealer::generate_base64()).unwrap();
        let sealed = a.seal("sk-live-123").unwrap();
        assert!(!sealed.contains("sk-live"));
        assert_eq!(a.open(&sealed).unwrap(), "sk-live-123");
        assert!(b.open(&sealed).is_err());
        assert_eq!(a.seal("").unwrap(), "");
        assert_ne!(
            a.seal("x").unwrap(),
            a.seal("x").unwrap(),
            "fresh nonce each time"
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(Sealer::from_base64("not base64!").is_err());
        assert!(Sealer::from_base64(&B64.encode([0u8; 16])).is_err());
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
    }
}
