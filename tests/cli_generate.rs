//! `kroute completion` and `kroute man` generate from the parser's own
//! definition; every argument a user can type has help text.

use std::process::Command;

fn kroute(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kroute"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kroute {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `shell -n` on `script` when that shell is installed; false if not.
fn syntax_ok(shell: &str, script: &str) -> Option<bool> {
    let dir = std::env::temp_dir().join(format!("kroute-completion-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(shell);
    std::fs::write(&file, script).unwrap();
    let r = Command::new(shell).arg("-n").arg(&file).output();
    let _ = std::fs::remove_dir_all(&dir);
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{shell}: {e}"),
        Ok(out) => {
            assert!(
                out.status.success(),
                "{shell} -n: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(true)
        }
    }
}

/// Every subcommand path below `cmd` ("show neighbor", "peer disable", …).
fn paths(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let path = format!("{prefix}{}", sub.get_name());
        out.push(path.clone());
        paths(sub, &format!("{path} "), out);
    }
}

#[test]
fn completion_scripts_parse_and_name_the_commands() {
    let bash = kroute(&["completion", "bash"]);
    assert_eq!(syntax_ok("bash", &bash), Some(true), "bash is needed");
    for word in [
        "neighbor",
        "status",
        "disable",
        "refresh",
        "completion",
        "lab",
    ] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    let zsh = kroute(&["completion", "zsh"]);
    assert!(zsh.starts_with("#compdef kroute"), "{}", &zsh[..80]);
    syntax_ok("zsh", &zsh);
    let fish = kroute(&["completion", "fish"]);
    assert!(fish.contains("complete -c kroute"), "{fish}");
    syntax_ok("fish", &fish);
}

#[test]
fn the_man_page_has_every_subcommand() {
    let man = kroute(&["man"]);
    assert!(man.contains(".TH kroute 1"), "not a man page");
    let mut all = Vec::new();
    paths(&kroute::cli::documented_command(), "", &mut all);
    assert!(all.len() > 20, "{all:?}");
    for path in &all {
        let heading = format!(".SH \"KROUTE {}\"", path.to_uppercase());
        assert!(man.contains(&heading), "man page lacks {heading}");
    }
    // It renders, when man is there.
    if let Ok(out) = Command::new("man")
        .args(["-l", "-"])
        .env("MANWIDTH", "100")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(man.as_bytes())?;
            child.wait_with_output()
        })
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("KROUTE PEER DISABLE"), "{text}");
    }
}

#[test]
fn every_argument_has_help_text() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(&kroute::cli::documented_command(), "kroute", &mut missing);
    assert!(missing.is_empty(), "no help text: {missing:?}");
}

#[test]
fn lab_is_listed_apart_in_help() {
    let help = kroute(&["--help"]);
    let (commands, rest) = help.split_once("Lab (").expect("a Lab section");
    assert!(!commands.contains("\n  lab "), "{help}");
    assert!(rest.contains("\n  lab "), "{help}");
    assert!(commands.contains("\n  show "), "{help}");
}
