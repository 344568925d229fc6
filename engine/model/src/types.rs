//! The policy pack's document types, as a policy author writes them.
//!
//! Every struct refuses unknown keys. The JSON Schema of the pack format
//! (`schema/dealrules-pack.schema.json`) is generated from these types.

use indexmap::IndexMap;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A Rhai expression (section 2 of the policy language).
pub type Expression = String;

/// The document kinds a pack may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub enum Kind {
    DecisionTable,
    Calculation,
    ApprovalPolicy,
    Funnel,
    IncentivePlan,
    Targets,
    Plugin,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::DecisionTable,
        Kind::Calculation,
        Kind::ApprovalPolicy,
        Kind::Funnel,
        Kind::IncentivePlan,
        Kind::Targets,
        Kind::Plugin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DecisionTable => "DecisionTable",
            Kind::Calculation => "Calculation",
            Kind::ApprovalPolicy => "ApprovalPolicy",
            Kind::Funnel => "Funnel",
            Kind::IncentivePlan => "IncentivePlan",
            Kind::Targets => "Targets",
            Kind::Plugin => "Plugin",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Name, description and labels of a policy document.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Unique per kind within the pack: `[a-z0-9-]{1,63}`.
    #[schemars(regex(pattern = r"^[a-z0-9-]{1,63}$"))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
}

/// Values visible to a policy's expressions as `vars`.
pub type Vars = IndexMap<String, Value>;

// ---------------------------------------------------------------- DecisionTable

/// How the rows of a decision table combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HitPolicy {
    /// The first matching row.
    #[default]
    First,
    /// Exactly one row may match; more is an error naming the rows.
    Unique,
    /// The matching row with the highest `priority`.
    Priority,
    /// Every matching row, in order.
    Collect,
}

/// A DMN-style table: inputs are expressions, rows are rules, outputs values.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionTableSpec {
    #[serde(default)]
    pub hit: HitPolicy,
    /// Input name -> expression; rows' `when` read the inputs by name.
    #[serde(default)]
    pub inputs: IndexMap<String, Expression>,
    /// The output columns every row may set.
    pub outputs: Vec<String>,
    pub rules: Vec<TableRow>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub vars: Vars,
    /// Plugin answers the expressions read as `plugins.<as>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginFact>,
}

/// A plugin called before a policy's expressions run; its answer is the
/// fact `plugins.<as>`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginFact {
    #[serde(rename = "as")]
    pub name: String,
    pub plugin: String,
    pub function: String,
}

/// One row: `when` (absent: always matches), optional `id` and `priority`,
/// and a value for each output column.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TableRow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Expression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Output column -> value: a constant, or `{ expr: "..." }` computed
    /// for the matched row only.
    #[serde(flatten)]
    pub outputs: IndexMap<String, OutputValue>,
}

/// A row's value for one output column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OutputValue {
    /// `{ expr: "..." }`: an expression over the facts and the table's
    /// inputs, computed only when the row is the answer (every matching
    /// row for `collect`).
    Computed(ComputedOutput),
    /// The value as written.
    Constant(Value),
}

/// An output computed by an expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComputedOutput {
    pub expr: Expression,
}

// ------------------------------------------------------------------ Calculation

/// Named steps evaluated in order, each an expression over the facts and
/// the steps before it; the result shows every step's value.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalculationSpec {
    /// Step name -> expression, in the order they run. A step reads the
    /// input facts, `vars`, `now` and the steps above it by name.
    pub steps: IndexMap<String, Expression>,
    /// The steps the result shows under `outputs` (default: every step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub vars: Vars,
}

// --------------------------------------------------------------- ApprovalPolicy

/// How an approval policy's rules combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalHit {
    /// The first matching rule gives the level.
    #[default]
    First,
    /// The highest level among all matching rules.
    Max,
}

/// Which levels must sign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChainMode {
    /// Every level above the first, up to the decided one, in order.
    #[default]
    Cumulative,
    /// Only the decided level.
    Single,
}

