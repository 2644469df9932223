//! The `leoflow` binary: parses the command line, runs the command, and reports failures
//! on stderr (every problem as `file:line: message`) with exit code 1.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use leoflow_lite::cli::{self, Cli};
use leoflow_lite::Error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    cli::run(cli)?;
    Ok(())
}

fn report(e: &anyhow::Error) {
    let prefix = if colour() {
        "\x1b[1;31merror:\x1b[0m"
    } else {
        "error:"
    };
    match e.downcast_ref::<Error>() {
        Some(Error::Failed(diagnostics)) => {
            for d in &diagnostics.0 {
                eprintln!("{d}");
            }
            let n = diagnostics.0.len();
            eprintln!(
                "{prefix} {n} problem{} found",
                if n == 1 { "" } else { "s" }
            );
        }
        _ => eprintln!("{prefix} {e:#}"),
    }
}

/// Colour only on a terminal, and never with `NO_COLOR` set (https://no-color.org).
fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}
