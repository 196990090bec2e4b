//! What PATCH bodies share.

use serde::{Deserialize, Deserializer};

/// For PATCH bodies: tells a field that is absent (`None`) from one set to
/// `null` (`Some(None)`).
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