/// Who must approve a deal, from discount, size, terms and anything else.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPolicySpec {
    /// Lowest first; the first level needs nobody.
    pub levels: Vec<String>,
    #[serde(default)]
    pub hit: ApprovalHit,
    pub rules: Vec<ApprovalRule>,
    #[serde(default)]
    pub escalate: Vec<Escalation>,
    #[serde(default)]
    pub chain: ChainMode,
    /// Level -> who approves it (`rep.manager`, `role:NAME`, a user id).
    #[serde(default)]
    pub approvers: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<ApprovalSla>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub vars: Vars,
    /// Plugin answers the rules read as `plugins.<as>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginFact>,
    /// Segregation of duties: by default the deal's owner and the user who
    /// submitted a request never decide its steps, not even as an admin.
    /// `true` lets them, for teams that want it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_self_approval: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    pub id: String,
    /// Absent: always matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Expression>,
    pub level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub id: String,
    pub when: Expression,
    /// Levels to raise by (default 1).
    #[serde(default = "one")]
    pub by: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSla {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_after: Option<DurationText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_after: Option<DurationText>,
}

/// A duration as written: `50ms`, `30s`, `30m`, `36h`, `14d`, `2w`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct DurationText(#[schemars(regex(pattern = r"^[0-9]+(ms|s|m|h|d|w)$"))] pub String);

// ---------------------------------------------------------------------- Funnel

/// The sales process as a state machine over a deal.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FunnelSpec {
    pub initial: String,
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub transitions: Vec<Transition>,
    #[serde(default)]
    pub timers: Vec<Timer>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub vars: Vars,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub id: String,
    /// Chance to win from this stage, 0 to 1, for the weighted pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<Decimal>,
    /// Deal fields that must be present and non-empty to enter.
    #[serde(default)]
    pub requires: Vec<String>,
    #[serde(default)]
    pub on_enter: Vec<Action>,
    #[serde(default)]
    pub terminal: bool,
    /// How long a deal may stay in the stage before funnel analytics count
    /// it as stalled (`14d`); without it, the earliest `after` of a timer
    /// that runs in the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<DurationText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// A stage id, or `*` for every non-terminal stage.
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Expression>,
    #[serde(default)]
    pub requires_approval: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timer {
    pub id: String,
    /// The stages in which the timer runs.
    #[serde(rename = "in")]
    pub stages: Vec<String>,
    /// Fires once, this long after the deal entered the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<DurationText>,
    /// Fires repeatedly at this interval while the deal stays in the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<DurationText>,
    #[serde(rename = "do")]
    pub actions: Vec<Action>,
}

/// Something a stage entry or a timer does.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Action {
    /// Opens an approval request from the named ApprovalPolicy.
    Approval(String),
    /// Renders a template with the deal and sends it.
    Notify(Notify),
    /// Sets deal fields from expressions.
    Set(IndexMap<String, Expression>),
    /// Runs a Rhai script from the pack (`scripts/x.rhai`).
    Script(String),
    /// Calls a plugin function.
    Plugin(PluginCall),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    pub template: String,
    /// Expression for the recipient, such as `deal.owner`.
    pub to: Expression,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginCall {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
}

// --------------------------------------------------------------- IncentivePlan

