//! `log: { format: json|text }` in the config: the daemon logs JSON when
//! the config says so, the `--log-format` flag wins over it, a bad value
//! is refused with its file:line:column and key, and a reload that changes
//! it says that it needs a restart instead of ignoring it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{netns, test_dir, wait_until};
use kroute::config::{Config, LogFormat, Router};
use labkit::Spawn;

const BIN: &str = env!("CARGO_BIN_EXE_kroute");

fn config(socket: &std::path::Path, format: LogFormat) -> Config {
    let mut c = Config::new(Router {
        listen: None,
        ..Router::new(65000, "10.0.0.1".parse().unwrap())
    });
    c.kernel.install = false;
    c.api.socket = socket.to_path_buf();
    c.log.format = format;
    c
}

fn is_json(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v["level"].is_string())
}

/// Starts the daemon on `format` in the config and `extra` arguments,
/// runs `while_up` once its API answers, stops it; returns its log.
fn run(
    tag: &str,
    format: LogFormat,
    extra: &[&str],
    while_up: impl FnOnce(&Path, &Path),
) -> String {
    let ns = netns(tag);
    let dir = test_dir(tag);
    let (conf, log, sock) = (
        dir.file("kroute.yaml"),
        dir.file("kroute.log"),
        dir.file("kroute.sock"),
    );
    std::fs::write(
        &conf,
        labkit::kroute::to_yaml(&config(&sock, format)).unwrap(),
    )
    .unwrap();
    let mut argv = vec![BIN, "daemon", "-c", conf.to_str().unwrap()];
    argv.extend_from_slice(extra);
    let mut p = Spawn::new("kroute", &argv)
        .netns(&ns)
        .env("RUST_LOG", "info")
        .log(&log)
        .start()
        .unwrap();
    let client = kroute::api::Client::new(&sock);
    wait_until(Duration::from_secs(20), "the API answers", || {
        client.neighbors().map_err(|e| e.to_string())
    });
    while_up(&conf, &sock);
    p.stop(Duration::from_secs(10)).unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.trim().is_empty(), "the daemon logged nothing");
    text
}

#[test]
fn the_configs_log_format_is_used_and_the_flag_wins() {
    let reload_said = std::cell::RefCell::new(String::new());
    let log = run("logcfgj", LogFormat::Json, &[], |conf, sock| {
        // Changing it takes a restart, and the reload says so.
        std::fs::write(
            conf,
            labkit::kroute::to_yaml(&config(sock, LogFormat::Text)).unwrap(),
        )
        .unwrap();
        let out = std::process::Command::new(BIN)
            .args(["--socket", sock.to_str().unwrap(), "reload"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        *reload_said.borrow_mut() = String::from_utf8_lossy(&out.stderr).to_string();
    });
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.iter().all(|l| is_json(l)), "{log}");
    assert!(
        reload_said.borrow().contains("log changes need a restart"),
        "{}",
        reload_said.borrow()
    );

    let log = run(
        "logcfgt",
        LogFormat::Json,
        &["--log-format", "text"],
        |_, _| {},
    );
    assert!(!log.lines().any(is_json), "{log}");
    assert!(log.contains("INFO"), "{log}");

    let log = run(
        "logcfgf",
        LogFormat::Text,
        &["--log-format", "json"],
        |_, _| {},
    );
    assert!(
        log.lines().filter(|l| !l.trim().is_empty()).all(is_json),
        "{log}"
    );
}

#[test]
fn a_bad_log_format_is_refused_with_its_place() {
    let dir = test_dir("logcfgbad");
    let path = dir.file("kroute.yaml");
    std::fs::write(
        &path,
        "router: { asn: 65001, routerId: 10.0.0.1 }\nlog:\n  format: xml\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "kroute.yaml:3:11: log.format: unknown value \"xml\" (expected one of: text, json)"
        ),
        "{stderr}"
    );
}
