//! What import refused or ignored: per UPDATE ([`ImportReport`], for the
//! daemon's log) and per peer ([`ImportCounters`], for `show neighbors`).
//! Its own module because the peer record (`ctx`) keeps the counters and
//! `import` fills the reports.

use serde::Serialize;
use wire::Family;

/// Per-session counts of what import refused or ignored, for `show
/// neighbors`: nothing is lost silently (issue 12).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportCounters {
    /// UPDATEs treated as withdrawn (RFC 7606 §2, or a semantic check:
    /// first AS, next hop).
    pub treat_as_withdraw: u64,
    /// Attributes discarded (RFC 7606 §2 "attribute discard").
    pub attribute_discards: u64,
    /// Prefixes (reachable or withdrawn) of a family the session did not
    /// negotiate, ignored (RFC 4760 §6).
    pub ignored_nlri: u64,
}

impl ImportCounters {
    /// Counts `report`, for an UPDATE left with `reachable` prefixes.
    pub(crate) fn count(&mut self, report: &ImportReport, reachable: usize) {
        self.attribute_discards += report.attribute_discards.len() as u64;
        self.ignored_nlri += report.ignored_nlri as u64;
        if report.treat_as_withdraw.is_some() && reachable > 0 {
            self.treat_as_withdraw += 1;
        }
    }
}

/// What [`crate::Rib::receive`] refused or ignored in one UPDATE, for the
/// daemon's log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Why every route of the UPDATE was treated as withdrawn.
    pub treat_as_withdraw: Option<String>,
    /// The attributes the decoder discarded, each with its reason.
    pub attribute_discards: Vec<String>,
    /// Prefixes of a family not negotiated, and that family.
    pub ignored_nlri: usize,
    pub ignored_family: Option<Family>,
}

impl ImportReport {
    /// The log lines: one per problem, each naming the attribute.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        let taw = self
            .treat_as_withdraw
            .iter()
            .map(|w| format!("treat-as-withdraw: {w}"));
        let discards = self
            .attribute_discards
            .iter()
            .map(|d| format!("attribute discard: {d}"));
        let ignored = self.ignored_family.map(|f| {
            format!(
                "NLRI of family {f:?} not negotiated: {} prefixes ignored (RFC 4760 §6)",
                self.ignored_nlri
            )
        });
        taw.chain(discards).chain(ignored)
    }
}
