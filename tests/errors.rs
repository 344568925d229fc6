//! What a policy author sees when a pack is broken: every error as
//! `file:line:col: Kind/name: message`, all of them in one run.
//! Snapshots live in `tests/snapshots/`.

use dealrules_core::Snapshot;
use dealrules_model::PackSource;

fn errors_of(files: &[(&str, &str)]) -> String {
    match Snapshot::load(PackSource::from_texts(files.iter().copied())) {
        Ok(_) => panic!("the pack loaded, but it should not"),
        Err(e) => e.to_string(),
    }
}

const GOOD_APPROVALS: &str = r#"apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: discount-approvals }
spec:
  levels: [auto, manager]
  rules:
    - { id: small, when: "deal.discount_pct <= 10", level: auto }
    - { id: rest, level: manager }
"#;

#[test]
fn broken_yaml() {
    insta::assert_snapshot!(errors_of(&[(
        "approvals.yaml",
        "apiVersion: dealrules/v1\nkind: ApprovalPolicy\nmetadata: { name: x\nspec: {}\n"
    )]));
}

#[test]
fn tab_indented_yaml() {
    insta::assert_snapshot!(errors_of(&[(
        "approvals.yaml",
        "apiVersion: dealrules/v1\nkind: ApprovalPolicy\nmetadata:\n\tname: x\n"
    )]));
}

#[test]
fn unknown_keys_say_did_you_mean() {
    insta::assert_snapshot!(errors_of(&[(
        "approvals.yaml",
        r#"apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: discounts }
spec:
  lvels: [auto, manager]
  rules:
    - { id: rest, level: manager }
"#,
    )]));
}

#[test]
fn unknown_key_inside_a_rule() {
    insta::assert_snapshot!(errors_of(&[(
        "approvals.yaml",
        r#"apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: discounts }
spec:
  levels: [auto, manager]
  rules:
    - { id: small, wehn: "deal.amount < 10", level: auto }
"#,
    )]));
}

#[test]
fn unknown_enum_value() {
    insta::assert_snapshot!(errors_of(&[(
        "approvals.yaml",
        r#"apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: discounts }
spec:
  levels: [auto, manager]
  hit: frist
  rules:
    - { id: rest, level: manager }
"#,
    )]));
}

#[test]
fn unknown_kind_and_bad_envelope() {
    insta::assert_snapshot!(errors_of(&[(
        "x.yaml",
        "apiVersion: dealrules/v2\nkind: ApprovalPolicyy\nmetadata: { name: Discounts }\nspec: {}\nextra: 1\n",
    )]));
}

#[test]
fn bad_expressions_point_into_the_expression() {
    insta::assert_snapshot!(errors_of(&[(
        "approvals.yaml",
        r#"apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: discounts }
spec:
  levels: [auto, manager]
  rules:
    - { id: small, when: "deal.discount_pct <= && deal.amount < 10", level: auto }
    - id: mid
      when: deal.discount_pct <= 20 )
      level: manager
    - { id: rest, level: manager }
"#,
    )]));
}

#[test]
fn bad_references() {
    insta::assert_snapshot!(errors_of(&[
        ("approvals.yaml", GOOD_APPROVALS),
        (
            "funnel.yaml",
            r#"apiVersion: dealrules/v1
kind: Funnel
metadata: { name: b2b }
spec:
  initial: leed
  stages:
    - { id: lead }
    - { id: proposal, on_enter: [ { approval: discount-aprovals }, { script: scripts/missing.rhai } ] }
    - { id: won, terminal: true }
  transitions:
    - { from: lead, to: proposl }
    - { from: qualified, to: won }
  timers:
    - { id: stale, in: [proposal], after: 14days, do: [] }
    - { id: both, in: [lead], after: 1d, every: 2d, do: [] }
"#,
        ),
        (
            "more-approvals.yaml",
            r#"apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: terms }
spec:
  levels: [auto, manager]
  rules:
    - { id: a, when: "deal.terms > 30", level: director }
    - { id: a, level: managr }
  approvers: { vp: "role:vp" }
  sla: { remind_after: two days }
"#,
        ),
    ]));
}

