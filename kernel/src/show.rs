//! `show fib` and `explain`: each wanted prefix with what it comes to in the
//! kernel and why.

use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::report::FibEntry;
use crate::resolver::{Desired, Resolver};
use crate::table::{with_backup, Current, RouteTable};
use tables::fib::FibSets;

/// Every wanted prefix, sorted (or just `prefix`, if wanted).
pub(crate) fn entries(
    table: &RouteTable,
    resolver: &Resolver,
    install: bool,
    prefix: Option<IpNet>,
) -> Vec<FibEntry> {
    match prefix {
        Some(p) => {
            let p = p.trunc();
            match table.wanted(&p) {
                Some(nhs) => vec![entry(table, resolver, install, p, nhs)],
                None => Vec::new(),
            }
        }
        None => {
            let mut v: Vec<FibEntry> = table
                .all_wanted()
                .map(|(p, nhs)| entry(table, resolver, install, p, nhs))
                .collect();
            v.sort_by_key(|a| a.prefix);
            v
        }
    }
}

fn entry(
    table: &RouteTable,
    resolver: &Resolver,
    install: bool,
    prefix: IpNet,
    sets: &FibSets,
) -> FibEntry {
    let (want, on_backup) = with_backup(sets, |nhs| resolver.desired(nhs));
    let hops = match &want {
        Desired::Install(h) => h.iter().map(|h| resolver.hop_text(&prefix, h)).collect(),
        _ => Vec::new(),
    };
    let failure = table.failure(&prefix);
    let primary = table.current(&prefix);
    let standby = table.standby(&prefix);
    // A standby with no primary is what the kernel forwards on (the
    // sweep takes it as the prefix's route when it forwards as wanted).
    let forwarding = match (primary, standby) {
        (Current::Absent, Current::Installed(_)) => standby,
        _ => primary,
    };
    let (status, mut detail) = status(
        install,
        &want,
        forwarding,
        failure.map(|(e, _)| e),
        failure.map(|(_, t)| t.map(|t| t.saturating_duration_since(Instant::now()))),
    );
    if forwarding != primary && detail.is_none() {
        detail = Some(
            "via the standby route at the next metric: the primary went with its next hop".into(),
        );
    } else if matches!(primary, Current::Installed(_))
        && matches!(standby, Current::Installed(_))
        && detail.is_none()
    {
        let backup: Vec<String> = sets.backup.iter().map(|n| n.address.to_string()).collect();
        detail = Some(format!(
            "backup route via {} pre-installed at the next metric",
            backup.join(", ")
        ));
    }
    if on_backup && detail.is_none() {
        // Truthful about what the kernel forwards on: the backup's hops.
        let why = match resolver.desired(&sets.best) {
            Desired::Unresolved(w) => w,
            _ => String::new(),
        };
        let backup: Vec<String> = sets.backup.iter().map(|n| n.address.to_string()).collect();
        detail = Some(format!(
            "via the backup path ({}): best next hops unreachable: {why}",
            backup.join(", ")
        ));
    }
    FibEntry {
        prefix,
        bgp_next_hops: sets.best.to_vec(),
        kernel_next_hops: hops,
        status,
        detail,
    }
}

/// A prefix's status and detail (see [`FibEntry::status`]) from what it
/// wants, what the kernel holds, the kernel's words on a refusal and the
/// time to its retry (None: being written now).
fn status(
    install: bool,
    want: &Desired,
    cur: Current,
    failure: Option<&str>,
    retry_in: Option<Option<Duration>>,
) -> (String, Option<String>) {
    if !install {
        let detail = match want {
            Desired::Install(_) => "next hops resolved".to_string(),
            Desired::Local => "next hop is local".to_string(),
            Desired::Unresolved(w) => format!("next hop unresolved: {w}"),
        };
        return ("install disabled".to_string(), Some(detail));
    }
    match (want, cur) {
        (_, Current::Failed) => {
            let why = failure.unwrap_or("the kernel refused the last write");
            let retry = match retry_in {
                Some(Some(d)) => format!("next retry in {:.1} s", d.as_secs_f64()),
                _ => "retrying now".to_string(),
            };
            (format!("failed: {why}"), Some(retry))
        }
        (Desired::Install(_), Current::Installed(_)) => ("installed".to_string(), None),
        (Desired::Install(_), _) => ("pending".to_string(), None),
        (Desired::Local, _) => ("next hop is local".to_string(), None),
        (Desired::Unresolved(w), _) => ("next hop unresolved".to_string(), Some(w.clone())),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tables::Numbered;

    use super::status as st;
    use super::*;

    #[test]
    fn status_says_what_the_kernel_holds_and_why() {
        let mut n: Numbered<u32> = Numbered::default();
        let id = n.acquire(&1, || Arc::new(1));
        let install = Desired::Install(Arc::from(Vec::new()));
        let unresolved = Desired::Unresolved("10.0.0.1: no route".into());
        let s = |v: &str| v.to_string();
        assert_eq!(
            st(true, &install, Current::Installed(id), None, None),
            (s("installed"), None)
        );
        assert_eq!(
            st(true, &install, Current::Unknown, None, None),
            (s("pending"), None)
        );
        assert_eq!(
            st(
                true,
                &install,
                Current::Failed,
                Some("Invalid argument (EINVAL)"),
                Some(Some(Duration::from_millis(3950)))
            ),
            (
                s("failed: Invalid argument (EINVAL)"),
                Some(s("next retry in 4.0 s"))
            )
        );
        assert_eq!(
            st(true, &unresolved, Current::Failed, None, Some(None)),
            (
                s("failed: the kernel refused the last write"),
                Some(s("retrying now"))
            ),
            "a refusal shows whatever is wanted now"
        );
        assert_eq!(
            st(true, &unresolved, Current::Absent, None, None),
            (s("next hop unresolved"), Some(s("10.0.0.1: no route")))
        );
        assert_eq!(
            st(true, &Desired::Local, Current::Absent, None, None),
            (s("next hop is local"), None)
        );
        assert_eq!(
            st(false, &unresolved, Current::Absent, None, None),
            (
                s("install disabled"),
                Some(s("next hop unresolved: 10.0.0.1: no route"))
            )
        );
        assert_eq!(
            st(false, &install, Current::Absent, None, None),
            (s("install disabled"), Some(s("next hops resolved")))
        );
    }
}
