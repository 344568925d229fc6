//! Writing to stdout without panicking: `println!` panics when the reader
//! has gone (`dealrules test | head`); these return the error, and `main`
//! ends quietly on a closed pipe, as other Unix tools do.

use std::io::Write;

use crate::error::{CliError, Result};

/// `println!` that returns the write error.
macro_rules! outln {
    () => {
        $crate::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that returns the write error.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};

pub fn write(args: std::fmt::Arguments) -> Result<()> {
    std::io::stdout().lock().write_fmt(args).map_err(CliError::Stdout)
}

/// Bytes (a workbook) to the standard output; refused on a terminal,
/// where they would only garble the screen.
pub fn write_bytes(bytes: &[u8]) -> Result<()> {
    use std::io::IsTerminal;
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        return Err(CliError::Flag {
            flag: "format",
            message: "a workbook is binary: redirect it to a file, e.g. `> statement.xlsx`".into(),
        });
    }
    stdout.lock().write_all(bytes).map_err(CliError::Stdout)
}

/// A rendered document: a workbook as bytes (never to a terminal), text as text.
pub fn write_bytes_or_text(bytes: &[u8], workbook: bool) -> Result<()> {
    if workbook {
        return write_bytes(bytes);
    }
    std::io::stdout().lock().write_all(bytes).map_err(CliError::Stdout)
}
