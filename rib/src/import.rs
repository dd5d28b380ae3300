//! Import: the checks a received path passes before it may be used, each
//! with a reason kept for `explain`, then the peer's import policy chain.

use std::borrow::Cow;
use std::sync::Arc;

use wire::Prefix;

use crate::attrs::{Attrs, PathInfo};
use crate::ctx::{Ctx, Interners};
use crate::policy::{PolicyChain, Subject};
use crate::PeerId;

/// What import made of one path.
pub(crate) struct Imported {
    pub info: Arc<PathInfo>,
    /// The verdict may differ for another prefix with the same attributes.
    pub used_prefix: bool,
}

/// Runs the import checks and policy for the path `pre` of `prefix` from
/// `peer_id`, interning the result.
pub(crate) fn import_path(
    ctx: &Ctx<'_>,
    ints: &mut Interners,
    peer_id: PeerId,
    pre: &Arc<Attrs>,
    prefix: &Prefix,
) -> Imported {
    let (post, rejected, used_prefix) = match judge(ctx, peer_id, pre, prefix) {
        Judged::Rejected(reason, used) => (pre.clone(), Some(Arc::<str>::from(reason)), used),
        Judged::Accepted(Cow::Borrowed(_), used) => (pre.clone(), None, used),
        Judged::Accepted(Cow::Owned(a), used) => (
            ints.attrs.intern(Attrs {
                next_hop: pre.next_hop,
                attrs: a,
            }),
            None,
            used,
        ),
    };
    let info = ints.paths.intern(PathInfo {
        peer: peer_id,
        pre: pre.clone(),
        post,
        rejected,
    });
    Imported { info, used_prefix }
}

enum Judged<'a> {
    Accepted(Cow<'a, wire::PathAttributes>, bool),
    Rejected(String, bool),
}

fn judge<'a>(ctx: &Ctx<'_>, peer_id: PeerId, pre: &'a Attrs, prefix: &Prefix) -> Judged<'a> {
    let Some(peer) = ctx.peers.get(&peer_id) else {
        return Judged::Rejected("peer is not configured".into(), false);
    };
    let local_asn = ctx.cfg.local_asn;
    let a = &pre.attrs;
    let ebgp = peer.cfg.remote_asn != local_asn;

    let seen = a.as_path.count(local_asn);
    if seen > usize::from(peer.cfg.allow_as_in) {
        return Judged::Rejected(
            format!(
                "AS path loop: contains local AS {local_asn} ({seen} times, allowAsIn {})",
                peer.cfg.allow_as_in
            ),
            false,
        );
    }
    if !ebgp {
        if a.originator_id == Some(ctx.cfg.router_id) {
            return Judged::Rejected(
                format!(
                    "ORIGINATOR_ID {} is our router id: our own route reflected back (RFC 4456 §8)",
                    ctx.cfg.router_id
                ),
                false,
            );
        }
        let cluster = ctx.cfg.cluster_id();
        if a.cluster_list.contains(&cluster) {
            return Judged::Rejected(
                format!(
                    "CLUSTER_LIST contains our cluster id {cluster}: reflection loop (RFC 4456 §8)"
                ),
                false,
            );
        }
    }

    let mut attrs = Cow::Borrowed(a);
    // RFC 4271 §5.1.5: LOCAL_PREF received over eBGP is ignored.
    if ebgp && attrs.local_pref.is_some() {
        attrs.to_mut().local_pref = None;
    }
    let names =
        match &peer.cfg.import {
            PolicyChain::Unset if ebgp => return Judged::Rejected(
                "no import policy (RFC 8212: eBGP sessions exchange nothing until a policy is set)"
                    .into(),
                false,
            ),
            PolicyChain::Unset | PolicyChain::All => return Judged::Accepted(attrs, false),
            PolicyChain::None => return Judged::Rejected("import none".into(), false),
            PolicyChain::Named(names) => names,
        };
    let subject = Subject {
        prefix,
        neighbor: &peer.cfg.name,
    };
    let outcome = ctx.policies.evaluate(names, subject, &mut attrs);
    if let Some(reason) = outcome.rejected {
        return Judged::Rejected(format!("import: {reason}"), outcome.used_prefix);
    }
    if outcome.prepend > 0 {
        attrs
            .to_mut()
            .as_path
            .prepend(local_asn, usize::from(outcome.prepend));
    }
    Judged::Accepted(attrs, outcome.used_prefix)
}
