//! What every check returns, and the one rule for names in the config
//! (peers, templates, policies, domains); shared by the validation
//! modules, so none of them imports another.

use super::super::error::KeyPath;

/// The key at fault and what is wrong with it.
pub(super) type Invalid = (KeyPath, String);

/// A name (of a peer, template, policy, domain): not empty, letters,
/// digits, `_`, `.` and `-` only.
pub(crate) fn check_name(path: &KeyPath, what: &str, name: &str) -> Result<(), Invalid> {
    if name.is_empty() {
        return Err((path.clone(), format!("{what} name must not be empty")));
    }
    if let Some(bad) = name
        .chars()
        .find(|ch| !(ch.is_ascii_alphanumeric() || "_.-".contains(*ch)))
    {
        return Err((
            path.clone(),
            format!("{what} name {name:?} contains {bad:?} (allowed: letters, digits, _ . -)"),
        ));
    }
    Ok(())
}
