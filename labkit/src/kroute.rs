//! kroute itself: `kroute daemon -c FILE` inside a namespace, its CLI
//! against the API socket. The config is YAML text, or any
//! `serde::Serialize` value (callers pass the real `kroute::config::Config`;
//! this crate cannot name it, kroute depends on it).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::time::Duration;

use serde_json::Value;

use crate::cmd;
use crate::error::{io, Error, Result};
use crate::netns::Netns;
use crate::process::{ProcId, Process, Spawn};

/// How long kroute may take until its API answers.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A config as kroute's YAML.
pub fn to_yaml(config: &impl serde::Serialize) -> Result<String> {
    serde_yaml_ng::to_string(config)
        .map_err(|e| Error::Other(format!("kroute config as YAML: {e}")))
}

/// What to start.
#[derive(Debug, Clone)]
pub struct KrouteSpec {
    /// The kroute binary.
    pub bin: PathBuf,
    /// The config file (written by [`Kroute::start`]).
    pub config_path: PathBuf,
    /// The config's YAML.
    pub config: String,
    /// The API socket the config names (`api.socket`): readiness is this
    /// socket answering.
    pub socket: PathBuf,
    /// stdout and stderr, appended over restarts.
    pub log: PathBuf,
    pub envs: Vec<(String, String)>,
    /// Its own session, to outlive this program once [`Kroute::detach`]ed.
    pub detached: bool,
    /// Its own process group (a Ctrl-C reaches only us).
    pub own_process_group: bool,
}

impl KrouteSpec {
    /// Config, socket and log as `kroute.yaml`, `kroute.sock`, `kroute.log`
    /// in `dir`; `RUST_LOG=info`.
    pub fn in_dir(bin: &Path, dir: &Path, config: String) -> KrouteSpec {
        KrouteSpec {
            bin: bin.to_path_buf(),
            config_path: dir.join("kroute.yaml"),
            config,
            socket: dir.join("kroute.sock"),
            log: dir.join("kroute.log"),
            envs: vec![("RUST_LOG".into(), "info".into())],
            detached: false,
            own_process_group: false,
        }
    }
}

/// A kroute daemon (running or stopped: it can be started again).
#[derive(Debug)]
pub struct Kroute {
    spec: KrouteSpec,
    ns: String,
    process: Option<Process>,
}

impl Kroute {
    /// Write the config and start kroute in `ns`; returns once its API
    /// answers.
    pub fn start(ns: &Netns, spec: KrouteSpec) -> Result<Kroute> {
        if !spec.bin.is_file() {
            return Err(Error::Other(format!(
                "no kroute binary at {} (cargo build -p kroute)",
                spec.bin.display()
            )));
        }
        let mut k = Kroute {
            spec,
            ns: ns.name().to_string(),
            process: None,
        };
        k.write_config()?;
        k.spawn(ns)?;
        Ok(k)
    }

    /// Run `kroute daemon` (the config file is written already).
    fn spawn(&mut self, ns: &Netns) -> Result<()> {
        let _ = std::fs::remove_file(&self.spec.socket);
        let bin = self.spec.bin.to_string_lossy().into_owned();
        let conf = self.spec.config_path.to_string_lossy().into_owned();
        let mut spawn = Spawn::new("kroute", &[&bin, "daemon", "-c", &conf])
            .netns(ns)
            .log(&self.spec.log)
            .append_log();
        for (k, v) in &self.spec.envs {
            spawn = spawn.env(k, v);
        }
        if self.spec.detached {
            spawn = spawn.detached();
        } else if self.spec.own_process_group {
            spawn = spawn.own_process_group();
        }
        let mut p = spawn.start()?;
        let (bin, socket) = (self.spec.bin.clone(), self.spec.socket.clone());
        p.wait_ready("kroute's API socket", START_TIMEOUT, || {
            cli_run(&bin, &socket, &["show", "neighbors", "-o", "json"])
        })?;
        self.process = Some(p);
        Ok(())
    }

    pub fn spec(&self) -> &KrouteSpec {
        &self.spec
    }

    pub fn socket(&self) -> &Path {
        &self.spec.socket
    }

