//! TCP-MD5 passwords (RFC 2385): given inline (`password`) or read from a
//! file (`passwordFile`) at load and at every reload. A [`Password`] never
//! shows its key in `Debug` output, so logging a config or socket options
//! cannot leak it.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most key bytes `struct tcp_md5sig` holds (TCP_MD5SIG_MAXKEYLEN).
pub const MAX_KEY_BYTES: usize = 80;

/// A TCP-MD5 key. Serializes as the key itself (the canonical YAML of an
/// inline password), or not at all when it came from `passwordFile`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password {
    key: String,
    from_file: bool,
}

impl Password {
    pub fn new(key: impl Into<String>) -> Password {
        Password {
            key: key.into(),
            from_file: false,
        }
    }

    /// The key as the kernel takes it.
    pub fn as_bytes(&self) -> &[u8] {
        self.key.as_bytes()
    }

    pub fn len_bytes(&self) -> usize {
        self.key.len()
    }

    /// Read from `passwordFile` or `passwordSecretRef` (so `to_yaml` writes
    /// the file name or the reference, not the key).
    pub fn from_file(&self) -> bool {
        self.from_file
    }

    /// A stand-in printed by `config check --print`.
    pub fn redacted() -> Password {
        Password::new("<redacted>")
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Serialize for Password {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.key)
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Password, D::Error> {
        String::deserialize(d).map(Password::new)
    }
}

/// `skip_serializing_if` for `peers[].password`: absent, or read from a file.
pub(super) fn not_inline(p: &Option<Password>) -> bool {
    p.as_ref().is_none_or(|p| p.from_file)
}

/// The key in `file`: its content, one trailing newline (`\n` or `\r\n`)
/// stripped, 1..=80 bytes.
pub(super) fn read_file(file: &Path) -> Result<Password, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    referenced(&text).map_err(|m| format!("{}: {m}", file.display()))
}

/// The key held elsewhere (a file, a Secret's value): one trailing newline
/// (`\n` or `\r\n`) stripped, as `echo KEY > file` or
/// `kubectl create secret --from-file` leave one; 1..=80 bytes. Like a
/// file's key it is never written back by `to_yaml` (the reference is).
pub(super) fn referenced(text: &str) -> Result<Password, String> {
    let key = text
        .strip_suffix('\n')
        .map(|k| k.strip_suffix('\r').unwrap_or(k))
        .unwrap_or(text);
    check_len(key.len())?;
    Ok(Password {
        key: key.to_string(),
        from_file: true,
    })
}

/// TCP-MD5 keys have 1..=80 bytes (not characters: `é` is two).
pub(super) fn check_len(bytes: usize) -> Result<(), String> {
    if (1..=MAX_KEY_BYTES).contains(&bytes) {
        Ok(())
    } else {
        Err(format!(
            "a TCP-MD5 password has 1..={MAX_KEY_BYTES} bytes, not {bytes}"
        ))
    }
}
