//! The compiler: raw serde structs (`raw.rs`) checked into the model
//! (`model.rs`). Each section has its own child module; this one holds the
//! compiler's state, the top-level walk and the readers every section shares
//! (paths, addresses, URLs, durations, networks, rate limits). A problem is
//! recorded with its position and key and compiling goes on, so one run
//! reports every mistake.

mod clients;
mod limits;
mod scope;
mod upstream;
mod webhooks;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde_saphyr::Spanned;

use super::raw::{RawConfig, RawRateLimit, RawTls};
use super::{AuditOutput, BaseUrl, CONFIG_VERSION, Config, RateLimit, TlsSettings};
use crate::diagnostic::{Diagnostic, Diagnostics, Position};
use crate::policy::Policy;

/// Default of `admin.max_connections`: enough for probes and scrapers, few
/// enough that a flood of the admin port costs little.
const ADMIN_MAX_CONNECTIONS: u64 = 64;

/// Checks `raw`, read from `source`, into a [`Config`], or returns every
/// problem found. Relative paths are anchored at `source`'s folder.
pub(super) fn compile(source: &Path, raw: RawConfig) -> Result<Config, Diagnostics> {
    Compiler::new(source).run(raw)
}

/// One compile run: where the file is, and what it found so far.
struct Compiler<'a> {
    source: &'a Path,
    folder: PathBuf,
    problems: Diagnostics,
    /// Each policy file compiled once, `None` when it failed.
    policies: HashMap<PathBuf, Option<Arc<Policy>>>,
}

impl<'a> Compiler<'a> {
    fn new(source: &'a Path) -> Compiler<'a> {
        let folder = source
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Compiler {
            source,
            folder,
            problems: Diagnostics::default(),
            policies: HashMap::new(),
        }
    }

    fn problem<T>(&mut self, at: &Spanned<T>, key: &str, message: String, hint: Option<&str>) {
        let mut diagnostic = Diagnostic::new(self.source, Position::of(at), key, message);
        diagnostic.hint = hint.map(str::to_owned);
        self.problems.push(diagnostic);
    }

    fn run(mut self, raw: RawConfig) -> Result<Config, Diagnostics> {
        if raw.version.value != CONFIG_VERSION {
            self.problem(
                &raw.version,
                "version",
                format!("unsupported config version {}", raw.version.value),
                Some("this glgate reads version 1"),
            );
        }
        let listen = self.address(&raw.listen, "listen");
        if listen.is_some_and(|addr| !addr.ip().is_loopback()) && raw.public_url.is_none() {
            self.problem(
                &raw.listen,
                "public_url",
                "glgate listens beyond this host, so clients need to be told how to reach it"
                    .into(),
                Some("set public_url to the URL clients use, e.g. https://glgate.acme.com"),
            );
        }
        let public_url = raw
            .public_url
            .as_ref()
            .and_then(|url| self.base_url(url, "public_url"));
        let upstream = self.upstream(&raw.upstream);
        let limits = self.limits(raw.limits.as_ref());
        let tls = raw.tls.as_ref().map(|tls| self.tls(tls));
        let webhooks = raw
            .webhooks
            .as_ref()
            .map(|webhooks| self.webhooks(webhooks));
        let clients = self.clients(
            &raw.clients,
            limits.client_rate_limit,
            tls.as_ref(),
            webhooks.is_some(),
        );
        let trusted_proxies = self.networks(&raw.trusted_proxies, "trusted_proxies");
        let scope_cache = self.scope_cache(raw.scope_cache.as_ref());
        let admin_listen = raw
            .admin
            .as_ref()
            .and_then(|admin| self.address(&admin.listen, "admin.listen"));
        let admin_max_connections = self.positive(
            raw.admin
                .as_ref()
                .and_then(|admin| admin.max_connections.as_ref()),
            "admin.max_connections",
            ADMIN_MAX_CONNECTIONS,
        ) as usize;
        let audit = match raw.audit.as_ref().map(|a| a.output.value.as_str()) {
            None | Some("stdout") => AuditOutput::Stdout,
            Some("stderr") => AuditOutput::Stderr,
            Some(path) => AuditOutput::File(self.resolve(path)),
        };
        let (Some(listen), Some(upstream), Some(webhooks)) = (
            listen,
            upstream,
            webhooks.map_or(Some(None), |w| w.map(Some)),
        ) else {
            return Err(self.problems);
        };
        let config = Config {
            source: self.source.to_path_buf(),
            listen,
            public_url,
            upstream,
            clients,
            admin_listen,
            admin_max_connections,
            audit,
            limits,
            tls,
            trusted_proxies,
            scope_cache,
            webhooks,
        };
        self.problems.into_result(config)
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.folder.join(path)
        }
    }

