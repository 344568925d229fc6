//! `dealrules init [DIR] [--template b2b|distributor|saas]`: a new pack with
//! one policy of each kind, commented, and tests that pass.
//!
//! The templates (`templates/init/<template>/`) are compiled into the
//! binary, so `init` works from anywhere. Next to them the pack gets the
//! JSON Schemas of this version in `.schema/` (for the YAML language
//! server line at the top of each file); a dot-folder is not part of the
//! pack or its version.

use std::path::Path;
use std::process::ExitCode;

use crate::error::{CliError, Result};
use crate::out::outln;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    /// Direct B2B sales: a new-business funnel, discount approvals, customer
    /// tiers, targets by region, an AE commission plan.
    B2b,
    /// Selling through partners: deal registration, special-price approvals
    /// by partner level, partner levels, sell-in targets, a volume rebate.
    Distributor,
    /// Subscriptions: trial to signature, discounts by ARR and term, price
    /// plans by seats, new-ARR targets by segment, commission on ARR.
    Saas,
}

/// Every file of every template: its path in the new pack and its text.
macro_rules! template {
    ($name:literal: $($path:literal),+ $(,)?) => {
        &[$(($path, include_str!(concat!("../templates/init/", $name, "/", $path)))),+]
    };
}

const B2B: &[(&str, &str)] = template!("b2b":
    "README.md", "funnel.yaml", "approvals.yaml", "tables/customer-tier.yaml", "targets.yaml", "incentives.yaml",
    "tests/funnel.yaml", "tests/approvals.yaml", "tests/tables.yaml", "tests/incentives.yaml",
);
const DISTRIBUTOR: &[(&str, &str)] = template!("distributor":
    "README.md", "funnel.yaml", "approvals.yaml", "tables/partner-level.yaml", "targets.yaml", "incentives.yaml",
    "tests/funnel.yaml", "tests/approvals.yaml", "tests/tables.yaml", "tests/incentives.yaml",
);
const SAAS: &[(&str, &str)] = template!("saas":
    "README.md", "funnel.yaml", "approvals.yaml", "tables/plan-tier.yaml", "targets.yaml", "incentives.yaml",
    "tests/funnel.yaml", "tests/approvals.yaml", "tests/tables.yaml", "tests/incentives.yaml",
);
const GITIGNORE: &str = include_str!("../templates/init/gitignore");

impl Template {
    fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Template::B2b => B2B,
            Template::Distributor => DISTRIBUTOR,
            Template::Saas => SAAS,
        }
    }
}

pub fn init(dir: &Path, template: Template) -> Result<ExitCode> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CliError::File { path, source }
    };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(CliError::NotEmpty(dir.to_path_buf()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(dir)(e)),
    }
    let schema = |v: serde_json::Value| serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    let generated = [
        (".gitignore", GITIGNORE.to_string()),
        (
            ".schema/dealrules-pack.schema.json",
            schema(dealrules_model::pack_schema()),
        ),
        (
            ".schema/dealrules-tests.schema.json",
            schema(dealrules_model::tests_schema()),
        ),
    ];
    let files = template
        .files()
        .iter()
        .map(|(path, text)| (*path, text.to_string()))
        .chain(generated);
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
        outln!("created {}", path.display())?;
    }
    let shown = dir.display();
    outln!("next: dealrules test {shown} && dealrules serve --rules {shown}")?;
    Ok(ExitCode::SUCCESS)
}
