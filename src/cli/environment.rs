//! The "Environment:" sections of `--help` (and of the man page, which is
//! generated from the same tree): every variable glgate reads, named on the
//! top-level command and on each command that reads it. A test in
//! `tests/e2e/cli_conventions.rs` scans the sources so a new `env::var` cannot be
//! added without a line here.

/// On `glgate --help`: every variable, with the commands that read it.
pub(super) const ALL: &str = "\
Environment:
  GLGATE_LOG                  serve: which log lines to print, in tracing's filter syntax
                              (default: info; e.g. GLGATE_LOG=glgate=debug,info)
  the variable named by       serve, check, doctor, scope show: the GitLab token, when the
  upstream.token_env          config names a variable (e.g. token_env: GITLAB_TOKEN)
  SSL_CERT_FILE, SSL_CERT_DIR serve, doctor, scope show, token rotate, oauth login: replace
                              the system's CA certificates trusted for GitLab (upstream.ca_file
                              adds to them)
  CI_MERGE_REQUEST_LABELS     check-labels: the merge request's labels, comma-separated
  CI_PIPELINE_SOURCE          check-labels: merge_request_event marks a merge-request pipeline
  CI_MERGE_REQUEST_IID        check-labels: set in merge-request pipelines";

/// On `glgate serve --help`.
pub(super) const SERVE: &str = "\
Environment:
  GLGATE_LOG                  which log lines to print, in tracing's filter syntax
                              (default: info; e.g. GLGATE_LOG=glgate=debug,info)
  the variable named by       the GitLab token, when the config names a variable
  upstream.token_env          (e.g. token_env: GITLAB_TOKEN); read at start and on reload
  SSL_CERT_FILE, SSL_CERT_DIR replace the system's CA certificates trusted for GitLab";

/// On `glgate check --help`.
pub(super) const CHECK: &str = "\
Environment:
  the variable named by       the GitLab token, when the config names a variable: check
  upstream.token_env          reports it unset or malformed, as serve would";

/// On the commands that call GitLab with the configured token
/// (`doctor`, `scope show`).
pub(super) const GITLAB_WITH_TOKEN: &str = "\
Environment:
  the variable named by       the GitLab token, when the config names a variable
  upstream.token_env          (e.g. token_env: GITLAB_TOKEN)
  SSL_CERT_FILE, SSL_CERT_DIR replace the system's CA certificates trusted for GitLab";

/// On the commands that call GitLab with a credential from a file
/// (`token rotate`, `oauth login`).
pub(super) const GITLAB_TLS: &str = "\
Environment:
  SSL_CERT_FILE, SSL_CERT_DIR replace the system's CA certificates trusted for GitLab";

/// On `glgate check-labels --help`.
pub(super) const CHECK_LABELS: &str = "\
Environment (set by GitLab CI):
  CI_MERGE_REQUEST_LABELS     the merge request's labels, comma-separated; unset when it has none
  CI_PIPELINE_SOURCE          merge_request_event marks a merge-request pipeline
  CI_MERGE_REQUEST_IID        set in merge-request pipelines";
