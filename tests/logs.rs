//! The daemon's log as an operator's log collector sees it: stderr to a
//! file (not a terminal) carries no ANSI escape codes, and
//! `--log-format json` writes one JSON object per line.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{netns, test_dir, wait_until};
use kroute::config::{Config, Router};
use labkit::Spawn;

const BIN: &str = env!("CARGO_BIN_EXE_kroute");

/// A daemon that needs nothing around it: no listener, no kernel writes.
fn quiet_config(socket: &Path) -> Config {
    let mut c = Config::new(Router {
        listen: None,
        ..Router::new(65000, "10.0.0.1".parse().unwrap())
    });
    c.kernel.install = false;
    c.api.socket = socket.to_path_buf();
    c
}

/// Runs the daemon with `extra` arguments until it has logged its start
/// and answered the API, stops it, and returns its log.
fn daemon_log(tag: &str, extra: &[&str]) -> String {
    let ns = netns(tag);
    let dir = test_dir(tag);
    let (conf, log, sock) = (
        dir.file("kroute.yaml"),
        dir.file("kroute.log"),
        dir.file("kroute.sock"),
    );
    let yaml = labkit::kroute::to_yaml(&quiet_config(&sock)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&conf, yaml).unwrap();
    let mut argv = vec![BIN, "daemon", "-c", conf.to_str().unwrap()];
    argv.extend_from_slice(extra);
    let mut p = Spawn::new("kroute", &argv)
        .netns(&ns)
        .env("RUST_LOG", "info")
        .log(&log)
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let client = kroute::api::Client::new(sock);
    wait_until(Duration::from_secs(20), "the API answers", || {
        client.neighbors().map_err(|e| e.to_string())
    });
    let status = p
        .stop(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "clean exit on SIGTERM: {status:?}\n{text}"
    );
    assert!(!text.trim().is_empty(), "the daemon logged nothing");
    text
}

#[test]
fn text_logs_to_a_file_carry_no_colour_codes() {
    let log = daemon_log("logtext", &[]);
    assert!(!log.contains('\u{1b}'), "escape codes in a file:\n{log:?}");
    assert!(log.contains("INFO"), "{log}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let log = daemon_log("logjson", &["--log-format", "json"]);
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "no level: {line}");
        assert!(v["timestamp"].is_string(), "no timestamp: {line}");
        assert!(v["fields"].is_object(), "no fields: {line}");
    }
}