    fn address(&mut self, value: &Spanned<String>, key: &str) -> Option<SocketAddr> {
        match value.value.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.problem(
                    value,
                    key,
                    format!("'{}' is not an address", value.value),
                    Some("an IP address and port, e.g. 127.0.0.1:8080 or [::]:8443"),
                );
                None
            }
        }
    }

    fn base_url(&mut self, value: &Spanned<String>, key: &str) -> Option<BaseUrl> {
        match BaseUrl::parse(&value.value) {
            Ok(url) => Some(url),
            Err(message) => {
                self.problem(
                    value,
                    key,
                    message,
                    Some("e.g. https://gitlab.example.com or https://host/gitlab"),
                );
                None
            }
        }
    }

    fn duration(
        &mut self,
        value: Option<&Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Duration {
        let Some(value) = value else {
            return default;
        };
        match humantime::parse_duration(&value.value) {
            Ok(duration) if !duration.is_zero() => duration,
            _ => {
                self.problem(
                    value,
                    key,
                    format!("'{}' is not a duration", value.value),
                    Some("e.g. 500ms, 10s, 2m"),
                );
                default
            }
        }
    }

    fn tls(&mut self, raw: &Spanned<RawTls>) -> TlsSettings {
        let tls = &raw.value;
        if tls.require_client_cert && tls.client_ca_file.is_none() {
            self.problem(
                raw,
                "tls.require_client_cert",
                "client certificates cannot be required without a CA to check them".into(),
                Some("set tls.client_ca_file"),
            );
        }
        TlsSettings {
            cert_file: self.resolve(&tls.cert_file.value),
            key_file: self.resolve(&tls.key_file.value),
            client_ca_file: tls.client_ca_file.as_ref().map(|f| self.resolve(&f.value)),
            require_client_cert: tls.require_client_cert,
            reload_interval: self.duration(
                tls.reload_interval.as_ref(),
                "tls.reload_interval",
                Duration::from_secs(10),
            ),
        }
    }

    fn networks(&mut self, raw: &[Spanned<String>], key: &str) -> Vec<IpNet> {
        raw.iter()
            .filter_map(|text| {
                let value = text.value.trim();
                let parsed = value
                    .parse::<IpNet>()
                    .or_else(|_| value.parse::<std::net::IpAddr>().map(IpNet::from));
                match parsed {
                    Ok(net) => Some(net.trunc()),
                    Err(_) => {
                        self.problem(
                            text,
                            key,
                            format!("'{value}' is not a network"),
                            Some(
                                "an address or a CIDR block, e.g. 203.0.113.0/24 or 2001:db8::/32",
                            ),
                        );
                        None
                    }
                }
            })
            .collect()
    }

    fn rate_limit(&mut self, raw: &Spanned<RawRateLimit>, key: &str) -> Option<RateLimit> {
        let rate = &raw.value;
        if rate.per_second.is_finite() && rate.per_second > 0.0 && rate.burst >= 1 {
            Some(RateLimit {
                per_second: rate.per_second,
                burst: rate.burst,
            })
        } else {
            self.problem(
                raw,
                key,
                "a rate limit needs per_second > 0 and burst >= 1".into(),
                Some("e.g. { per_second: 20, burst: 40 }"),
            );
            None
        }
    }

    fn positive<T: Copy + Into<u64>>(
        &mut self,
        value: Option<&Spanned<T>>,
        key: &str,
        default: u64,
    ) -> u64 {
        match value {
            Some(v) if v.value.into() > 0 => v.value.into(),
            Some(v) => {
                self.problem(v, key, "must be at least 1".into(), None);
                default
            }
            None => default,
        }
    }
}
