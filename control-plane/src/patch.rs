//! What PATCH bodies share.

use serde::{Deserialize, Deserializer};

use crate::error::ApiResult;

/// For PATCH bodies: tells a field that is absent (`None`) from one set to
/// `null` (`Some(None)`).
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// One field of a PATCH: absent leaves the stored value, present replaces it
/// with what `check` makes of it.
pub fn set<T, V>(
    field: &mut T,
    value: Option<V>,
    check: impl FnOnce(V) -> ApiResult<T>,
) -> ApiResult<()> {
    if let Some(v) = value {
        *field = check(v)?;
    }
    Ok(())
}
