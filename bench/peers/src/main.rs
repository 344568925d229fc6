//! dealrules, zen-engine, Rhai and hand-written Rust deciding the same
//! generated deals in one process: the approval level (the spec's
//! discount-approvals with a payment-terms escalation) and the deal's
//! commission (a product rate times an accelerator band on the net amount,
//! rounded half up to cents, capped).
//!
//! Every engine's answer for every deal is compared with the hand-written
//! Rust; a dealrules answer that differs fails the run (exit code 1),
//! zen-engine and Rhai differences are counted. Then decisions per second
//! and the ratios are printed as a Markdown table. One decision is one
//! deal's level and commission.
//!
//! Run: `scripts/bench-peers [--deals N] [--seed S] [--rounds R]`.
//! `--only PEER:MODE` (e.g. `dealrules:parsed`, `zen:json`) runs one
//! engine alone and prints its rate, for a profiler.

mod deals;
mod zen;

use std::process::ExitCode;
use std::time::Instant;

use dealrules_core::{Decision, Snapshot};
use dealrules_expr::Value;
use dealrules_model::PackSource;
use deals::{Answer, Deal, LEVELS};
use rhai::{Dynamic, Engine, Map, OptimizationLevel, Scope};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use zen_engine::Variable;

const NOW: &str = "2026-11-29T00:00:00Z";
const APPROVALS: &str = include_str!("../pack/approvals.yaml");
const COMMISSION: &str = include_str!("../pack/commission.yaml");
const RHAI_SCRIPT: &str = include_str!("../deal.rhai");
const APPROVAL: &str = "discount-approvals";
const CALCULATION: &str = "deal-commission";
const TABLE: &str = "commission-table";

