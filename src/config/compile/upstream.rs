//! The `upstream:` section: GitLab's URLs, where the token comes from, and
//! the bounds and TLS identity of the connection to GitLab.

use std::time::Duration;

use serde_saphyr::Spanned;

use super::Compiler;
use crate::config::raw::{RawOAuth, RawUpstream};
use crate::config::{
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_OAUTH_REDIRECT_URI, DEFAULT_TOKEN_RELOAD_INTERVAL,
    OAuthSettings, TokenSource, UpstreamConfig,
};

impl Compiler<'_> {
    pub(super) fn upstream(&mut self, raw: &Spanned<RawUpstream>) -> Option<UpstreamConfig> {
        let upstream = &raw.value;
        let url = self.base_url(&upstream.url, "upstream.url");
        let external_url = match &upstream.external_url {
            Some(external) => self.base_url(external, "upstream.external_url"),
            None => url.clone(),
        };
        let token = match (&upstream.token_env, &upstream.token_file, &upstream.oauth) {
            (Some(env), None, None) if !env.value.is_empty() => {
                Some(TokenSource::Env(env.value.clone()))
            }
            (None, Some(file), None) if !file.value.is_empty() => {
                Some(TokenSource::File(self.resolve(&file.value)))
            }
            (None, None, Some(oauth)) => self.oauth(oauth).map(TokenSource::OAuth),
            _ => {
                self.problem(
                    raw,
                    "upstream",
                    "give exactly one of 'token_env', 'token_file' or 'oauth'".into(),
                    Some(
                        "token_env: GITLAB_TOKEN, or token_file: /run/secrets/gitlab-token, or oauth: {client_id, client_secret_file, refresh_token_file}",
                    ),
                );
                None
            }
        };
        let token_reload_interval = self.duration(
            upstream.token_reload_interval.as_ref(),
            "upstream.token_reload_interval",
            DEFAULT_TOKEN_RELOAD_INTERVAL,
        );
        if let Some(interval) = &upstream.token_reload_interval
            && upstream.token_file.is_none()
        {
            self.problem(
                interval,
                "upstream.token_reload_interval",
                "only a token_file is reloaded".into(),
                Some("remove token_reload_interval, or read the token from token_file"),
            );
        }
        let auto_rotate = upstream.auto_rotate.as_ref().map(|rotate| {
            if upstream.token_file.is_none() {
                self.problem(
                    rotate,
                    "upstream.auto_rotate",
                    "auto_rotate needs a token_file to write the new token to: GitLab revokes the old token at once, so a rotated token that is not saved is lost".into(),
                    Some("read the token from token_file: /run/secrets/gitlab-token, or remove auto_rotate"),
                );
            }
            self.duration(
                Some(&rotate.value.before_expiry),
                "upstream.auto_rotate.before_expiry",
                Duration::from_secs(7 * 86_400),
            )
        });
        let plain_http_elsewhere = url
            .as_ref()
            .is_some_and(|url| !url.is_https() && !url.is_loopback());
        if plain_http_elsewhere && !upstream.danger_allow_plain_http {
            self.problem(
                &upstream.url,
                "upstream.url",
                "plain http to a GitLab on another host would send the GitLab token unencrypted".into(),
                Some("use https://, or set upstream.danger_allow_plain_http: true on a network you trust"),
            );
        }
        let ca_file = upstream.ca_file.as_ref().map(|f| self.resolve(&f.value));
        let connect_timeout = self.duration(
            upstream.connect_timeout.as_ref(),
            "upstream.connect_timeout",
            Duration::from_secs(5),
        );
        let response_timeout = self.duration(
            upstream.response_timeout.as_ref(),
            "upstream.response_timeout",
            Duration::from_secs(60),
        );
        let body_idle_timeout = self.duration(
            upstream.body_idle_timeout.as_ref(),
            "upstream.body_idle_timeout",
            Duration::from_secs(30),
        );
        let max_response_bytes = upstream
            .max_response_bytes
            .as_ref()
            .map_or(DEFAULT_MAX_RESPONSE_BYTES, |v| v.value);
        let client_identity = match (&upstream.client_cert_file, &upstream.client_key_file) {
            (Some(cert), Some(key)) => Some((self.resolve(&cert.value), self.resolve(&key.value))),
            (None, None) => None,
            (Some(file), None) | (None, Some(file)) => {
                self.problem(
                    file,
                    "upstream",
                    "client_cert_file and client_key_file go together".into(),
                    None,
                );
                None
            }
        };
        Some(UpstreamConfig {
            client_identity,
            body_idle_timeout,
            max_response_bytes,
            url: url?,
            external_url: external_url?,
            token: token?,
            token_reload_interval,
            auto_rotate,
            ca_file,
            connect_timeout,
            response_timeout,
        })
    }

    fn oauth(&mut self, raw: &Spanned<RawOAuth>) -> Option<OAuthSettings> {
        let oauth = &raw.value;
        let mut ok = true;
        for (value, key) in [
            (&oauth.client_id, "upstream.oauth.client_id"),
            (
                &oauth.client_secret_file,
                "upstream.oauth.client_secret_file",
            ),
            (
                &oauth.refresh_token_file,
                "upstream.oauth.refresh_token_file",
            ),
        ] {
            if value.value.trim().is_empty() {
                self.problem(value, key, "must not be empty".into(), None);
                ok = false;
            }
        }
        let redirect_uri = match &oauth.redirect_uri {
            Some(uri) => {
                let loopback = uri
                    .value
                    .strip_prefix("http://127.0.0.1:")
                    .and_then(|rest| rest.split_once('/'))
                    .is_some_and(|(port, _)| port.parse::<u16>().is_ok_and(|p| p != 0));
                if !loopback {
                    self.problem(
                        uri,
                        "upstream.oauth.redirect_uri",
                        format!("'{}' is not a loopback redirect URI", uri.value),
                        Some("http://127.0.0.1:PORT/callback, as registered for the application"),
                    );
                    ok = false;
                }
                uri.value.clone()
            }
            None => DEFAULT_OAUTH_REDIRECT_URI.to_owned(),
        };
        ok.then(|| OAuthSettings {
            client_id: oauth.client_id.value.clone(),
            client_secret_file: self.resolve(&oauth.client_secret_file.value),
            refresh_token_file: self.resolve(&oauth.refresh_token_file.value),
            redirect_uri,
        })
    }
}
