//! The `glgate` binary: parse the command line, run the command, exit.
//! Everything else is in the library, starting at `glgate::cli::run`.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use glgate::cli::Cli;

fn main() -> ExitCode {
    glgate::cli::run(Cli::parse())
}
