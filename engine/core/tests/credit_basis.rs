//! The credit basis of a Targets document (`Snapshot::credit_basis`): equal
//! for two packs exactly when what their deals credit toward it is decided
//! alike, so kept credits carry over a pack change that does not touch
//! crediting and are made again after one that does.

use dealrules_core::Snapshot;
use dealrules_model::PackSource;

const TARGETS: &str = "apiVersion: dealrules/v1\nkind: Targets\nmetadata: { name: fy2026 }\nspec:\n  measure: bookings\n  year: 2026\n  total: 1200000\n  split:\n    - by: rep\n      shares: even\n";

const FUNNEL: &str = "apiVersion: dealrules/v1\nkind: Funnel\nmetadata: { name: b2b }\nspec:\n  initial: lead\n  stages:\n    - { id: lead, probability: 0.1 }\n    - { id: proposal, probability: 0.5, sla: 10d }\n    - { id: won, probability: 1.0, terminal: true }\n    - { id: lost, probability: 0, terminal: true }\n";

/// A plan fed by the targets, with `credit` and `rate` as given.
fn plan(credit: &str, rate: &str, extra: &str) -> String {
    format!(
        "apiVersion: dealrules/v1\nkind: IncentivePlan\nmetadata: {{ name: ae-2026 }}\nspec:\n  period: quarter\n  currency: USD\n  credit: {credit}\n  quota: {{ from: fy2026 }}\n  components:\n    - {{ id: commission, type: tiered, tiers: [ {{ rate: {rate} }} ] }}\n{extra}"
    )
}

const CREDIT: &str = "{ when: 'deal.stage == \"won\"', amount: deal.amount }";

fn basis(docs: &[&str]) -> String {
    let texts: Vec<(String, &str)> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("doc-{i}.yaml"), *d))
        .collect();
    let s = Snapshot::load(PackSource::from_texts(texts.iter().map(|(p, t)| (p.as_str(), *t))))
        .unwrap_or_else(|e| panic!("{e}"));
    s.credit_basis("fy2026")
}

#[test]
fn a_pack_change_that_does_not_touch_crediting_keeps_the_basis() {
    let before = basis(&[TARGETS, FUNNEL, &plan(CREDIT, "0.1", "")]);
    // A commission rate, a draw, the targets' own figures, a funnel's SLA.
    let rate = basis(&[
        TARGETS,
        FUNNEL,
        &plan(CREDIT, "0.12", "  draw: { amount: 500, recoverable: true }\n"),
    ]);
    let targets = basis(&[&TARGETS.replace("1200000", "1500000"), FUNNEL, &plan(CREDIT, "0.1", "")]);
    let sla = basis(&[
        TARGETS,
        &FUNNEL.replace("sla: 10d", "sla: 20d"),
        &plan(CREDIT, "0.1", ""),
    ]);
    assert_eq!(before, rate);
    assert_eq!(before, targets);
    assert_eq!(before, sla);
    assert_eq!(before.len(), 64, "a SHA-256 in hex: {before}");
}

#[test]
fn a_change_of_what_a_deal_credits_changes_the_basis() {
    let before = basis(&[TARGETS, FUNNEL, &plan(CREDIT, "0.1", "")]);
    let changed = [
        // The rule that counts a deal, and the amount it credits.
        plan(
            "{ when: 'deal.stage == \"won\" && deal.amount > 100', amount: deal.amount }",
            "0.1",
            "",
        ),
        plan("{ when: 'deal.stage == \"won\"', amount: deal.amount * 2 }", "0.1", ""),
        // Splits.
        plan(
            "{ when: 'deal.stage == \"won\"', amount: deal.amount, splits: deal.splits }",
            "0.1",
            "",
        ),
        // Rounding, an effective range, and a var the rules may read.
        plan(CREDIT, "0.1", "  rounding: { places: 0, mode: half_even }\n"),
        plan(CREDIT, "0.1", "  effective: { from: 2026-01-01, to: 2026-06-30 }\n"),
        plan(CREDIT, "0.1", "  vars: { floor: 100 }\n"),
    ];
    for (i, p) in changed.iter().enumerate() {
        assert_ne!(before, basis(&[TARGETS, FUNNEL, p]), "change {i}");
    }
}

#[test]
fn without_a_plan_the_basis_is_the_won_stages() {
    let before = basis(&[TARGETS, FUNNEL]);
    assert_eq!(before, basis(&[TARGETS, &FUNNEL.replace("sla: 10d", "sla: 3d")]));
    // A stage made sure: it counts as won from then on.
    let sure = FUNNEL.replace(
        "{ id: lost, probability: 0, terminal: true }",
        "{ id: lost, probability: 1.0, terminal: true }",
    );
    assert_ne!(before, basis(&[TARGETS, &sure]));
    // A plan fed by the targets: its rules decide, not the funnel.
    assert_ne!(before, basis(&[TARGETS, FUNNEL, &plan(CREDIT, "0.1", "")]));
}
