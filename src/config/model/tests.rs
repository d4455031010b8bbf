//! Unit tests of `model`: the known-key lists stay in step with the serde structs.
use serde::de::DeserializeOwned;

use super::upstream::{UPSTREAM_KEYS, UPSTREAM_SERVER_KEYS};
use super::*;

/// Deserialize `text` as one section of type `T`; serde's error message on failure.
fn deserialize<T: DeserializeOwned + std::fmt::Debug>(text: &str) -> Result<T, String> {
    let table = DeTable::parse(text).expect("valid toml");
    let value = Spanned::new(table.span(), DeValue::Table(table.into_inner()));
    T::deserialize(ValueDeserializer::from(value)).map_err(|e| e.message().to_owned())
}

/// Each list is exactly its struct's serde fields, in declaration order (the order the
/// `UnknownKey` message lists them): serde's own unknown-field message for a table holding a
/// key no struct has names every field; and a table holding each listed key (with a value of
/// the wrong type, one key at a time since serde stops at the first) fails on the value, never
/// as an unknown field.
fn check<T: DeserializeOwned + std::fmt::Debug>(keys: &[&str]) {
    let name = std::any::type_name::<T>();
    let message = deserialize::<T>("\"not a field\" = 0\n").expect_err(name);
    let tail = message
        .strip_prefix("unknown field `not a field`")
        .unwrap_or_else(|| panic!("{name}: not an unknown-field error: {message}"));
    assert_eq!(backticked(tail), keys, "{name}");
    for key in keys {
        let message = deserialize::<T>(&format!("{key} = {{ x = 1 }}\n")).expect_err(key);
        assert!(
            message.starts_with("invalid type"),
            "{name}.{key}: {message}"
        );
    }
}

#[test]
fn known_key_lists_match_the_structs_serde_fields() {
    check::<RawServer>(SERVER_KEYS);
    check::<RawLimits>(LIMITS_KEYS);
    check::<RawTimeouts>(TIMEOUTS_KEYS);
    check::<RawLog>(LOG_KEYS);
    check::<RawAccessLog>(ACCESS_LOG_KEYS);
    check::<RawAdmin>(ADMIN_KEYS);
    check::<RawDefaults>(DEFAULTS_KEYS);
    check::<RawRoute>(ROUTE_KEYS);
    check::<RawUpstream>(UPSTREAM_KEYS);
    check::<RawUpstreamServer>(UPSTREAM_SERVER_KEYS);
}
