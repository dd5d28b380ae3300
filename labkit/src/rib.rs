//! A BGP path as a peer daemon shows it in its RIB: what BIRD, FRR and
//! GoBGP report is read into this one type (see their modules).

/// A path learned from a BGP neighbor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BgpPath {
    pub prefix: String,
    /// BGP next hop(s) as the daemon shows them (FRR and BIRD list the
    /// global and the link-local address for IPv6).
    pub next_hops: Vec<String>,
    pub as_path: Vec<u32>,
    /// RFC 4456 ORIGINATOR_ID and CLUSTER_LIST.
    pub originator_id: Option<String>,
    pub cluster_list: Vec<String>,
    pub best: bool,
}

/// One line per path, for failure messages.
pub fn describe(rib: &[BgpPath]) -> String {
    if rib.is_empty() {
        return "empty RIB".into();
    }
    rib.iter()
        .map(|r| {
            format!(
                "{} nh={:?} path={:?} orig={:?} cl={:?}",
                r.prefix, r.next_hops, r.as_path, r.originator_id, r.cluster_list
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
