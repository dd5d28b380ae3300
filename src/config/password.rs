//! TCP-MD5 passwords (RFC 2385): given inline (`password`) or read from a
//! file (`passwordFile`) at load and at every reload. A [`Password`] never
//! shows its key in `Debug` output, so logging a config or socket options
//! cannot leak it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::KeyPath;
use super::schema::Config;

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

    /// Read from `passwordFile` (so `to_yaml` writes the file name, not the key).
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

/// Fill `password` from `passwordFile` for every peer that has one. A
/// relative path is relative to the config file's directory. The file's
/// content is the key, one trailing newline (`\n` or `\r\n`) stripped.
pub(super) fn read_password_files(
    c: &mut Config,
    config_file: &Path,
) -> Result<(), (KeyPath, String)> {
    let base = config_file.parent().unwrap_or(Path::new("."));
    for (i, peer) in c.peers.iter_mut().enumerate() {
        let Some(file) = &peer.password_file else {
            continue;
        };
        let path = KeyPath::default().key("peers").index(i).key("passwordFile");
        if peer.password.is_some() {
            return Err((
                path,
                "give `password` or `passwordFile`, not both".to_string(),
            ));
        }
        let full: PathBuf = base.join(file);
        let text = std::fs::read_to_string(&full)
            .map_err(|e| (path.clone(), format!("cannot read {}: {e}", full.display())))?;
        let key = text
            .strip_suffix('\n')
            .map(|k| k.strip_suffix('\r').unwrap_or(k))
            .unwrap_or(&text);
        check_len(key.len()).map_err(|m| (path.clone(), format!("{}: {m}", full.display())))?;
        peer.password = Some(Password {
            key: key.to_string(),
            from_file: true,
        });
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn peer_yaml(extra: &str) -> String {
        format!(
            "router: {{ asn: 65000, routerId: 10.0.0.1 }}\n\
             peers:\n  - {{ name: tor, address: 192.0.2.1, asn: 65001{extra} }}\n"
        )
    }

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("kroute-pw-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn password_file_is_read_relative_to_the_config_newline_stripped() {
        let d = dir();
        std::fs::write(d.join("tor.key"), "s3cret\n").unwrap();
        let conf = d.join("kroute.yaml");
        let c = crate::config::parse(
            &peer_yaml(", passwordFile: tor.key"),
            conf.to_str().unwrap(),
        )
        .unwrap();
        let pw = c.peers[0].password.as_ref().unwrap();
        assert_eq!(pw.as_bytes(), b"s3cret");
        assert!(pw.from_file());
        // The canonical form names the file, not the key, and reads back
        // to the same config.
        let yaml = c.to_yaml();
        assert!(!yaml.contains("s3cret"), "{yaml}");
        assert!(yaml.contains("passwordFile: tor.key"), "{yaml}");
        assert_eq!(
            crate::config::parse(&yaml, conf.to_str().unwrap()).unwrap(),
            c
        );
    }

    #[test]
    fn a_missing_password_file_is_named_in_the_error() {
        let conf = dir().join("kroute.yaml");
        let e = crate::config::parse(
            &peer_yaml(", passwordFile: /nonexistent/tor.key"),
            conf.to_str().unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("peers[0].passwordFile") && e.contains("cannot read /nonexistent/tor.key"),
            "{e}"
        );
    }

    #[test]
    fn password_and_password_file_exclude_each_other() {
        let e = crate::config::parse(&peer_yaml(", password: a, passwordFile: b"), "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn the_length_is_counted_in_bytes() {
        // 41 characters, 82 bytes: too long for the kernel's 80-byte key.
        let long = "é".repeat(41);
        let e = crate::config::parse(&peer_yaml(&format!(", password: {long}")), "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("1..=80 bytes, not 82"), "{e}");
        let ok = "é".repeat(40);
        assert!(crate::config::parse(&peer_yaml(&format!(", password: {ok}")), "t.yaml").is_ok());
        let empty_file = dir().join("empty.key");
        std::fs::write(&empty_file, "\n").unwrap();
        let e = crate::config::parse(
            &peer_yaml(&format!(", passwordFile: {}", empty_file.display())),
            "t.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not 0"), "{e}");
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let c = crate::config::parse(&peer_yaml(", password: s3cret"), "t.yaml").unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
