//! FRR: zebra (owns the kernel; batches its netlink writes through its
//! dataplane thread) and bgpd, one instance per namespace with `-N NAME`
//! (see shared/INTEROP-NOTES.md). Both run in the foreground so the PIDs we
//! start are the daemons'. Their files live in /var/run/frr/NAME, owned by
//! frr:frr, because the daemons drop privileges to `frr`.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{check, query, Ctx, Receiver, RECEIVER_ASN, SENDER_ASN};
use crate::netns::{Proc, TempDir, RECEIVER_V4, SENDER_V4};

pub struct Frr {
    // Field order is drop order: bgpd first, then zebra, then the directory.
    bgpd: Proc,
    zebra: Proc,
    name: String,
    dir: TempDir,
}

pub fn config(name: &str) -> String {
    format!(
        r#"frr defaults traditional
hostname {name}
!
router bgp {RECEIVER_ASN}
 bgp router-id {RECEIVER_V4}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {SENDER_V4} remote-as {SENDER_ASN}
 neighbor {SENDER_V4} passive
 neighbor {SENDER_V4} timers connect 1
 !
 address-family ipv4 unicast
  neighbor {SENDER_V4} activate
 exit-address-family
 !
 address-family ipv6 unicast
  neighbor {SENDER_V4} activate
 exit-address-family
!
"#
    )
}

fn chown_frr(path: &Path) -> io::Result<()> {
    let user = CString::new("frr").expect("no NUL");
    // SAFETY: getpwnam returns a pointer into static storage or NULL; we
    // read two integers from it immediately.
    let (uid, gid) = unsafe {
        let pw = libc::getpwnam(user.as_ptr());
        if pw.is_null() {
            return Err(io::Error::other("no user `frr`: is FRR installed?"));
        }
        ((*pw).pw_uid, (*pw).pw_gid)
    };
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

fn wait_for(path: &Path, what: &str, proc: &mut Proc) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        if let Some(st) = proc.exited() {
            return Err(io::Error::other(format!("{what} exited ({st})")));
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "{what} did not create {}",
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

impl Frr {
    pub fn start(ctx: &Ctx) -> io::Result<Frr> {
        let name = ctx.ns.name.clone();
        let base = Path::new("/var/run/frr");
        std::fs::create_dir_all(base)?;
        chown_frr(base)?;
        let dir = TempDir::create(base.join(&name))?;
        chown_frr(&dir.path)?;
        let conf = dir.path.join("frr.conf");
        std::fs::write(&conf, config(&name))?;
        chown_frr(&conf)?;
        let daemon = |prog: &str, extra: &[&str]| -> io::Result<Command> {
            let mut c = ctx.ns.command(format!("/usr/lib/frr/{prog}"))?;
            c.args(["-N", &name, "-F", "traditional", "-A", "127.0.0.1"])
                .arg("-f")
                .arg(&conf)
                .arg("-i")
                .arg(dir.path.join(format!("{prog}.pid")))
                .arg("--log")
                .arg(format!(
                    "file:{}",
                    dir.path.join(format!("{prog}.log")).display()
                ))
                .args(extra);
            Ok(c)
        };
        // -s: the netlink receive buffer Debian's /etc/frr/daemons sets.
        let mut zebra = Proc::spawn(
            "zebra",
            &mut daemon("zebra", &["-s", "90000000"])?,
            &ctx.dir.join("zebra.out"),
        )?;
        wait_for(&dir.path.join("zserv.api"), "zebra", &mut zebra)?;
        let mut bgpd = Proc::spawn("bgpd", &mut daemon("bgpd", &[])?, &ctx.dir.join("bgpd.out"))?;
        wait_for(&dir.path.join("bgpd.vty"), "bgpd", &mut bgpd)?;
        Ok(Frr {
            bgpd,
            zebra,
            name,
            dir,
        })
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.path.clone()
    }
}

/// Sum of `pfxRcd` over the address families of `show bgp summary json`.
pub fn parse_pfx_rcd(v: &Value) -> Option<u64> {
    let obj = v.as_object()?;
    let mut total = 0;
    let mut any = false;
    for af in obj.values() {
        let Some(peers) = af.get("peers").and_then(Value::as_object) else {
            continue;
        };
        for p in peers.values() {
            any = true;
            total += p.get("pfxRcd").and_then(Value::as_u64).unwrap_or(0);
        }
    }
    any.then_some(total)
}

impl Receiver for Frr {
    fn pids(&self) -> Vec<i32> {
        vec![self.zebra.pid(), self.bgpd.pid()]
    }

    fn rib_count(&self) -> Option<u64> {
        let out =
            query(Command::new("vtysh").args(["-N", &self.name, "-c", "show bgp summary json"]))?;
        let v: Value = serde_json::from_str(&out).ok()?;
        parse_pfx_rcd(&v).or(Some(0))
    }

    fn check_alive(&mut self) -> Result<(), String> {
        check(&mut [&mut self.zebra, &mut self.bgpd])
    }

    fn logs(&self) -> String {
        format!("{}/{{zebra,bgpd}}.log", self.log_dir().display())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pfx_rcd() {
        let v = serde_json::json!({
            "ipv4Unicast": {"peers": {"10.255.255.1": {"pfxRcd": 8000, "state": "Established"}}},
            "ipv6Unicast": {"peers": {"10.255.255.1": {"pfxRcd": 2000}}}
        });
        assert_eq!(super::parse_pfx_rcd(&v), Some(10_000));
        assert_eq!(super::parse_pfx_rcd(&serde_json::json!({})), None);
    }
}
