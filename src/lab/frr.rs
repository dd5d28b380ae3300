//! The upstream routers: FRR (zebra + bgpd), one instance per router
//! namespace with pathspace `-N NS`. FRR keeps sockets, pid files, config
//! and logs in `/var/run/frr/NS/` (owned by frr:frr: the daemons drop
//! privileges). zebra installs the learned routes in the router
//! namespace's kernel, so traffic through the router is forwarded.
//! `vtysh -N NS` talks to an instance.

use std::ffi::CString;
use std::path::Path;
use std::time::Duration;

use super::procs::{self, ProcRecord, State};
use super::topology::{Router, Topology};
use super::{io_err, LabError, Result};

pub const ZEBRA: &str = "/usr/lib/frr/zebra";
pub const BGPD: &str = "/usr/lib/frr/bgpd";

/// bgpd.conf for router `r`.
pub fn render(t: &Topology, r: &Router) -> String {
    let mut c = String::new();
    c += "frr defaults traditional\n";
    c += &format!("hostname {}\n", r.ns);
    c += "!\n";
    c += &format!("router bgp {}\n", r.asn);
    c += &format!(" bgp router-id {}\n", r.router_id);
    c += " no bgp ebgp-requires-policy\n";
    c += " no bgp default ipv4-unicast\n";
    // A stopped router's routes must go at once, not linger as stale.
    c += " bgp graceful-restart-disable\n";
    c += " timers bgp 3 9\n";
    for n in &r.neighbors {
        c += &format!(" neighbor {} remote-as {}\n", n.address, n.asn);
        c += &format!(" neighbor {} description {}\n", n.address, n.name);
        c += &format!(" neighbor {} timers connect 2\n", n.address);
        c += &format!(" neighbor {} advertisement-interval 0\n", n.address);
        c += &format!(" neighbor {} update-source {}\n", n.address, r.lan_v6);
    }
    for afi in ["ipv4", "ipv6"] {
        c += &format!(" address-family {afi} unicast\n");
        for n in &r.neighbors {
            c += &format!("  neighbor {} activate\n", n.address);
            let to_node = t.node(&n.name).is_some();
            if to_node && r.next_hop_self {
                c += &format!("  neighbor {} next-hop-self force\n", n.address);
            }
        }
        c += " exit-address-family\n";
    }
    c += "!\n";
    c
}

fn frr_ids() -> Result<(libc::uid_t, libc::gid_t)> {
    let name = CString::new("frr").map_err(|e| LabError::Other(e.to_string()))?;
    // SAFETY: getpwnam returns NULL or a pointer to a static passwd entry,
    // read at once before any other call that could overwrite it.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(LabError::Missing {
            program: "user frr".into(),
            package: "frr",
        });
    }
    // SAFETY: pw is non-null, see above.
    Ok(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn chown(path: &Path, uid: libc::uid_t, gid: libc::gid_t) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(io_err(format!("chown frr {}", path.display())))
}

/// Write router `i`'s files and start zebra and bgpd.
pub fn start(state: &mut State, i: usize) -> Result<()> {
    let r = state.topology.routers[i].clone();
    let (uid, gid) = frr_ids()?;
    let parent = r.run_dir.parent().unwrap_or(Path::new("/var/run/frr"));
    if !parent.exists() {
        std::fs::create_dir_all(parent).map_err(io_err(format!("create {}", parent.display())))?;
        chown(parent, uid, gid)?;
    }
    state.add_run_dir(&r.run_dir)?;
    let _ = std::fs::remove_dir_all(&r.run_dir);
    std::fs::create_dir_all(&r.run_dir)
        .map_err(io_err(format!("create {}", r.run_dir.display())))?;
    let files = [
        ("bgpd.conf", render(&state.topology, &r)),
        ("zebra.conf", format!("hostname {}\n", r.ns)),
    ];
    for (name, text) in files {
        let p = r.run_dir.join(name);
        std::fs::write(&p, text).map_err(io_err(format!("write {}", p.display())))?;
        chown(&p, uid, gid)?;
    }
    chown(&r.run_dir, uid, gid)?;
    for daemon in ["zebra", "bgpd"] {
        start_daemon(state, &r, daemon)?;
    }
    Ok(())
}

/// FRR daemons fork (`-d`); the PID comes from the pid file.
fn start_daemon(state: &mut State, r: &Router, daemon: &str) -> Result<()> {
    let bin = format!("/usr/lib/frr/{daemon}");
    let dir = &r.run_dir;
    let pidfile = dir.join(format!("{daemon}.pid"));
    let log = dir.join(format!("{daemon}.log"));
    let conf = dir.join(format!("{daemon}.conf"));
    let argv = [
        bin.as_str(),
        "-N",
        &r.ns,
        "-d",
        "-F",
        "traditional",
        "-f",
        &conf.to_string_lossy(),
        "-i",
        &pidfile.to_string_lossy(),
        "--log",
        &format!("file:{}", log.display()),
    ]
    .map(|s| s.to_string());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut full = vec!["ip", "netns", "exec", &r.ns];
    full.extend_from_slice(&argv);
    super::netns::run(&full)?;
    let pid = procs::wait_for(
        Duration::from_secs(10),
        &format!("{daemon}'s pid file"),
        || {
            std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .ok_or_else(|| format!("{} missing\n{}", pidfile.display(), procs::tail(&log, 10)))
        },
    )?;
    let start_time = procs::start_time(pid).ok_or_else(|| {
        LabError::Other(format!(
            "{daemon} of {} exited:\n{}",
            r.name,
            procs::tail(&log, 20)
        ))
    })?;
    state.add_process(ProcRecord {
        name: daemon.into(),
        owner: r.name.clone(),
        ns: r.ns.clone(),
        pid,
        start_time,
        log,
    })
}