#[test]
fn duplicate_names_across_files() {
    insta::assert_snapshot!(errors_of(&[("a.yaml", GOOD_APPROVALS), ("b.yaml", GOOD_APPROVALS)]));
}

#[test]
fn missing_required_keys() {
    insta::assert_snapshot!(errors_of(&[(
        "t.yaml",
        "apiVersion: dealrules/v1\nkind: DecisionTable\nmetadata: { name: tiers }\nspec:\n  hit: first\n",
    )]));
}

#[test]
fn table_mistakes() {
    insta::assert_snapshot!(errors_of(&[(
        "tables/tier.yaml",
        r#"apiVersion: dealrules/v1
kind: DecisionTable
metadata: { name: tiers }
spec:
  hit: priority
  inputs: { revenue: customer.annual_revenue, now: customer.x }
  outputs: [tier, limit, matched]
  rules:
    - { id: a, when: "revenue > 10", tier: A, limt: 5, priority: 1 }
    - { id: b, tier: B }
"#,
    )]));
}

#[test]
fn tests_that_name_unknown_policies() {
    insta::assert_snapshot!(errors_of(&[
        ("approvals.yaml", GOOD_APPROVALS),
        (
            "tests/approvals.yaml",
            "tests:\n  - name: one\n    policy: discount-aprovals\n    input: {}\n    expect: { level: auto }\n  - name: two\n    policy: discount-approvals\n    input: {}\n"
        ),
    ]));
}

#[test]
fn scripts_that_do_not_compile() {
    insta::assert_snapshot!(errors_of(&[
        ("scripts/kicker.rhai", "fn evaluate(input) {\n  let x = ;\n}\n"),
        ("scripts/other.rhai", "fn run(x) { x }\n"),
    ]));
}

#[test]
fn every_document_is_checked_even_when_one_does_not_parse() {
    insta::assert_snapshot!(errors_of(&[
        (
            "a.yaml",
            "apiVersion: dealrules/v1\nkind: ApprovalPolicy\nmetadata: { name: discounts }\nspec:\n  levels: [auto]\n  hit: frist\n  rules: []\n"
        ),
        (
            "b.yaml",
            "apiVersion: dealrules/v1\nkind: Funnel\nmetadata: { name: b2b }\nspec:\n  initial: lead\n  stages: [ { id: lead, on_enter: [ { approval: discounts } ] } ]\n  transitions: [ { from: lead, to: won } ]\n"
        ),
        ("c.yaml", "key: [unclosed\n"),
    ]));
}

#[test]
fn incentive_targets_and_plugin_validation() {
    insta::assert_snapshot!(errors_of(&[
        (
            "incentives.yaml",
            r#"apiVersion: dealrules/v1
kind: IncentivePlan
metadata: { name: ae-2026 }
spec:
  effective: { from: 2026-01-01, to: 2025-12-31 }
  period: quarter
  currency: usd
  credit: { when: "deal.stage == \"won\"", amount: "deal.amount *" }
  quota: { from: targets }
  components:
    - { id: commission, type: tiered, tiers: [ { upto: 1.0, rate: 0.1 }, { rate: 0.15 }, { upto: 0.5, rate: 0.2 } ] }
    - { id: commission, type: spiff, when: "deal.new_logo", amount: 500 }
    - { id: fx, type: plugin, plugin: fx-convert, function: payout }
  clawback: { within: 90d, share: 1.5 }
"#,
        ),
        (
            "targets.yaml",
            r#"apiVersion: dealrules/v1
kind: Targets
metadata: { name: fy2026 }
spec:
  measure: bookings
  year: 2026
  total: 12000000
  split:
    - { by: region, shares: { NA: 0.5, EMEA: 0.3, APAC: 0.3 } }
    - { by: rep, shares: evenly }
  phasing: { Q1: 0.2, Q2: 0.25, Q3: 0.25, Q5: 0.3 }
"#,
        ),
        (
            "plugins/fx.yaml",
            r#"apiVersion: dealrules/v1
kind: Plugin
metadata: { name: fx-convert }
spec:
  wasm: fx.wasm
  sha256: 0000000000000000000000000000000000000000000000000000000000000000
  exports: [rate]
  limits: { memory: 16MB, timeout: soon }
  capabilities: [network]
"#,
        ),
        ("plugins/fx.wasm", "\0asm"),
    ]));
}

