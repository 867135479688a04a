//! Reading request bodies field by field, so every rejection names its field.

use serde_json::{Map, Value};

use super::ApiError;
use crate::domain::{Invalid, Pin};

/// Parses a JSON object and rejects keys outside `allowed`.
pub fn object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| ApiError::InvalidJson)?;
    let Value::Object(map) = value else {
        return Err(ApiError::InvalidJson);
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::InvalidInput { field: truncate(unknown), reason: "invalid-unknown-field" });
    }
    Ok(map)
}

/// A required string field.
pub fn string<'a>(map: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Err(ApiError::invalid(field, "invalid-missing")),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::invalid(field, "invalid-not-a-string")),
    }
}

/// An optional string field (absent or null is `None`).
pub fn opt_string<'a>(map: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        _ => string(map, field).map(Some),
    }
}

/// An optional boolean field.
pub fn opt_bool(map: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid(field, "invalid-not-a-boolean")),
    }
}

/// An optional PIN, as a string of digits or as a JSON integer (the seed's type): a PIN never
/// starts with 0, so the integer names exactly one PIN.
pub fn pin(map: &Map<String, Value>, field: &str) -> Result<Option<Pin>, ApiError> {
    let raw = match map.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        Some(_) => return Err(ApiError::invalid(field, "invalid-pin")),
    };
    Pin::parse(&raw).map(Some).map_err(|Invalid(r)| ApiError::invalid(field, r))
}

/// Unknown keys are echoed back in errors; keep them short.
fn truncate(key: &str) -> String {
    key.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_objects_and_unknown_keys() {
        assert_eq!(object(b"", &[]), Err(ApiError::InvalidJson));
        assert_eq!(object(b"[1]", &[]), Err(ApiError::InvalidJson));
        assert_eq!(object(b"{\"a\":1", &["a"]), Err(ApiError::InvalidJson));
        assert_eq!(object(b"{\"b\":1}", &["a"]), Err(ApiError::invalid("b", "invalid-unknown-field")));
    }

    #[test]
    fn names_the_field_of_a_wrong_type() {
        let map = object(br#"{"email": 5, "consent": "yes"}"#, &["email", "consent"]).unwrap();
        assert_eq!(string(&map, "email"), Err(ApiError::invalid("email", "invalid-not-a-string")));
        assert_eq!(opt_bool(&map, "consent"), Err(ApiError::invalid("consent", "invalid-not-a-boolean")));
        assert_eq!(string(&map, "locale"), Err(ApiError::invalid("locale", "invalid-missing")));
    }
}
