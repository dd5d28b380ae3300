//! The configuration file: YAML, camelCase keys, unknown keys rejected.
//!
//! Every error names the file, the line and column, and the key path
//! (`kroute.yaml:14:5: peers[1].allowAsIn: ...`). Errors found while
//! deserializing carry the position the YAML parser reports; errors found by
//! the checks afterwards (`validate.rs`) are placed by walking the document
//! again to the node at their key path (see `error.rs`).
//!
//! `schema.rs` holds the file's types and their defaults, `de.rs` the
//! deserializers of values with a range or a name, `validate.rs` the
//! checks across fields, `templates.rs` the expansion of peer templates
//! (before the rest, on the YAML document); this module reads a file
//! through them.

use std::path::Path;

mod de;
mod error;
mod password;
mod schema;
mod templates;
mod validate;

pub use error::ConfigError;
use error::KeyPath;
pub use password::Password;
pub use schema::{
    Advertise, Api, Bfd, BmpCollector, BmpMonitoring, Config, Domain, DomainImport, DomainRule,
    GracefulRestart, GracefulRestartOverride, GroupName, HttpListen, Kernel, LimitAction, Listen,
    ListenRange, Log, LogFormat, MaxPrefixes, Peer, PeerAsn, PodCidrSource, PodCidrs, PrefixLimit,
    Router, SecretRef, ServiceAddresses, DEFAULT_DOMAIN,
};
use validate::validate;

/// `main` for 254, else the number.
pub fn table_name(table: u32) -> String {
    match de::TABLES.iter().find(|(_, n)| *n == table) {
        Some((name, _)) => name.to_string(),
        None => table.to_string(),
    }
}

/// `bgp` for 186, else the number.
pub fn protocol_name(protocol: u8) -> String {
    match de::PROTOCOLS.iter().find(|(_, n)| *n == protocol) {
        Some((name, _)) => name.to_string(),
        None => protocol.to_string(),
    }
}

/// Line and column (1-based) of the value at key path `path` (as errors
/// print it: `spec.peers[1].name`) in YAML document `document` (0-based)
/// of `text`; the deepest existing node on the way when it is absent.
pub fn position(text: &str, document: usize, path: &str) -> Option<(usize, usize)> {
    error::locate_in_document(text, document, &KeyPath::parse(path))
}

/// Read and check the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: 0,
        column: 0,
        path: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    let config = parse(&text, &file)?;
    // The addresses these keys name come from the API.
    if let Some((i, a)) = config
        .advertise
        .iter()
        .enumerate()
        .find(|(_, a)| a.from_kubernetes())
    {
        let key = if a.pod_cidrs.is_some() {
            "podCIDRs"
        } else {
            "services"
        };
        return Err(ConfigError::at(
            &file,
            &text,
            &KeyPath::default().key("advertise").index(i).key(key),
            format!("`{key}` needs Kubernetes mode (`kroute daemon --kubernetes`): a config file has no Node or Services to read it from"),
        ));
    }
    Ok(config)
}

/// Parse and check config text; `file_name` is used in error messages.
/// A file has no Secrets: `passwordSecretRef` is an error here.
pub fn parse(text: &str, file_name: &str) -> Result<Config, ConfigError> {
    parse_with_secrets(text, file_name, None)
}

/// Looks up a `passwordSecretRef` (Kubernetes mode): the Secret's value,
/// or why there is none.
pub type SecretLookup<'a> = &'a dyn Fn(&SecretRef) -> Result<String, String>;

/// [`parse`], with `peers[].passwordSecretRef` resolved through `secrets`
/// (`None`: not allowed, as in a file).
pub fn parse_with_secrets(
    text: &str,
    file_name: &str,
    secrets: Option<SecretLookup<'_>>,
) -> Result<Config, ConfigError> {
    // Syntax first, so the errors below are all about content.
    // (Not into a `Value`: that rejects duplicate keys without a key path.)
    let doc: Option<serde::de::IgnoredAny> =
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::syntax(file_name, &e))?;
    if doc.is_none() {
        return Err(ConfigError {
            file: file_name.to_string(),
            line: 1,
            column: 1,
            path: "router".to_string(),
            message: "required key is missing (the file is empty)".to_string(),
        });
    }
    let Some(expanded) = templates::expand(text, file_name).transpose()? else {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let mut config: Config = serde_path_to_error::deserialize(de)
            .map_err(|e| ConfigError::from_serde(file_name, text, e))?;
        check(&mut config, text, file_name, secrets)?;
        return Ok(config);
    };
    // Errors are placed in the file by key path (see `templates.rs`).
    let de = serde_yaml_ng::Deserializer::from_str(&expanded.text);
    let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        expanded.place(
            ConfigError::from_serde_derived(file_name, text, e),
            text,
            None,
        )
    })?;
    check(&mut config, text, file_name, secrets)
        .map_err(|e| expanded.place(e, text, Some(&config)))?;
    Ok(config)
}

