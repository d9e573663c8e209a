//! Loss, duplicates and unexpected messages, from the ledger.

use super::{Check, CheckResult, Ledger, Whereabouts};
use crate::scenario::{Count, Duplicates, Expect};

const SHOWN: usize = 10;

/// `no_loss`, `duplicates`, `unexpected`, `no_stranded`.
pub fn checks(expect: &Expect, l: &Ledger) -> Vec<CheckResult> {
    let lost = l.lost.len() as u64;
    let loss = if expect.lost.allows(lost) {
        CheckResult::new(
            Check::NoLoss,
            true,
            format!(
                "{} acknowledged, {} processed, {lost} lost ({})",
                l.acknowledged,
                l.processed,
                bound(expect.lost)
            ),
        )
    } else {
        let (mut input, mut processing, mut started, mut failed, mut gone) = (0, 0, 0, 0, 0);
        for x in &l.lost {
            match x.whereabouts {
                Whereabouts::InputQueue { .. } => input += 1,
                Whereabouts::Processing { .. } => processing += 1,
                Whereabouts::InProgress { .. } => started += 1,
                Whereabouts::Failed { .. } => failed += 1,
                Whereabouts::Gone => gone += 1,
            }
        }
        // The framework's registries are named only when the scenario reads them.
        let registries = if started + failed > 0 {
            format!(", {started} left started in the framework's registry, {failed} given up on")
        } else {
            String::new()
        };
        let ids: Vec<&str> = l.lost.iter().take(SHOWN).map(|x| x.id.as_str()).collect();
        let fewer = match expect.lost {
            Count::Exactly(n) if lost < n => ": fewer than the scenario documents",
            _ => "",
        };
        let place = if lost > 0 {
            format!(
                ": {input} still in the input queue, {processing} stuck in a processing list{registries}, {gone} gone; first: {}",
                ids.join(", ")
            )
        } else {
            String::new()
        };
        CheckResult::new(
            Check::NoLoss,
            false,
            format!(
                "{lost} of {} acknowledged messages never processed ({}){fewer}{place}",
                l.acknowledged,
                bound(expect.lost),
            ),
        )
    };

    let dups = l.duplicated.len() as u64;
    let dup_ids: Vec<String> = l
        .duplicated
        .iter()
        .take(SHOWN)
        .map(|d| format!("{} x{}", d.id, d.times))
        .collect();
    let (passed, allowed) = match expect.duplicates {
        Duplicates::Allow => (true, "allowed".to_owned()),
        Duplicates::Forbid => (dups == 0, "forbidden".to_owned()),
        Duplicates::Bound(c) => (c.allows(dups), bound(c)),
    };
    let duplicates = CheckResult::new(
        Check::Duplicates,
        passed,
        match (dups, expect.duplicates) {
            (0, Duplicates::Bound(c @ Count::Exactly(_))) if !passed => {
                format!("no message processed twice ({})", bound(c))
            }
            (0, _) => "no message processed twice".to_owned(),
            _ => format!(
                "{dups} processed more than once ({allowed}): {}",
                dup_ids.join(", ")
            ),
        },
    );

    let unexpected = CheckResult::new(
        Check::Unexpected,
        l.unexpected.is_empty(),
        if l.unexpected.is_empty() {
            "every processed message was enqueued by this run".to_owned()
        } else {
            format!(
                "{} processed but never enqueued: {}",
                l.unexpected.len(),
                l.unexpected
                    .iter()
                    .take(SHOWN)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    );
    let stranded = CheckResult::new(
        Check::NoStranded,
        l.left_in_progress.is_empty(),
        if l.left_in_progress.is_empty() {
            "no processed message left marked in progress".to_owned()
        } else {
            format!(
                "{} processed but left marked in progress: {}",
                l.left_in_progress.len(),
                l.left_in_progress
                    .iter()
                    .take(SHOWN)
                    .map(|x| format!("{} ({})", x.id, x.whereabouts))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    );
    vec![loss, duplicates, unexpected, stranded]
}

/// The bound that applied, as check details name it: `allowed: at most 0`, `expected:
/// exactly 7`.
fn bound(c: Count) -> String {
    match c {
        Count::AtMost(n) => format!("allowed: at most {n}"),
        Count::Exactly(n) => format!("expected: exactly {n}"),
    }
}
