//! The container image (`Containerfile`) and the Talos system extension
//! (`deploy/talos/`).
//!
//! * The Talos files agree with each other and with kroute: names, the
//!   binary's path in the extension's root file system, the config file's
//!   mount path and `kroute daemon -c`, the API socket's directory mounted,
//!   and the example config passes `kroute config check`.
//! * `#[ignore]`d, because the static build compiles the whole tree again
//!   (see the README for the CPU time): the static binary
//!   (`-C target-feature=+crt-static`) has no ELF interpreter, runs in an
//!   empty root (chroot, empty environment), and a daemon so started in a
//!   namespace establishes a session with BIRD and installs its route;
//!   both images build with buildah (vfs driver, `FROM scratch`) and hold
//!   what they should, the binary in them running alone as well.
//!   `cargo test --test image -- --ignored` (root, `bird2`, `buildah`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::bird::Bird;
use common::kroute::{self as k, BIN};
use common::peer::{PeerDaemon, PeerNeighbor, PeerSpec};
use common::scenarios::{KROUTE_ASN, PEER_ASN, V4};
use common::{netns, test_dir, veth, wait_until, CONVERGE};
use kroute::api::Client;
use kroute::events::SessionState;
use labkit::Spawn;
use serde_yaml_ng::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const TRIPLE: &str = "x86_64-unknown-linux-gnu";

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut at = v;
    for key in path {
        at = at
            .get(*key)
            .unwrap_or_else(|| panic!("{} missing", path.join(".")));
    }
    at.as_str()
        .unwrap_or_else(|| panic!("{} is not a string: {at:?}", path.join(".")))
}

/// The Containerfile's `COPY SRC DEST` lines.
fn copies(containerfile: &str) -> Vec<(String, String)> {
    read(containerfile)
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_string(), w.next().unwrap().to_string())
        })
        .collect()
}

/// Where the extension's service sees its root: Talos runs an
/// ExtensionService in `/usr/local/lib/containers/NAME`.
const CONTAINERS: &str = "/rootfs/usr/local/lib/containers/";

#[test]
fn the_talos_extension_files_agree_with_each_other_and_kroute() {
    let manifest = yaml("deploy/talos/manifest.yaml");
    let service = yaml("deploy/talos/kroute.yaml");
    let config = yaml("deploy/talos/kroute-config.yaml");
    assert_eq!(str_at(&manifest, &["version"]), "v1alpha1");
    let name = str_at(&manifest, &["metadata", "name"]);
    assert_eq!(name, "kroute");
    assert_eq!(
        str_at(&manifest, &["metadata", "version"]),
        env!("CARGO_PKG_VERSION")
    );
    assert!(str_at(
        &manifest,
        &["metadata", "compatibility", "talos", "version"]
    )
    .starts_with(">="));
    assert_eq!(str_at(&service, &["name"]), name);
    assert_eq!(str_at(&service, &["restart"]), "always");
    let depends = service["depends"].as_sequence().unwrap();
    assert!(
        depends
            .iter()
            .any(|d| d.get("configuration") == Some(&Value::Bool(true))),
        "waits for its ExtensionServiceConfig"
    );
    assert_eq!(
        service["container"]["security"]["writeableRootfs"],
        Value::Bool(false)
    );

    // The image puts the service definition and the binary where Talos
    // and the definition look for them.
    let copies = copies("deploy/talos/Containerfile");
    let dest = |src: &str| {
        copies
            .iter()
            .find(|(s, _)| s == src)
            .unwrap_or_else(|| panic!("the Talos Containerfile does not copy {src}"))
            .1
            .clone()
    };
    assert_eq!(dest("manifest.yaml"), "/manifest.yaml");
    assert_eq!(
        dest("kroute.yaml"),
        format!("/rootfs/usr/local/etc/containers/{name}.yaml")
    );
    let entrypoint = str_at(&service, &["container", "entrypoint"]);
    assert_eq!(dest("kroute"), format!("{CONTAINERS}{name}{entrypoint}"));

    // `kroute daemon -c FILE`, FILE being where the config document puts it.
    let args: Vec<&str> = service["container"]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(str_at(&config, &["kind"]), "ExtensionServiceConfig");
    assert_eq!(str_at(&config, &["name"]), name);
    let file = &config["configFiles"][0];
    let mount_path = str_at(file, &["mountPath"]);
    assert_eq!(args, ["daemon", "-c", mount_path]);

    // The example config is valid, and its API socket's directory and the
    // state directory are mounted from the host.
    let dir = test_dir("talos-config");
    let path = dir.path().join("kroute.yaml");
    let content = str_at(file, &["content"]);
    std::fs::write(&path, content).unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = kroute::config::parse(content, "kroute.yaml").unwrap();
    let socket_dir = cfg
        .api
        .socket
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let mounts: Vec<&str> = service["container"]["mounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| str_at(m, &["destination"]))
        .collect();
    assert!(mounts.contains(&socket_dir.as_str()), "{mounts:?}");
    assert!(mounts.contains(&"/var/lib/kroute"), "{mounts:?}");
}

/// The static build, made (or brought up to date) with cargo in the
/// tests' own target directory.
fn static_binary() -> PathBuf {
    // .../debug/kroute → the target directory.
    let target = Path::new(BIN).parent().unwrap().parent().unwrap();
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            TRIPLE,
            "-p",
            "kroute",
            "--bin",
            "kroute",
        ])
        .current_dir(ROOT)
        .env("CARGO_TARGET_DIR", target)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .status()
        .unwrap();
    assert!(status.success(), "static build failed");
    target.join(TRIPLE).join("release/kroute")
}

