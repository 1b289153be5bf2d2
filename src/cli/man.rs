//! `glgate man`: the man page in roff, generated from the clap tree (the
//! same help texts as `--help`, "Environment:" sections included). Printed
//! at run time rather than by a build script, so a packager runs the built
//! binary once (`glgate man --out-dir DIR`) and the build stays plain.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_mangen::Man;

use super::args::Cli;
use super::exit::Exit;

/// `glgate man [--out-dir DIR]`: prints glgate(1), or writes glgate.1 and
/// glgate-COMMAND.1 for every command into DIR; exit 0, or 2 when a page
/// cannot be written.
pub(super) fn run(out_dir: Option<&Path>) -> ExitCode {
    let command = Cli::command();
    let result = match out_dir {
        None => print_page(command),
        Some(dir) => write_pages(command, dir),
    };
    match result {
        Ok(()) => Exit::Ok.into(),
        Err(error) => {
            let place = out_dir.map_or_else(
                || "standard output".to_owned(),
                |dir| dir.display().to_string(),
            );
            eprintln!("glgate man: cannot write the man page to {place}: {error}");
            Exit::Error.into()
        }
    }
}

/// Renders into memory, then prints: a closed pipe (`| head`) becomes an
/// error message, not a half-written page.
fn print_page(command: clap::Command) -> std::io::Result<()> {
    let mut text = Vec::new();
    page(command).render(&mut text)?;
    std::io::stdout().write_all(&text)
}

/// One page, titled in capitals as man pages are (`.TH GLGATE 1`).
fn page(command: clap::Command) -> Man {
    let mut command = command;
    command.build();
    let title = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_uppercase();
    // Subcommands carry no version of their own: name glgate's on every page.
    Man::new(command)
        .title(title)
        .source(format!("glgate {}", env!("CARGO_PKG_VERSION")))
        .manual("glgate manual")
}

/// The page of `command` and of each of its subcommands, recursively
/// (`glgate-policy-explain.1`, …), into `dir`.
fn write_pages(command: clap::Command, dir: &Path) -> std::io::Result<()> {
    // Built once at the top so every subcommand has its display name
    // (`glgate-serve`), which names its file; `help` gets no page.
    let mut command = command.disable_help_subcommand(true);
    command.build();
    write_tree(command, dir)
}

fn write_tree(command: clap::Command, dir: &Path) -> std::io::Result<()> {
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_tree(sub.clone(), dir)?;
    }
    page(command).generate_to(dir).map(|_| ())
}
