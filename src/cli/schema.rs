//! `glgate schema`: print the JSON Schema of the config or policy file format.

use std::process::ExitCode;

use super::args::SchemaChoice;
use super::exit::Exit;
use crate::schema::{SchemaKind, render};

/// `glgate schema config|policy`: prints the schema; always exit 0.
pub(super) fn run(kind: SchemaChoice) -> ExitCode {
    let kind = match kind {
        SchemaChoice::Config => SchemaKind::Config,
        SchemaChoice::Policy => SchemaKind::Policy,
    };
    print!("{}", render(kind));
    Exit::Ok.into()
}
