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