#[test]
fn a_broken_policy_is_reported_once_not_again_by_its_tests() {
    let broken = GOOD_APPROVALS.replace("level: manager }", "level: manger }");
    let text = errors_of(&[
        ("approvals.yaml", broken.as_str()),
        (
            "tests/approvals.yaml",
            "tests:\n  - name: one\n    policy: discount-approvals\n    input: {}\n    expect: { level: auto }\n",
        ),
    ]);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("did you mean `manager`"), "{text}");
}

/// Issue 10: an expression error named the policy but not the rule it is in
/// (`approvals.yaml:9:48: ApprovalPolicy/bad-expr: bad expression: ...`).
/// Every error about something inside a rule, level, stage, transition,
/// timer, table row or input, or incentive component names it.
#[test]
fn regression_issue_10_errors_inside_a_rule_name_the_rule() {
    let approvals = r#"apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: bad-expr }
spec:
  levels: [auto, manager]
  rules:
    - { id: fine, when: "deal.amount < 10", level: auto }
    - { id: broken-rule, when: "deal.discount_pct <= && deal.amount < 10", level: auto }
    - { id: rest, level: manager }
  escalate:
    - { id: long-terms, when: "deal.terms >", by: 1 }
  approvers: { manager: "rep.manager(" }
"#;
    let table = r#"apiVersion: dealrules/v1
kind: DecisionTable
metadata: { name: tiers }
spec:
  inputs: { revenue: "customer.revenue *" }
  outputs: [tier]
  rules:
    - { when: "revenue >= 10", tier: A }
    - { id: b, when: "revenue >", tier: B }
"#;
    let funnel = r#"apiVersion: dealrules/v1
kind: Funnel
metadata: { name: b2b }
spec:
  initial: lead
  stages:
    - { id: lead }
    - { id: proposal, on_enter: [ { notify: { template: t, to: "deal.owner +" } } ] }
  transitions:
    - { from: lead, to: proposal, when: "deal.amount >" }
  timers:
    - { id: stale, in: [lead], after: 2 weeks, do: [] }
"#;
    let plan = r#"apiVersion: dealrules/v1
kind: IncentivePlan
metadata: { name: ae }
spec:
  period: quarter
  currency: USD
  credit: { when: "deal.stage == \"won\"", amount: deal.amount }
  quota: 100
  components:
    - { id: new-logo, type: spiff, when: "deal.new_logo &&", amount: 500 }
"#;
    let text = errors_of(&[
        ("approvals.yaml", approvals),
        ("table.yaml", table),
        ("funnel.yaml", funnel),
        ("plan.yaml", plan),
    ]);
    for want in [
        "approvals.yaml:8:54: ApprovalPolicy/bad-expr rule broken-rule: bad expression: Unexpected '&&'",
        "ApprovalPolicy/bad-expr escalation long-terms: bad expression:",
        "ApprovalPolicy/bad-expr level manager: bad expression:",
        "DecisionTable/tiers input revenue: bad expression:",
        "DecisionTable/tiers rule b: bad expression:",
        "Funnel/b2b stage proposal: bad expression:",
        "Funnel/b2b transition lead->proposal: bad expression:",
        "Funnel/b2b timer stale: bad duration `2 weeks`",
        "IncentivePlan/ae component new-logo: bad expression:",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    // Errors about the policy as a whole name no rule.
    assert!(!text.contains("rule fine"), "{text}");
    // A table row without an id is named as traces name it.
    let unnamed = errors_of(&[("table.yaml", &table.replace("revenue >= 10", "revenue >= +"))]);
    assert!(
        unnamed.contains("DecisionTable/tiers rule #1: bad expression:"),
        "{unnamed}"
    );
}
