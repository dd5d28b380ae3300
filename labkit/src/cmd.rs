//! Running helper commands (`ip`, `sysctl`, `birdc`, `vtysh`, ...) and
//! finding programs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::error::{last_lines, Error, Result};

/// How many lines of a failed command's stderr an error keeps.
const STDERR_LINES: usize = 20;

/// Run `cmd` to completion (stdin from /dev/null) and return its output,
/// whatever its exit status. `ns` only labels errors.
pub fn output_of(cmd: &mut Command, ns: Option<&str>) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            argv: describe(cmd),
            ns: ns.map(String::from),
            source,
        })
}

/// Run `cmd`; an error (with its stderr tail) unless it exits 0. Returns
/// stdout.
pub fn run_cmd(cmd: &mut Command, ns: Option<&str>) -> Result<String> {
    let out = output_of(cmd, ns)?;
    check(cmd, ns, &out)
}

/// stdout of a finished command, or the error describing its failure.
pub fn check(cmd: &Command, ns: Option<&str>, out: &Output) -> Result<String> {
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = if stderr.trim().is_empty() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        stderr.into_owned()
    };
    Err(Error::Command {
        argv: describe(cmd),
        ns: ns.map(String::from),
        status: out.status.to_string(),
        stderr: last_lines(&text, STDERR_LINES),
    })
}

/// `argv[0] argv[1..]` as a [`Command`].
pub fn command(argv: &[&str]) -> Command {
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..]);
    c
}

/// Run `argv` (not in a namespace) and return its output, whatever its
/// exit status.
pub fn output(argv: &[&str]) -> Result<Output> {
    output_of(&mut command(argv), None)
}

/// Run `argv` (not in a namespace); an error unless it exits 0. Returns
/// stdout.
pub fn run(argv: &[&str]) -> Result<String> {
    run_cmd(&mut command(argv), None)
}

/// A command line as one string, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// `name` on PATH (or the absolute path itself), also looking in the sbin
/// directories a non-login root shell may lack.
pub fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// [`find_program`], or an error naming the Debian package to install.
pub fn require_program(name: &str, debian_package: &str) -> Result<PathBuf> {
    find_program(name).ok_or_else(|| Error::Missing {
        program: name.rsplit('/').next().unwrap_or(name).to_string(),
        package: debian_package.to_string(),
    })
}

/// An error unless the effective user is root.
pub fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        Ok(())
    } else {
        Err(Error::NotRoot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_carries_the_command_and_stderr() {
        let err = run(&["sh", "-c", "echo one >&2; echo two >&2; exit 3"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sh -c"), "{text}");
        assert!(text.contains("one\ntwo"), "{text}");
        assert!(text.contains('3'), "{text}");
    }

    #[test]
    fn success_returns_stdout() {
        assert_eq!(run(&["echo", "hi"]).unwrap(), "hi\n");
    }

    #[test]
    fn missing_program_names_the_package() {
        let err = require_program("no-such-program-labkit", "some-pkg").unwrap_err();
        assert!(err.to_string().contains("apt-get install some-pkg"));
        assert!(require_program("sh", "dash").is_ok());
    }
}