/// A pay period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    Month,
    Quarter,
    Year,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoundingMode {
    #[default]
    HalfUp,
    HalfEven,
    Down,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rounding {
    pub places: u32,
    #[serde(default)]
    pub mode: RoundingMode,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DateRange {
    /// ISO date, inclusive.
    pub from: String,
    /// ISO date, inclusive.
    pub to: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Credit {
    /// Which closed deals count.
    pub when: Expression,
    /// How much a deal credits.
    pub amount: Expression,
    /// Expression giving `[{rep, share}]`; shares sum to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub splits: Option<Expression>,
}

/// A rep's quota: a number, an expression, or `{from: targets}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Quota {
    Amount(Decimal),
    From(QuotaFrom),
    Expression(Expression),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaFrom {
    /// `targets`, or the name of a Targets document.
    pub from: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TierBasis {
    /// credit / quota
    #[default]
    Attainment,
    /// credit
    Amount,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TierMode {
    #[default]
    Marginal,
    Retroactive,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Accumulate {
    /// Tiers fill with the period's total credit.
    #[default]
    Period,
    /// Each deal is tiered from zero on its own.
    Deal,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Upper bound, inclusive; absent on the last tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upto: Option<Decimal>,
    pub rate: Decimal,
}

/// One part of a rep's pay.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Component {
    Tiered(TieredComponent),
    Rate(RateComponent),
    Spiff(SpiffComponent),
    Scorecard(ScorecardComponent),
    Script(ScriptComponent),
    Plugin(PluginComponent),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TieredComponent {
    pub id: String,
    /// Which credited deals this component counts (an expression over
    /// `deal` and `rep`); absent: every one. Its tiers fill with the credit
    /// of those deals only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Expression>,
    #[serde(default)]
    pub basis: TierBasis,
    #[serde(default)]
    pub mode: TierMode,
    #[serde(default)]
    pub accumulate: Accumulate,
    pub tiers: Vec<Tier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Decimal>,
}

/// Pays each credited deal its credit times a rate of its own (a rate per
/// product line, per region...).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateComponent {
    pub id: String,
    /// Which credited deals this component pays (an expression over `deal`
    /// and `rep`); absent: every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Expression>,
    /// The deal's rate.
    pub rate: DealRate,
    /// The most the component pays a rep in a period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Decimal>,
}

/// A deal's rate: a number, an expression over `deal` and `rep`, or an
/// output of a DecisionTable decided over `{deal, rep}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DealRate {
    Fixed(Decimal),
    Table(RateTable),
    Expression(Expression),
}

/// `{ table: product-rates, output: rate }`
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateTable {
    /// A DecisionTable of the pack (not `collect`).
    pub table: String,
    /// The output column holding the rate.
    pub output: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpiffComponent {
    pub id: String,
    pub when: Expression,
    pub amount: Decimal,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScorecardComponent {
    pub id: String,
    pub target_bonus: Decimal,
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Decimal>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub id: String,
    pub weight: Decimal,
    pub actual: Expression,
    /// A number or an expression.
    pub target: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Decimal>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptComponent {
    pub id: String,
    pub script: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginComponent {
    pub id: String,
    pub plugin: String,
    pub function: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Clawback {
    pub within: DurationText,
    #[serde(default = "whole")]
    pub share: Decimal,
}

fn whole() -> Decimal {
    Decimal::ONE
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Draw {
    pub amount: Decimal,
    #[serde(default)]
    pub recoverable: bool,
}

/// How a rep is paid for a period.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncentivePlanSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to: Option<Expression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<DateRange>,
    pub period: PeriodKind,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounding: Option<Rounding>,
    pub credit: Credit,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    pub components: Vec<Component>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clawback: Option<Clawback>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draw: Option<Draw>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub vars: Vars,
}

// --------------------------------------------------------------------- Targets

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Shares {
    /// `even`
    Even(String),
    /// key -> share; shares sum to 1.
    Explicit(IndexMap<String, Decimal>),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitLevel {
    /// `region`, `rep`, or any rep field.
    pub by: String,
    pub shares: Shares,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaceAlert {
    /// Pace (attainment / elapsed share of the period) under which a row alerts.
    pub below: Decimal,
    /// How often the scheduled check runs: `daily`, `weekly` (the default,
    /// Mondays) or `monthly` (the 1st), at 00:00 UTC.
    #[serde(default)]
    pub schedule: AlertSchedule,
    /// The period the check measures: the current month, quarter (the
    /// default) or year.
    #[serde(default = "default_alert_period")]
    pub period: PeriodKind,
}

fn default_alert_period() -> PeriodKind {
    PeriodKind::Quarter
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertSchedule {
    Daily,
    #[default]
    Weekly,
    Monthly,
}

/// A mid-year change of the total: from `effective` on, the year's total is
/// `total` (shares and phasing stay); before it, the earlier figure.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetAdjustment {
    /// First day the new total is in force, YYYY-MM-DD.
    pub effective: String,
    pub total: Decimal,
    /// Why the target changed, shown with progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Targets set once and decomposed by period, region and rep.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetsSpec {
    pub measure: String,
    pub year: i32,
    pub total: Decimal,
    #[serde(default)]
    pub split: Vec<SplitLevel>,
    /// Period (`Q1`..`Q4`, or months `M01`..`M12`) -> share of the year.
    #[serde(default)]
    pub phasing: IndexMap<String, Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pace_alert: Option<PaceAlert>,
    /// Mid-year changes of the total, each from its effective date.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adjustments: Vec<TargetAdjustment>,
}

// ---------------------------------------------------------------------- Plugin

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// `16MiB`, `512KiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationText>,
    /// Largest answer accepted (`1MiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// A partner's WebAssembly plugin. Nothing is allowed unless granted here.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// The module's file, next to the manifest.
    pub wasm: String,
    /// sha256 of the module, hex; the module must match or the pack does not load.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: String,
    pub exports: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<PluginLimits>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Input paths the plugin may read (`deal.amount`); it is given nothing else.
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default)]
    pub config: Value,
}

// ------------------------------------------------------------------ Test files

/// A policy test file under `tests/`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    pub tests: Vec<PolicyTest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyTest {
    pub name: String,
    /// A policy name, or `Kind/name` when names repeat across kinds.
    pub policy: String,
    pub input: Value,
    /// Matched as a subset of the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Value>,
    /// The decision must fail with an error containing this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_error: Option<String>,
}

// -------------------------------------------------------------- Schema helper

/// The document envelope, one variant per kind; used for the JSON Schema.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind")]
pub enum PolicyDocument {
    DecisionTable {
        #[serde(rename = "apiVersion")]
        api_version: ApiVersion,
        metadata: Metadata,
        spec: DecisionTableSpec,
    },
    Calculation {
        #[serde(rename = "apiVersion")]
        api_version: ApiVersion,
        metadata: Metadata,
        spec: CalculationSpec,
    },
    ApprovalPolicy {
        #[serde(rename = "apiVersion")]
        api_version: ApiVersion,
        metadata: Metadata,
        spec: ApprovalPolicySpec,
    },
    Funnel {
        #[serde(rename = "apiVersion")]
        api_version: ApiVersion,
        metadata: Metadata,
        spec: FunnelSpec,
    },
    IncentivePlan {
        #[serde(rename = "apiVersion")]
        api_version: ApiVersion,
        metadata: Metadata,
        spec: IncentivePlanSpec,
    },
    Targets {
        #[serde(rename = "apiVersion")]
        api_version: ApiVersion,
        metadata: Metadata,
        spec: TargetsSpec,
    },
    Plugin {
        #[serde(rename = "apiVersion")]
        api_version: ApiVersion,
        metadata: Metadata,
        spec: PluginSpec,
    },
}

/// Always `dealrules/v1`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "dealrules/v1")]
    V1,
}

/// The JSON Schema of a pack document (files other than `tests/*.yaml`).
pub fn pack_schema() -> Value {
    let mut schema = schemars::schema_for!(PolicyDocument);
    schema.insert("title".into(), Value::String("dealrules policy document".into()));
    schema.insert(
        "$comment".into(),
        Value::String("Generated by `dealrules schema` from the model types; do not edit by hand.".into()),
    );
    serde_json::to_value(&schema).unwrap_or(Value::Null)
}

/// The JSON Schema of a policy test file (`tests/*.yaml`).
pub fn tests_schema() -> Value {
    let mut schema = schemars::schema_for!(TestFile);
    schema.insert("title".into(), Value::String("dealrules policy tests".into()));
    schema.insert(
        "$comment".into(),
        Value::String("Generated by `dealrules schema --tests` from the model types; do not edit by hand.".into()),
    );
    serde_json::to_value(&schema).unwrap_or(Value::Null)
}
