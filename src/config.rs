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
//! checks across fields; this module reads a file through them.

use std::path::Path;

mod de;
mod error;
mod schema;
mod validate;

pub use error::ConfigError;
pub use schema::{Advertise, Api, Config, Kernel, Listen, Peer, Router};
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
    parse(&text, &file)
}

/// Parse and check config text; `file_name` is used in error messages.
pub fn parse(text: &str, file_name: &str) -> Result<Config, ConfigError> {
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
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let config: Config = serde_path_to_error::deserialize(de)
        .map_err(|e| ConfigError::from_serde(file_name, text, e))?;
    validate(&config)
        .map_err(|(path, message)| ConfigError::at(file_name, text, &path, message))?;
    Ok(config)
}