struct Args {
    deals: usize,
    seed: u64,
    rounds: usize,
    only: Option<(Peer, Mode)>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        deals: 100_000,
        seed: 17,
        rounds: 3,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .and_then(|v| v.replace('_', "").parse::<u64>().ok())
                .filter(|v| *v > 0)
                .ok_or(format!("{name} needs a positive whole number"))
        };
        match flag.as_str() {
            "--deals" => a.deals = value("--deals")? as usize,
            "--seed" => a.seed = value("--seed")?,
            "--rounds" => a.rounds = value("--rounds")? as usize,
            "--only" => {
                let v = it.next().unwrap_or_default();
                let (peer, mode) = v.split_once(':').unwrap_or((&v, "parsed"));
                let peer = Peer::ALL.into_iter().find(|p| p.key() == peer);
                let mode = [Mode::Json, Mode::Parsed].into_iter().find(|m| m.key() == mode);
                match (peer, mode) {
                    (Some(p), Some(m)) => a.only = Some((p, m)),
                    _ => {
                        let peers: Vec<&str> = Peer::ALL.iter().map(|p| p.key()).collect();
                        return Err(format!(
                            "--only takes PEER:MODE, PEER one of {peers:?}, MODE json or parsed"
                        ));
                    }
                }
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}`; use --deals N, --seed S, --rounds R, --only PEER:MODE"
                ));
            }
        }
    }
    Ok(a)
}

/// Everything the engines read, built before anything is timed.
struct Bench {
    deals: Vec<Deal>,
    texts: Vec<String>,
    snapshot: Snapshot,
    parsed: Vec<Value>,
    zen: zen_engine::Decision,
    zen_inputs: Vec<Variable>,
    runtime: tokio::runtime::Runtime,
    rhai: Engine,
    rhai_ast: rhai::AST,
    rhai_inputs: Vec<Dynamic>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Json,
    Parsed,
}

impl Mode {
    fn key(self) -> &'static str {
        match self {
            Mode::Json => "json",
            Mode::Parsed => "parsed",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peer {
    Rust,
    /// Approval and Calculation in one `decide_many` call.
    DealrulesMany,
    /// Approval and Calculation, one call each.
    DealrulesTwo,
    /// Approval and the DecisionTable with a computed output, one call each.
    DealrulesTable,
    Zen,
    Rhai,
}

impl Peer {
    const ALL: [Peer; 6] = [
        Peer::DealrulesMany,
        Peer::DealrulesTwo,
        Peer::DealrulesTable,
        Peer::Zen,
        Peer::Rhai,
        Peer::Rust,
    ];

    fn key(self) -> &'static str {
        match self {
            Peer::DealrulesMany => "dealrules-many",
            Peer::DealrulesTwo => "dealrules",
            Peer::DealrulesTable => "dealrules-table",
            Peer::Zen => "zen",
            Peer::Rhai => "rhai",
            Peer::Rust => "rust",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Peer::DealrulesMany => "dealrules: ApprovalPolicy + Calculation, one `decide_many` call",
            Peer::DealrulesTwo => "dealrules: ApprovalPolicy + Calculation, a call each",
            Peer::DealrulesTable => "dealrules: ApprovalPolicy + DecisionTable with `{ expr }` output, a call each",
            Peer::Zen => "zen-engine 2.1.6: JDM graph (3 tables, 2 expression nodes), compiled",
            Peer::Rhai => "Rhai 1.27: precompiled script, decimals",
            Peer::Rust => "hand-written Rust (rust_decimal, serde)",
        }
    }

    fn is_dealrules(self) -> bool {
        matches!(self, Peer::DealrulesMany | Peer::DealrulesTwo | Peer::DealrulesTable)
    }
}

fn level_index(level: &str) -> Option<u8> {
    LEVELS.iter().position(|l| *l == level).map(|i| i as u8)
}

fn dealrules_answer(approval: &Decision, commission: &Decision) -> Option<Answer> {
    let level = match approval {
        Decision::Approval(a) => level_index(a.level)?,
        _ => return None,
    };
    let commission = match commission {
        Decision::Calculation(c) => c.step("commission")?.as_decimal()?,
        Decision::Table(t) => t.outputs.iter().find(|(k, _)| *k == "commission")?.1.as_decimal()?,
        _ => return None,
    };
    Some(Answer { level, commission })
}

fn zen_answer(result: &Variable) -> Option<Answer> {
    Some(Answer {
        level: result.dot("level")?.as_number()?.to_u8()?,
        commission: result.dot("commission")?.as_number()?,
    })
}

fn rhai_answer(result: Dynamic) -> Option<Answer> {
    let map = result.try_cast::<Map>()?;
    Some(Answer {
        level: u8::try_from(map.get("level")?.as_int().ok()?).ok()?,
        commission: map.get("commission")?.as_decimal().ok()?,
    })
}

impl Bench {
    /// One engine over every deal; `None` where it gave no usable answer.
    fn run(&self, engine: Peer, mode: Mode) -> Vec<Option<Answer>> {
        let s = &self.snapshot;
        match (engine, mode) {
            (Peer::Rust, Mode::Json) => self.texts.iter().map(|t| Some(deals::decide_json(t))).collect(),
            (Peer::Rust, Mode::Parsed) => self.deals.iter().map(|d| Some(deals::decide(d))).collect(),
            (Peer::DealrulesMany, Mode::Json) => self
                .texts
                .iter()
                .map(|t| {
                    let many = s.decide_many_json(&[APPROVAL, CALCULATION], t, NOW).ok()?;
                    match &many.results[..] {
                        [(_, Ok(a)), (_, Ok(c))] => dealrules_answer(a, c),
                        _ => None,
                    }
                })
                .collect(),
            (Peer::DealrulesMany, Mode::Parsed) => self
                .parsed
                .iter()
                .map(|v| {
                    let many = s.decide_many(&[APPROVAL, CALCULATION], v, NOW).ok()?;
                    match &many.results[..] {
                        [(_, Ok(a)), (_, Ok(c))] => dealrules_answer(a, c),
                        _ => None,
                    }
                })
                .collect(),
            (Peer::DealrulesTwo | Peer::DealrulesTable, Mode::Json) => {
                let second = if engine == Peer::DealrulesTwo {
                    CALCULATION
                } else {
                    TABLE
                };
                self.texts
                    .iter()
                    .map(|t| {
                        let a = s.decide_json(APPROVAL, t, NOW).ok()?;
                        let c = s.decide_json(second, t, NOW).ok()?;
                        dealrules_answer(&a, &c)
                    })
                    .collect()
            }
            (Peer::DealrulesTwo | Peer::DealrulesTable, Mode::Parsed) => {
                let second = if engine == Peer::DealrulesTwo {
                    CALCULATION
                } else {
                    TABLE
                };
                self.parsed
                    .iter()
                    .map(|v| {
                        let a = s.decide(APPROVAL, v, NOW).ok()?;
                        let c = s.decide(second, v, NOW).ok()?;
                        dealrules_answer(&a, &c)
                    })
                    .collect()
            }
            (Peer::Zen, Mode::Json) => self.runtime.block_on(async {
                let mut out = Vec::with_capacity(self.texts.len());
                for t in &self.texts {
                    let answer = match serde_json::from_str::<Variable>(t) {
                        Ok(input) => self.zen.evaluate(input).await.ok().and_then(|r| zen_answer(&r.result)),
                        Err(_) => None,
                    };
                    out.push(answer);
                }
                out
            }),
            (Peer::Zen, Mode::Parsed) => self.runtime.block_on(async {
                let mut out = Vec::with_capacity(self.zen_inputs.len());
                for input in &self.zen_inputs {
                    let r = self.zen.evaluate(input.clone()).await;
                    out.push(r.ok().and_then(|r| zen_answer(&r.result)));
                }
                out
            }),
            (Peer::Rhai, Mode::Json) => {
                let mut scope = Scope::new();
                self.texts
                    .iter()
                    .map(|t| {
                        let input = self.rhai.parse_json(t, true).ok()?;
                        scope.rewind(0);
                        scope.push_constant("input", input);
                        rhai_answer(self.rhai.eval_ast_with_scope(&mut scope, &self.rhai_ast).ok()?)
                    })
                    .collect()
            }
            (Peer::Rhai, Mode::Parsed) => {
                let mut scope = Scope::new();
                self.rhai_inputs
                    .iter()
                    .map(|input| {
                        scope.rewind(0);
                        scope.push_constant_dynamic("input", input.clone());
                        rhai_answer(self.rhai.eval_ast_with_scope(&mut scope, &self.rhai_ast).ok()?)
                    })
                    .collect()
            }
        }
    }
}

fn setup(a: &Args) -> Result<Bench, String> {
    let deals = deals::generate(a.deals, a.seed);
    let texts: Vec<String> = deals.iter().map(Deal::json).collect();
    let snapshot = Snapshot::load(PackSource::from_texts([
        ("approvals.yaml", APPROVALS),
        ("commission.yaml", COMMISSION),
    ]))
    .map_err(|e| format!("the pack does not load:\n{e}"))?;
    let parsed = texts
        .iter()
        .map(|t| Value::from_json_str(t).map_err(|e| format!("dealrules cannot read {t}: {e}")))
        .collect::<Result<_, _>>()?;
    let zen_inputs = texts
        .iter()
        .map(|t| serde_json::from_str::<Variable>(t).map_err(|e| format!("zen-engine cannot read {t}: {e}")))
        .collect::<Result<_, _>>()?;
    let mut rhai = Engine::new();
    rhai.set_optimization_level(OptimizationLevel::Full);
    let rhai_ast = rhai
        .compile(RHAI_SCRIPT)
        .map_err(|e| format!("deal.rhai does not compile: {e}"))?;
    let rhai_inputs = texts
        .iter()
        .map(|t| {
            rhai.parse_json(t, true)
                .map(Dynamic::from_map)
                .map_err(|e| format!("Rhai cannot read {t}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| format!("no tokio runtime: {e}"))?;
    Ok(Bench {
        deals,
        texts,
        snapshot,
        parsed,
        zen: zen::decision(),
        zen_inputs,
        runtime,
        rhai,
        rhai_ast,
        rhai_inputs,
    })
}

fn show(a: Option<&Answer>) -> String {
    match a {
        Some(a) => format!("{} {}", LEVELS.get(a.level as usize).unwrap_or(&"?"), a.commission),
        None => "no answer".to_string(),
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else {
        format!("{:.0} k", x / 1e3)
    }
}

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-peers: {e}");
            return ExitCode::from(2);
        }
    };
    let bench = match setup(&a) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bench-peers: {e}");
            return ExitCode::from(2);
        }
    };
    let n = bench.deals.len();
    if let Some((peer, mode)) = a.only {
        for _ in 0..a.rounds {
            let start = Instant::now();
            let got = bench.run(peer, mode);
            let secs = start.elapsed().as_secs_f64();
            let answered = got.iter().filter(|g| g.is_some()).count();
            println!(
                "{}:{}: {}/s, {answered} of {n} answered",
                peer.key(),
                mode.key(),
                rate(n as f64 / secs)
            );
        }
        return ExitCode::SUCCESS;
    }
    let want: Vec<Answer> = bench.deals.iter().map(deals::decide).collect();
    let half_cents = bench
        .deals
        .iter()
        .filter(|d| (deals::unrounded_commission(d) * Decimal::ONE_HUNDRED).fract().abs() == Decimal::new(5, 1))
        .count();
    let capped = want.iter().filter(|w| w.commission == Decimal::from(20_000)).count();
    let float_wrong = bench
        .deals
        .iter()
        .zip(&want)
        .filter(|(d, w)| deals::float_commission(d) != w.commission)
        .count();
    let mut by_level = [0usize; 4];
    for w in &want {
        by_level[w.level as usize] += 1;
    }
    println!(
        "{n} deals (seed {}), {} rounds; {half_cents} land on half a cent before rounding, {capped} hit the cap, \
         floats (f64, rounded half up) get {float_wrong} commissions wrong; levels auto/manager/director/vp: {:?}",
        a.seed, a.rounds, by_level
    );

    let modes = [Mode::Json, Mode::Parsed];
    let mut seconds: Vec<((Peer, Mode), Vec<f64>)> = Peer::ALL
        .iter()
        .flat_map(|&e| modes.map(|m| ((e, m), Vec::new())))
        .collect();
    let mut mismatches: Vec<((Peer, Mode), usize)> = seconds.iter().map(|(k, _)| (*k, 0)).collect();
    let mut dealrules_wrong = false;
    for round in 0..a.rounds {
        for (i, ((engine, mode), times)) in seconds.iter_mut().enumerate() {
            let start = Instant::now();
            let got = bench.run(*engine, *mode);
            times.push(start.elapsed().as_secs_f64());
            let wrong: Vec<usize> = (0..n).filter(|&k| got[k].as_ref() != Some(&want[k])).collect();
            if round == 0 {
                mismatches[i].1 = wrong.len();
            }
            if engine.is_dealrules() && !wrong.is_empty() {
                dealrules_wrong = true;
                eprintln!(
                    "MISMATCH {} ({mode:?}), round {}: {} deals",
                    engine.label(),
                    round + 1,
                    wrong.len()
                );
                for &k in wrong.iter().take(20) {
                    eprintln!(
                        "  {}: want {}, got {}",
                        bench.texts[k],
                        show(Some(&want[k])),
                        show(got[k].as_ref())
                    );
                }
            } else if !engine.is_dealrules() && round == 0 {
                for &k in wrong.iter().take(3) {
                    eprintln!(
                        "{:?} ({mode:?}) differs: {}: want {}, got {}",
                        engine,
                        bench.texts[k],
                        show(Some(&want[k])),
                        show(got[k].as_ref())
                    );
                }
            }
        }
    }

    let per_second = |e: Peer, m: Mode| -> f64 {
        let times = &seconds
            .iter()
            .find(|(k, _)| *k == (e, m))
            .expect("every run was timed")
            .1;
        n as f64 / median(times.clone())
    };
    let wrong = |e: Peer, m: Mode| mismatches.iter().find(|(k, _)| *k == (e, m)).map_or(0, |x| x.1);
    println!();
    println!(
        "| engine, how the decision is written | from JSON text | vs zen | Rust / this | from a parsed input | vs zen | Rust / this | answers differing from Rust (JSON / parsed) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for e in Peer::ALL {
        let cells: Vec<String> = modes
            .iter()
            .map(|&m| {
                let r = per_second(e, m);
                format!(
                    "{}/s | {:.1}x | {:.1}x",
                    rate(r),
                    r / per_second(Peer::Zen, m),
                    per_second(Peer::Rust, m) / r
                )
            })
            .collect();
        println!(
            "| {} | {} | {} | {} / {} |",
            e.label(),
            cells[0],
            cells[1],
            wrong(e, Mode::Json),
            wrong(e, Mode::Parsed)
        );
    }
    println!();
    let best = |m: Mode| {
        [Peer::DealrulesMany, Peer::DealrulesTwo]
            .into_iter()
            .map(|e| (per_second(e, m), e))
            .max_by(|x, y| x.0.total_cmp(&y.0))
            .expect("two candidates")
    };
    let (json, json_e) = best(Mode::Json);
    let (parsed, parsed_e) = best(Mode::Parsed);
    let zen_json = json / per_second(Peer::Zen, Mode::Json);
    let zen_parsed = parsed / per_second(Peer::Zen, Mode::Parsed);
    let rust_json = per_second(Peer::Rust, Mode::Json) / json;
    let rust_parsed = per_second(Peer::Rust, Mode::Parsed) / parsed;
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "Aims (the Calculation, the faster way of calling it: JSON {:?}, parsed {:?}):",
        json_e, parsed_e
    );
    println!(
        "- at least 5x zen-engine from JSON text: {zen_json:.1}x, {}",
        verdict(zen_json >= 5.0)
    );
    println!(
        "- at least 10x zen-engine from a parsed input: {zen_parsed:.1}x, {}",
        verdict(zen_parsed >= 10.0)
    );
    println!(
        "- within 20x of hand-written Rust: {rust_json:.1}x from JSON text, {rust_parsed:.1}x parsed, {}",
        verdict(rust_json <= 20.0 && rust_parsed <= 20.0)
    );
    println!(
        "- the same money on every deal: dealrules {}, zen-engine {} / {} deals differ, Rhai {} / {}",
        if dealrules_wrong { "DIFFERS" } else { "yes" },
        wrong(Peer::Zen, Mode::Json),
        wrong(Peer::Zen, Mode::Parsed),
        wrong(Peer::Rhai, Mode::Json),
        wrong(Peer::Rhai, Mode::Parsed)
    );
    if dealrules_wrong {
        eprintln!("bench-peers: dealrules answered differently from the hand-written Rust (above)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
