//! `dealrules`: run a company's own sales policies. See `dealrules --help`.

mod cli;
mod import_cli;
mod plugin_cli;
mod render;
mod run_cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    std::process::ExitCode::from(cli::run(args))
}