/// Passwords read and the checks across keys, for a deserialized config.
fn check(
    config: &mut Config,
    text: &str,
    file_name: &str,
    secrets: Option<SecretLookup<'_>>,
) -> Result<(), ConfigError> {
    read_password_files(config, Path::new(file_name), secrets)
        .map_err(|(path, message)| ConfigError::at(file_name, text, &path, message))?;
    validate(config).map_err(|(path, message)| ConfigError::at(file_name, text, &path, message))
}

/// Fill `password` from `passwordFile` or `passwordSecretRef` for every
/// peer that has one. A relative path is relative to the config file's
/// directory.
fn read_password_files(
    c: &mut Config,
    config_file: &Path,
    secrets: Option<SecretLookup<'_>>,
) -> Result<(), (KeyPath, String)> {
    let base = config_file.parent().unwrap_or(Path::new("."));
    // The configured peers, and the template peers of `router.listen.ranges`.
    let ranges = c.router.listen.iter_mut().flat_map(|l| l.ranges.iter_mut());
    let listed = ranges.enumerate().map(|(i, r)| {
        let at = KeyPath::default()
            .key("router")
            .key("listen")
            .key("ranges")
            .index(i)
            .key("peer");
        (at, &mut r.peer)
    });
    let configured = c
        .peers
        .iter_mut()
        .enumerate()
        .map(|(i, p)| (KeyPath::default().key("peers").index(i), p));
    for (at, peer) in configured.chain(listed) {
        if let Some(r) = &peer.password_secret_ref {
            let path = at.key("passwordSecretRef");
            if peer.password.is_some() || peer.password_file.is_some() {
                return Err((
                    path,
                    "give one of `password`, `passwordFile` or `passwordSecretRef`".to_string(),
                ));
            }
            let Some(lookup) = secrets else {
                return Err((
                    path,
                    "Secrets are read only in Kubernetes mode (kroute daemon --kubernetes); \
                     in a file use `password` or `passwordFile`"
                        .to_string(),
                ));
            };
            let value = lookup(r).map_err(|m| (path.clone(), m))?;
            let what = format!("Secret {:?} key {:?}", r.name, r.key);
            peer.password =
                Some(password::referenced(&value).map_err(|m| (path, format!("{what}: {m}")))?);
            continue;
        }
        let Some(file) = &peer.password_file else {
            continue;
        };
        let path = at.key("passwordFile");
        if peer.password.is_some() {
            return Err((
                path,
                "give `password` or `passwordFile`, not both".to_string(),
            ));
        }
        peer.password = Some(password::read_file(&base.join(file)).map_err(|m| (path, m))?);
    }
    Ok(())
}

#[cfg(test)]
mod password_tests {
    //! `password` and `passwordFile` as a config file gives them.
    use std::path::PathBuf;

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
        let c = parse(
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
        assert_eq!(parse(&yaml, conf.to_str().unwrap()).unwrap(), c);
    }

    #[test]
    fn a_missing_password_file_is_named_in_the_error() {
        let conf = dir().join("kroute.yaml");
        let e = parse(
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
        let e = parse(&peer_yaml(", password: a, passwordFile: b"), "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn the_length_is_counted_in_bytes() {
        // 41 characters, 82 bytes: too long for the kernel's 80-byte key.
        let long = "é".repeat(41);
        let e = parse(&peer_yaml(&format!(", password: {long}")), "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("1..=80 bytes, not 82"), "{e}");
        let ok = "é".repeat(40);
        assert!(parse(&peer_yaml(&format!(", password: {ok}")), "t.yaml").is_ok());
        let empty_file = dir().join("empty.key");
        std::fs::write(&empty_file, "\n").unwrap();
        let e = parse(
            &peer_yaml(&format!(", passwordFile: {}", empty_file.display())),
            "t.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not 0"), "{e}");
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let c = parse(&peer_yaml(", password: s3cret"), "t.yaml").unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}

#[cfg(test)]
mod enforce_first_as_tests {
    #[test]
    fn enforce_first_as_defaults_on_and_is_printed_only_when_off() {
        let text = "router: { asn: 65001, routerId: 10.0.0.1 }\n\
                    peers:\n  - { name: a, address: 10.0.0.2, asn: 65002 }\n  \
                    - { name: rs, address: 10.0.0.3, asn: 65003, enforceFirstAs: false }\n";
        let c = super::parse(text, "t.yaml").unwrap();
        assert!(c.peers[0].enforce_first_as);
        assert!(!c.peers[1].enforce_first_as);
        let printed = c.to_yaml();
        assert_eq!(printed.matches("enforceFirstAs").count(), 1, "{printed}");
        assert!(printed.contains("enforceFirstAs: false"), "{printed}");
        assert_eq!(super::parse(&printed, "t.yaml").unwrap(), c);
    }
}
