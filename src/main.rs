//! `dealrules`: run a company's own sales policies. See `dealrules --help`.

mod cli;
mod commands;
mod error;
mod init;
mod plugin_cli;
mod render;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match commands::run(cli::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