    pub fn config_path(&self) -> &Path {
        &self.spec.config_path
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Replace the config text (written to the file now; takes effect on
    /// [`Kroute::reload`] or the next start).
    pub fn set_config(&mut self, yaml: String) -> Result<()> {
        self.spec.config = yaml;
        self.write_config()
    }

    /// [`Kroute::set_config`] with a serializable config.
    pub fn set_config_value(&mut self, config: &impl serde::Serialize) -> Result<()> {
        self.set_config(to_yaml(config)?)
    }

    fn write_config(&self) -> Result<()> {
        let p = &self.spec.config_path;
        std::fs::write(p, &self.spec.config).map_err(io(format!("write {}", p.display())))
    }

    /// The process while it runs.
    pub fn process(&mut self) -> Option<&mut Process> {
        self.process.as_mut()
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Process::pid)
    }

    /// An error (with the log tail) unless it runs.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.process.as_mut() {
            Some(p) => p.check_alive(),
            None => Err(Error::Other("kroute is not running".into())),
        }
    }

    /// SIGTERM (kroute cleans up), SIGKILL after `grace`; how it ended.
    pub fn stop(&mut self, grace: Duration) -> Result<Option<ExitStatus>> {
        match self.process.take() {
            Some(mut p) => p.stop(grace),
            None => Ok(None),
        }
    }

    /// SIGKILL: a crash (no NOTIFICATION, no kernel cleanup).
    pub fn kill(&mut self) -> Result<Option<ExitStatus>> {
        match self.process.take() {
            Some(mut p) => p.kill(),
            None => Ok(None),
        }
    }

    /// Start again (after stop or kill) with the current config.
    pub fn start_again(&mut self) -> Result<()> {
        if self.process.is_some() {
            return Err(Error::Other("kroute is still running".into()));
        }
        self.write_config()?;
        let ns = Netns::open(&self.ns)?;
        self.spawn(&ns)
    }

    /// Stop (grace 10 s), then start with the current config.
    pub fn restart(&mut self) -> Result<()> {
        self.stop(Duration::from_secs(10))?;
        self.start_again()
    }

    /// Write the current config and ask the daemon to reload it.
    pub fn reload(&self) -> Result<()> {
        self.write_config()?;
        self.cli(&["reload"]).map(|_| ())
    }

    /// The CLI against this daemon's socket; output whatever its status.
    pub fn cli_output(&self, args: &[&str]) -> Result<Output> {
        cmd::output_of(
            &mut cli_command(&self.spec.bin, &self.spec.socket, args),
            None,
        )
    }

    /// The CLI; an error unless it exits 0; stdout.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        cli_run(&self.spec.bin, &self.spec.socket, args)
    }

    /// `ARGS -o json`, parsed.
    pub fn cli_json(&self, args: &[&str]) -> Result<Value> {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let text = self.cli(&a)?;
        serde_json::from_str(&text).map_err(|e| Error::Parse {
            what: format!("kroute {}", a.join(" ")),
            detail: e.to_string(),
            text,
        })
    }

    pub fn log_tail(&self, n: usize) -> String {
        format!(
            "----- kroute: {} (last {n} lines) -----\n{}\n",
            self.spec.log.display(),
            crate::process::tail(&self.spec.log, n)
        )
    }

    /// Keep it running after this value is gone.
    pub fn detach(mut self) -> Option<ProcId> {
        self.process.take().map(Process::detach)
    }
}

fn cli_command(bin: &Path, socket: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.arg("--socket").arg(socket).args(args);
    c
}

/// `kroute --socket SOCKET ARGS...` for a daemon started elsewhere; stdout.
pub fn cli_run(bin: &Path, socket: &Path, args: &[&str]) -> Result<String> {
    cmd::run_cmd(&mut cli_command(bin, socket, args), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Router {
        asn: u32,
        router_id: String,
    }

    #[derive(serde::Serialize)]
    struct Cfg {
        router: Router,
        peers: Vec<String>,
    }

    #[test]
    fn serializable_config_becomes_yaml() {
        let y = to_yaml(&Cfg {
            router: Router {
                asn: 65001,
                router_id: "10.0.0.1".into(),
            },
            peers: vec![],
        })
        .unwrap();
        assert_eq!(
            y,
            "router:\n  asn: 65001\n  routerId: 10.0.0.1\npeers: []\n"
        );
    }

    #[test]
    fn spec_in_dir() {
        let s = KrouteSpec::in_dir(
            Path::new("/bin/kroute"),
            Path::new("/tmp/x"),
            "a: 1\n".into(),
        );
        assert_eq!(s.socket, Path::new("/tmp/x/kroute.sock"));
        assert_eq!(s.config_path, Path::new("/tmp/x/kroute.yaml"));
        assert!(!s.detached);
    }
}
