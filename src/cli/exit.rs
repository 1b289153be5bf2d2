//! How a command ends (one exit-code type for every command) and the one
//! way commands build their async runtime.

/// The process exit code of every `glgate` command, in one place so that a
/// script's `case $?` can rely on them. The numbers are a public contract:
/// never renumber a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// 0: the command did what was asked and has nothing to report (all
    /// commands; `policy explain`: the request is allowed).
    Ok = 0,
    /// 1: the answer is "no" or the command failed after it started:
    /// `policy test` failing cases, `webhooks test` a dropped delivery,
    /// `policy diff` differences, `policy replay`
    /// changed decisions, `policy permissions` endpoints GitLab's table does
    /// not map, `check-labels` problems, `policy explain` a refused
    /// request, `check` an invalid config, `probe` no 2xx answer, `doctor` a
    /// failed check or timeout, `scope show` a scope entry unknown to GitLab,
    /// `client new` no randomness, `serve` a failed start or signal setup,
    /// `token rotate` / `oauth login` GitLab refused or failed (the current
    /// credential is unchanged); `probe`, `serve` and `oauth login` also when
    /// the async runtime cannot start.
    Found = 1,
    /// 2: usage, config or file error before any work was done (`policy
    /// test/show/diff/replay/permissions`, `webhooks test/show`, `check-labels`, `policy explain`, `probe` a bad
    /// URL, `client new` a bad name, `doctor` and `scope show` no runtime,
    /// `scope show` an unknown client or unreadable scope, `token rotate` /
    /// `oauth login` an unusable config or argument).
    Error = 2,
    /// 3: `token rotate` / `oauth login`: GitLab issued a new secret (and
    /// revoked the old one) but it could not be saved; it was printed instead.
    NotSaved = 3,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        // `repr(u8)` makes the discriminant the exit code itself.
        Self::from(exit as u8)
    }
}

/// Which tokio scheduler a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// One thread: enough for the one-shot commands (probe, doctor, …).
    CurrentThread,
    /// A worker per core: `serve` handles many connections at once.
    MultiThread,
}

/// The async runtime could not be built; its text is the message callers print.
#[derive(Debug)]
pub(crate) struct RuntimeError(std::io::Error);

impl std::fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot start the async runtime: {}", self.0)
    }
}

impl std::error::Error for RuntimeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Builds the tokio runtime (I/O and timers enabled) every command runs on.
///
/// The error is returned, not printed, because each command reports it with
/// its own prefix and exit code.
pub(crate) fn runtime(flavour: Flavour) -> Result<tokio::runtime::Runtime, RuntimeError> {
    let mut builder = match flavour {
        Flavour::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavour::MultiThread => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build().map_err(RuntimeError)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scripts match on these numbers; a renumbering must fail here first.
    #[test]
    fn exit_codes_are_the_documented_numbers() {
        assert_eq!(Exit::Ok as u8, 0);
        assert_eq!(Exit::Found as u8, 1);
        assert_eq!(Exit::Error as u8, 2);
        assert_eq!(Exit::NotSaved as u8, 3);
        assert_eq!(
            std::process::ExitCode::from(Exit::NotSaved),
            std::process::ExitCode::from(3)
        );
    }

    #[test]
    fn both_runtime_flavours_run_a_future() {
        for flavour in [Flavour::CurrentThread, Flavour::MultiThread] {
            let runtime = runtime(flavour).unwrap();
            assert_eq!(runtime.block_on(async { 7 }), 7);
        }
    }
}
