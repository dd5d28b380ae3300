//! The one error type of the lab kit. Every variant says what was being
//! done (the command, the namespace, the daemon) and carries what helps
//! most when it fails (stderr, the tail of a log, the last state seen).
//! Callers pick their style: tests `.expect()`, `kroute lab` uses `?`.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("must run as root (network namespaces, port 179)")]
    NotRoot,

    #[error(
        "{program} not found; install the Debian package {package} (apt-get install {package})"
    )]
    Missing { program: String, package: String },

    /// A command could not be started at all.
    #[error("cannot run `{argv}`{}: {source}", in_ns(.ns))]
    Spawn {
        argv: String,
        ns: Option<String>,
        source: std::io::Error,
    },

    /// A command ran and failed.
    #[error("`{argv}`{} failed ({status}): {stderr}", in_ns(.ns))]
    Command {
        argv: String,
        ns: Option<String>,
        status: String,
        /// The last lines of its stderr (or stdout, when stderr is empty).
        stderr: String,
    },

    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },

    #[error("timed out after {after:?} waiting for {what}; last seen: {last}")]
    Timeout {
        what: String,
        after: Duration,
        last: String,
    },

    /// A daemon we started is gone.
    #[error("{name} (pid {pid}) exited{}:\n{log_tail}", in_ns(.ns))]
    Exited {
        name: String,
        pid: u32,
        ns: Option<String>,
        log_tail: String,
    },

    /// A daemon answered with something we cannot read.
    #[error("{what}: cannot parse its answer ({detail}): {text}")]
    Parse {
        what: String,
        detail: String,
        text: String,
    },

    #[error("{0}")]
    Other(String),
}

fn in_ns(ns: &Option<String>) -> String {
    match ns {
        Some(ns) => format!(" in namespace {ns}"),
        None => String::new(),
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// `map_err` helper for I/O: `.map_err(io("write bird.conf"))`.
pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// The last `n` lines of a text.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
