//! A secret held in memory (a password, a token, an `Authorization` value):
//! wiped when dropped, and never shown by `Debug`.

use serde_json::Value;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Takes the string over: its bytes are wiped with the secret.
impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(Zeroizing::new(s))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(Zeroizing::new(s.to_owned()))
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

// Zeroizing wipes the string on drop.
impl ZeroizeOnDrop for Secret {}

/// A JSON document that holds secrets (an auth file, a token response):
/// every string in it is wiped when it is dropped.
pub struct WipedJson(pub Value);

impl std::ops::Deref for WipedJson {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.0
    }
}

impl Drop for WipedJson {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

fn wipe(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_it() {
        assert_eq!(format!("{:?}", Secret::from("hunter2")), "<redacted>");
    }

    fn wiped_on_drop<T: ZeroizeOnDrop>(_: &T) {}

    /// A compile-time check of the core's holders of secrets: tokens as
    /// issued and as cached, and a client certificate's key. (Credentials,
    /// the C layer's copies and the redaction lists are checked beside
    /// their types.)
    #[test]
    fn tokens_and_keys_are_wiped_when_dropped() {
        use crate::stevedore::reference::Repository;
        use crate::stevedore::registry::Registry;
        use crate::stevedore::session::{CacheKey, IssuedToken, Session};
        use crate::stevedore::trust::Identity;
        let issued = IssuedToken {
            token: "t0ken".into(),
            expires_in: None,
        };
        wiped_on_drop(&issued.token);
        let cache = Session::default();
        let key = CacheKey::pull(
            &Registry::parse("r.example").unwrap(),
            &Repository::parse("a").unwrap(),
        );
        cache.remember(&key, "Basic YTpi".into());
        wiped_on_drop(&cache.current(&key).unwrap());
        let _key_of = |id: &Identity| wiped_on_drop(&id.key);
    }
}
