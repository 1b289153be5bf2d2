//! `glgate schema`: print the JSON Schema of the config, policy or webhook payload policy file format.

use std::process::ExitCode;

use super::args::SchemaChoice;
use super::exit::Exit;
use crate::schema::{SchemaKind, render};

/// `glgate schema config|policy|webhook-policy`: prints the schema; always exit 0.
pub(super) fn run(kind: SchemaChoice) -> ExitCode {
    let kind = match kind {
        SchemaChoice::Config => SchemaKind::Config,
        SchemaChoice::Policy => SchemaKind::Policy,
        SchemaChoice::WebhookPolicy => SchemaKind::WebhookPolicy,
    };
    print!("{}", render(kind));
    Exit::Ok.into()
}
