//! `glgate completions SHELL`: the shell completion script, generated from
//! the clap tree so it never lags behind the flags.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use super::args::Cli;
use super::exit::Exit;

/// `glgate completions bash|zsh|fish|elvish|powershell`: prints the script;
/// exit 0, or 2 when standard output cannot be written.
pub(super) fn run(shell: Shell) -> ExitCode {
    let mut command = Cli::command();
    // Into memory first: `generate` panics on a write error (a closed pipe,
    // `| head`), and a write to a Vec cannot fail.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "glgate", &mut script);
    match std::io::stdout().write_all(&script) {
        Ok(()) => Exit::Ok.into(),
        Err(error) => {
            eprintln!("glgate completions: cannot write the script to standard output: {error}");
            Exit::Error.into()
        }
    }
}
