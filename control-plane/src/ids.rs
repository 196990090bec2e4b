//! Ids the control plane mints.

use std::marker::PhantomData;

use rand::Rng;
use serde::{Deserialize, Deserializer};

use crate::clock::now_ms;
use crate::error::field_error;

/// What an id names: its prefix, and the word for it in errors.
pub trait Kind {
    const PREFIX: &'static str;
    const WHAT: &'static str;
}

pub struct Account;
pub struct Group;

impl Kind for Account {
    const PREFIX: &'static str = "acct";
    const WHAT: &'static str = "an account";
}

impl Kind for Group {
    const PREFIX: &'static str = "grp";
    const WHAT: &'static str = "a group";
}

/// A reference by id, as a body gives it (`account_id`, `group_id`): the
/// prefix of its kind, `_`, then 1 to 64 lowercase letters and digits. As a
/// body field it is checked when the body is parsed; whether it names a
/// stored row is the handler's question.
pub struct Id<K>(String, PhantomData<K>);

impl<K: Kind> Id<K> {
    pub fn parse(id: String) -> Result<Id<K>, String> {
        let ok = id
            .strip_prefix(K::PREFIX)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|rest| {
                (1..=64).contains(&rest.len())
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if ok {
            Ok(Id(id, PhantomData))
        } else {
            Err(format!("must be {} id (`{}_...`)", K::WHAT, K::PREFIX))
        }
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<K> std::fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de, K: Kind> Deserialize<'de> for Id<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id<K>, D::Error> {
        Id::parse(String::deserialize(d)?).map_err(field_error)
    }
}

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
        assert!(Id::<Account>::parse(new_id("acct")).is_ok());
    }

    #[test]
    fn a_reference_has_its_kind_s_prefix() {
        for ok in ["acct_1", "acct_nope", &new_id("acct")] {
            assert!(Id::<Account>::parse(ok.to_string()).is_ok(), "{ok}");
        }
        let long = format!("acct_{}", "a".repeat(65));
        for bad in [
            "", "acct_", "acct", "grp_1", "acct_A1", "acct_1 ", "acct_é", &long,
        ] {
            assert!(Id::<Account>::parse(bad.to_string()).is_err(), "{bad}");
        }
        assert_eq!(
            Id::<Group>::parse("x".to_string()).err().as_deref(),
            Some("must be a group id (`grp_...`)")
        );
    }
}
