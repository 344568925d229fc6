//! `dealrules`: run a company's own sales policies. See `dealrules --help`.

mod change_cli;
mod cli;
mod commands;
mod error;
mod import_cli;
mod init;
mod out;
mod plugin_cli;
mod render;
mod report_cli;
mod run_cli;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    let parsed = cli::Cli::command()
        .color(cli::color_choice())
        .try_get_matches()
        .and_then(|matches| cli::Cli::from_arg_matches(&matches));
    let args = match parsed {
        Ok(args) => args,
        // Help, version and usage errors: clap prints them and exits (2 for usage).
        Err(e) => e.exit(),
    };
    match commands::run(args) {
        Ok(code) => code,
        // The reader has gone (`dealrules test | head`): nothing to tell it.
        Err(error::CliError::Stdout(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