/// True if the ELF file has a PT_INTERP program header (a dynamic loader).
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "64-bit");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) == 3
    })
}

/// `argv` in a root holding only what `root` holds, with no environment.
fn alone(root: &Path, argv: &[&str]) -> std::process::Output {
    Command::new("/usr/sbin/chroot")
        .arg(root)
        .args(argv)
        .env_clear()
        .output()
        .unwrap()
}

#[test]
#[ignore = "static build of the whole tree: run by hand, see the README"]
fn the_static_binary_runs_alone_and_routes() {
    let bin = static_binary();
    let bytes = std::fs::read(&bin).unwrap();
    assert!(
        !has_interpreter(&bytes),
        "{} is dynamically linked",
        bin.display()
    );
    assert!(
        has_interpreter(&std::fs::read(BIN).unwrap()),
        "the check can tell"
    );

    // A root with the binary, its config and /run/kroute: nothing else.
    let root = test_dir("static-root");
    std::fs::create_dir_all(root.path().join("run/kroute")).unwrap();
    std::fs::copy(&bin, root.path().join("kroute")).unwrap();
    let out = alone(root.path(), &["/kroute", "--version"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("kroute {}", env!("CARGO_PKG_VERSION"))
    );

    let k_ns = netns("kstat");
    let b_ns = netns("bstat");
    let (k4, b4) = ("10.1.0.1", "10.1.0.2");
    let _v = veth(&k_ns, &b_ns, &[&format!("{k4}/24")], &[&format!("{b4}/24")]);
    let mut cfg = k::config(KROUTE_ASN, "10.255.0.1");
    cfg.peers.push(k::peer("bird", b4, PEER_ASN, &[V4]));
    cfg.api.socket = "/run/kroute/kroute.sock".into();
    std::fs::write(
        root.path().join("kroute.yaml"),
        labkit::kroute::to_yaml(&cfg).unwrap(),
    )
    .unwrap();
    let root_str = root.path().to_str().unwrap();
    let mut daemon = Spawn::new(
        "static-kroute",
        &[
            "/usr/sbin/chroot",
            root_str,
            "/kroute",
            "daemon",
            "-c",
            "/kroute.yaml",
        ],
    )
    .netns(&k_ns)
    .log(&root.path().join("kroute.log"))
    .start()
    .unwrap();
    let client = Client::new(root.path().join("run/kroute/kroute.sock"));
    let mut bird = Bird::start(
        &b_ns,
        PeerSpec {
            asn: PEER_ASN,
            router_id: b4.into(),
            neighbors: vec![PeerNeighbor::new(k4, b4, KROUTE_ASN, &[V4])],
            install_kernel: false,
        },
    );
    bird.announce("10.123.1.0/24");
    wait_until(CONVERGE, "session up and the route in the kernel", || {
        daemon.check_alive().map_err(|e| e.to_string())?;
        let n = client.neighbors().map_err(|e| e.to_string())?;
        let up = n.iter().any(|n| n.state == SessionState::Established);
        let routes = k_ns
            .output(&["ip", "route", "show", "10.123.1.0/24", "proto", "bgp"])
            .map_err(|e| e.to_string())?;
        let routes = String::from_utf8_lossy(&routes.stdout).to_string();
        (up && routes.contains(&format!("via {b4}")))
            .then_some(())
            .ok_or_else(|| format!("{n:?} {routes:?}\n{}", daemon.log_tail(10)))
    });
    daemon.stop(Duration::from_secs(10)).unwrap();
}

/// buildah with its own vfs storage under `dir`.
fn buildah(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("buildah")
        .arg("--storage-driver=vfs")
        .arg(format!("--root={}", dir.join("storage").display()))
        .arg(format!("--runroot={}", dir.join("run").display()))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("buildah: {e}"));
    assert!(
        out.status.success(),
        "buildah {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Build `containerfile` with `context`, mount the image's root, run
/// `check` on it, clean up.
fn with_image(
    dir: &Path,
    tag: &str,
    containerfile: &Path,
    context: &Path,
    check: impl FnOnce(&Path),
) {
    let cf = containerfile.to_str().unwrap();
    buildah(
        dir,
        &[
            "bud",
            "--isolation=chroot",
            "-f",
            cf,
            "-t",
            tag,
            context.to_str().unwrap(),
        ],
    );
    let container = buildah(dir, &["from", tag]);
    let root = PathBuf::from(buildah(dir, &["mount", &container]));
    check(&root);
    buildah(dir, &["umount", &container]);
    buildah(dir, &["rm", &container]);
}

#[test]
#[ignore = "static build of the whole tree: run by hand, see the README"]
fn both_images_build_with_buildah_from_scratch() {
    if Command::new("buildah").arg("--version").output().is_err() {
        panic!("buildah is not installed (apt-get install buildah)");
    }
    let bin = static_binary();
    let dir = test_dir("buildah");
    let version = env!("CARGO_PKG_VERSION");

    // The plain image: the binary alone at /usr/local/bin/kroute.
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(&bin, ctx.join("kroute")).unwrap();
    let tag = format!("localhost/kroute:{version}");
    with_image(
        dir.path(),
        &tag,
        &Path::new(ROOT).join("Containerfile"),
        &ctx,
        |root| {
            let mut files: Vec<String> = walk(root);
            files.sort();
            assert_eq!(files, ["usr/local/bin/kroute"]);
            let out = alone(root, &["/usr/local/bin/kroute", "--version"]);
            assert!(out.status.success(), "{out:?}");
            assert!(String::from_utf8_lossy(&out.stdout).contains(version));
        },
    );
    let config = buildah(dir.path(), &["inspect", "--type=image", &tag]);
    assert!(
        config.contains("\"/usr/local/bin/kroute\""),
        "entrypoint: {config}"
    );

    // The Talos extension: /manifest.yaml and the rootfs Talos merges.
    let ext = dir.path().join("ext");
    std::fs::create_dir_all(&ext).unwrap();
    std::fs::copy(&bin, ext.join("kroute")).unwrap();
    for f in ["manifest.yaml", "kroute.yaml"] {
        std::fs::copy(Path::new(ROOT).join("deploy/talos").join(f), ext.join(f)).unwrap();
    }
    let tag = format!("localhost/kroute-talos:{version}");
    let cf = Path::new(ROOT).join("deploy/talos/Containerfile");
    with_image(dir.path(), &tag, &cf, &ext, |root| {
        let mut files: Vec<String> = walk(root);
        files.sort();
        assert_eq!(
            files,
            [
                "manifest.yaml",
                "rootfs/usr/local/etc/containers/kroute.yaml",
                "rootfs/usr/local/lib/containers/kroute/usr/local/sbin/kroute",
            ]
        );
        let service_root = root.join("rootfs/usr/local/lib/containers/kroute");
        let out = alone(&service_root, &["/usr/local/sbin/kroute", "--version"]);
        assert!(out.status.success(), "{out:?}");
    });
}

/// Regular files under `root`, relative.
fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out
}
