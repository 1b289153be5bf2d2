//! The relay URL: the client's hook, sealed into the URL glgate registers
//! with GitLab, so that any replica holding the key can deliver and nothing
//! needs a shared database.
//!
//! A relay URL is `<receive_url>/-/webhooks/v1/<sealed>`, where `<sealed>`
//! is URL-safe base64 of `nonce ‖ ChaCha20-Poly1305(HookTarget as JSON)`.
//! The AEAD authenticates it: a URL glgate did not make does not open, and
//! GitLab (or anyone reading its hook list) learns nothing of the client's
//! URL or token from it. The secret glgate gives GitLab for the hook
//! (`X-Gitlab-Token` on each delivery) is an HMAC of the sealed part, so it
//! too needs no storage, differs per hook, and is checked in constant time.
//!
//! Keys come from a file of one or more lines, each 32 random bytes in hex
//! (`glgate webhooks new-key`). The first line seals; every line opens, so a
//! key can be rotated by putting the new key first and removing the old one
//! once every hook has been registered again.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;

use super::HookTarget;

/// The path prefix of relay URLs, after the receive URL's own path.
pub(crate) const RELAY_PATH: &str = "/-/webhooks/v1/";
/// Bound on a sealed part we try to open (a client URL is at most a few KiB).
const MAX_SEALED_CHARS: usize = 16 * 1024;
/// Authenticated with every sealed target: a blob made for something else
/// does not open as a relay target.
const AAD: &[u8] = b"glgate webhook relay v1";
const NONCE_LEN: usize = aead::NONCE_LEN;

/// Why the webhook key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    /// The file cannot be read.
    #[error("cannot read the webhook key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not 64 hex digits.
    #[error(
        "{path}:{line}: a webhook key is 64 hex digits (32 random bytes); create one with `glgate webhooks new-key`"
    )]
    Malformed {
        /// The file.
        path: String,
        /// The 1-based line.
        line: usize,
    },
    /// The file holds no key.
    #[error("{path} holds no webhook key; create one with `glgate webhooks new-key > {path}`")]
    Empty {
        /// The file.
        path: String,
    },
    /// The crypto library refused a key derived from a line (it never has:
    /// an HMAC-SHA256 output is 32 bytes, a ChaCha20-Poly1305 key's length).
    #[error(
        "{path}:{line}: this webhook key could not be used; create a new one with `glgate webhooks new-key`"
    )]
    Unusable {
        /// The file.
        path: String,
        /// The 1-based line.
        line: usize,
    },
}

/// A relay URL could not be sealed: no OS randomness for its nonce (or the
/// AEAD refused the input, which a few KiB with a valid key never is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot seal a relay URL (no OS randomness)")]
pub(crate) struct SealError;

/// Why a relay URL's sealed part does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OpenError {
    /// Not base64, too short or too long.
    #[error("not a relay URL glgate made")]
    Malformed,
    /// No key opens it: made with another key, or altered.
    #[error("no webhook key opens this relay URL (another key, or altered)")]
    Unauthentic,
}

/// One webhook key: the sealing key and the hook-secret key, both derived
/// from the 32 bytes in the file, so one secret never serves two purposes.
struct Key {
    seal: LessSafeKey,
    secret: hmac::Key,
}

impl Key {
    /// Both keys from the file's 32 bytes; `None` if the AEAD refuses the
    /// derived sealing key (only a wrong length would, and an HMAC-SHA256
    /// output is exactly a ChaCha20-Poly1305 key's 32 bytes).
    fn derive(master: &[u8; 32]) -> Option<Key> {
        let master = hmac::Key::new(hmac::HMAC_SHA256, master);
        let seal_bytes = hmac::sign(&master, b"glgate webhook seal key");
        let secret_bytes = hmac::sign(&master, b"glgate webhook hook-secret key");
        let unbound = UnboundKey::new(&aead::CHACHA20_POLY1305, seal_bytes.as_ref()).ok()?;
        Some(Key {
            seal: LessSafeKey::new(unbound),
            secret: hmac::Key::new(hmac::HMAC_SHA256, secret_bytes.as_ref()),
        })
    }
}

/// The webhook keys: the first seals, all open.
pub(crate) struct Sealer {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({} key(s), redacted)", self.keys.len())
    }
}

impl Sealer {
    /// Reads the key file: one key per line (64 hex digits), `#` comments
    /// and blank lines ignored.
    pub(crate) fn load(path: &Path) -> Result<Sealer, KeyError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        Sealer::parse(&text, &shown)
    }

    fn parse(text: &str, shown: &str) -> Result<Sealer, KeyError> {
        let mut keys = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut master = [0u8; 32];
            hex::decode_to_slice(line, &mut master).map_err(|_| KeyError::Malformed {
                path: shown.to_owned(),
                line: index + 1,
            })?;
            let key = Key::derive(&master).ok_or_else(|| KeyError::Unusable {
                path: shown.to_owned(),
                line: index + 1,
            })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(KeyError::Empty {
                path: shown.to_owned(),
            });
        }
        Ok(Sealer { keys })
    }

    /// A new key, in the file's format (64 hex digits and a newline).
    pub(crate) fn new_key() -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(format!("{}\n", hex::encode(bytes)))
    }

    /// Seals `target` into the sealed part of a relay URL.
    pub(crate) fn seal(&self, target: &HookTarget) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| SealError)?;
        // Serializing a struct of strings cannot fail.
        let mut data = serde_json::to_vec(target).unwrap_or_default();
        // `parse` refuses a file without a key, so there is a first one.
        let key = &self.keys[0];
        key.seal
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut data,
            )
            .map_err(|_| SealError)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&data);
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// Opens the sealed part of a relay URL made by [`Sealer::seal`] with
    /// any of the keys.
    pub(crate) fn open(&self, sealed: &str) -> Result<HookTarget, OpenError> {
        if sealed.len() > MAX_SEALED_CHARS {
            return Err(OpenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() < NONCE_LEN + aead::CHACHA20_POLY1305.tag_len() {
            return Err(OpenError::Malformed);
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        for key in &self.keys {
            let Ok(nonce) = Nonce::try_assume_unique_for_key(nonce) else {
                return Err(OpenError::Malformed);
            };
            let mut data = data.to_vec();
            if let Ok(plain) = key.seal.open_in_place(nonce, Aad::from(AAD), &mut data) {
                return serde_json::from_slice(plain).map_err(|_| OpenError::Unauthentic);
            }
        }
        Err(OpenError::Unauthentic)
    }

    /// The secret GitLab sends as `X-Gitlab-Token` for the hook whose relay
    /// URL carries `sealed` (hex HMAC-SHA256 under the first key).
    pub(crate) fn hook_secret(&self, sealed: &str) -> String {
        // `parse` refuses a file without a key, so there is a first one.
        hex::encode(hmac::sign(&self.keys[0].secret, sealed.as_bytes()).as_ref())
    }

    /// Whether `presented` is the secret of the hook whose relay URL carries
    /// `sealed`, under any key, compared in constant time.
    pub(crate) fn verify_secret(&self, sealed: &str, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        let mut ok = subtle::Choice::from(0);
        for key in &self.keys {
            let expected = hex::encode(hmac::sign(&key.secret, sealed.as_bytes()).as_ref());
            ok |= expected.as_bytes().ct_eq(presented);
        }
        ok.into()
    }
}

/// GitLab's webhook signing secret (Standard Webhooks: `whsec_` and the
/// base64 of the HMAC key). With it, a delivery must carry `webhook-id`,
/// `webhook-timestamp` and a `webhook-signature` of `v1,` and the base64
/// HMAC-SHA256 of `id.timestamp.body`, with a timestamp near now.
pub(crate) struct SigningSecret {
    key: hmac::Key,
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(redacted)")
    }
}

/// How far a signed delivery's timestamp may be from now (Standard
/// Webhooks' recommended tolerance): older ones are replays.
pub(crate) const SIGNATURE_TOLERANCE_SECS: u64 = 5 * 60;

impl SigningSecret {
    /// Reads `whsec_<base64>` from `text` (surrounding whitespace ignored).
    pub(crate) fn parse(text: &str) -> Option<SigningSecret> {
        let encoded = text.trim().strip_prefix("whsec_")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .filter(|bytes| bytes.len() >= 16)?;
        Some(SigningSecret {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        })
    }

    /// Whether `signature` (the `webhook-signature` header: space-separated
    /// `v1,<base64>` entries) signs `id.timestamp.body`, and `timestamp`
    /// (seconds since the epoch) is within the tolerance of `now`.
    pub(crate) fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signature: &str,
        body: &[u8],
        now_secs: u64,
    ) -> bool {
        let Ok(sent) = timestamp.parse::<u64>() else {
            return false;
        };
        if sent.abs_diff(now_secs) > SIGNATURE_TOLERANCE_SECS {
            return false;
        }
        let mut signed = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
        signed.extend_from_slice(id.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(timestamp.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(body);
        signature.split_ascii_whitespace().any(|entry| {
            entry
                .strip_prefix("v1,")
                .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
                .is_some_and(|tag| hmac::verify(&self.key, &signed, &tag).is_ok())
        })
    }
}

/// The relay URL for `sealed` under `receive_url` (no trailing slash).
pub(crate) fn relay_url(receive_url: &str, sealed: &str) -> String {
    format!("{}{RELAY_PATH}{sealed}", receive_url.trim_end_matches('/'))
}

/// The sealed part of `url` if it is a relay URL under `receive_url`.
pub(crate) fn sealed_part<'u>(receive_url: &str, url: &'u str) -> Option<&'u str> {
    let prefix = receive_url.trim_end_matches('/');
    one_segment(url.strip_prefix(prefix)?.strip_prefix(RELAY_PATH)?)
}

/// The sealed part of a relay URL under any host (the key's authentication
/// says whether it is glgate's, whatever the host, which may have changed
/// since the hook was registered).
pub(crate) fn sealed_part_anywhere(url: &str) -> Option<&str> {
    one_segment(url.rsplit_once(RELAY_PATH)?.1)
}

/// `rest` if it is one non-empty path segment (what a sealed part is).
pub(crate) fn one_segment(rest: &str) -> Option<&str> {
    (!rest.is_empty() && !rest.contains(['/', '?', '#'])).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const KEY_B: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1eff";

    fn target() -> HookTarget {
        HookTarget {
            client: "echoes".into(),
            rule: "project-hooks.create".into(),
            url: "https://api.echoeshq.com/hooks/gitlab/42".into(),
            token: Some("client-secret".into()),
        }
    }

    #[test]
    fn sealed_targets_open_and_hide_what_they_carry() {
        let sealer = Sealer::parse(KEY_A, "k").unwrap();
        let sealed = sealer.seal(&target()).unwrap();
        assert!(!sealed.contains("echoes") && !sealed.contains("client-secret"));
        assert_eq!(sealer.open(&sealed).unwrap(), target());
        // A fresh nonce each time: two registrations never share a URL.
        assert_ne!(sealed, sealer.seal(&target()).unwrap());
    }

    #[test]
    fn altered_or_foreign_blobs_do_not_open() {
        let a = Sealer::parse(KEY_A, "k").unwrap();
        let b = Sealer::parse(KEY_B, "k").unwrap();
        let sealed = a.seal(&target()).unwrap();
        assert_eq!(b.open(&sealed), Err(OpenError::Unauthentic));
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            a.open(&URL_SAFE_NO_PAD.encode(bytes)),
            Err(OpenError::Unauthentic)
        );
        assert_eq!(a.open("not base64!"), Err(OpenError::Malformed));
        assert_eq!(a.open("AAAA"), Err(OpenError::Malformed));
    }

    #[test]
    fn rotation_opens_with_old_keys_and_seals_with_the_first() {
        let old = Sealer::parse(KEY_A, "k").unwrap();
        let sealed = old.seal(&target()).unwrap();
        let rotated = Sealer::parse(&format!("# new first\n{KEY_B}\n{KEY_A}\n"), "k").unwrap();
        assert_eq!(rotated.open(&sealed).unwrap(), target());
        assert!(rotated.verify_secret(&sealed, old.hook_secret(&sealed).as_bytes()));
        let fresh = rotated.seal(&target()).unwrap();
        assert_eq!(old.open(&fresh), Err(OpenError::Unauthentic));
    }

    #[test]
    fn hook_secrets_are_per_hook_and_checked() {
        let sealer = Sealer::parse(KEY_A, "k").unwrap();
        let one = sealer.seal(&target()).unwrap();
        let two = sealer.seal(&target()).unwrap();
        let secret = sealer.hook_secret(&one);
        assert_eq!(secret.len(), 64);
        assert!(sealer.verify_secret(&one, secret.as_bytes()));
        assert!(!sealer.verify_secret(&two, secret.as_bytes()));
        assert!(!sealer.verify_secret(&one, b""));
        assert!(!sealer.verify_secret(&one, &secret.as_bytes()[..63]));
    }

    #[test]
    fn key_files_are_checked_with_their_line() {
        let error = Sealer::parse("# comment\n\nnot-hex\n", "/etc/glgate/webhook-key")
            .err()
            .unwrap()
            .to_string();
        assert!(error.starts_with("/etc/glgate/webhook-key:3:"), "{error}");
        assert!(error.contains("glgate webhooks new-key"), "{error}");
        let error = Sealer::parse("# only a comment\n", "f").err().unwrap();
        assert!(matches!(error, KeyError::Empty { .. }));
        let key = Sealer::new_key().unwrap();
        assert!(Sealer::parse(&key, "f").is_ok());
    }

    #[test]
    fn standard_webhook_signatures_are_checked() {
        let raw = [7u8; 24];
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        let signing = SigningSecret::parse(&secret).unwrap();
        let key = hmac::Key::new(hmac::HMAC_SHA256, &raw);
        let tag = hmac::sign(&key, b"msg_1.1700000000.{\"a\":1}");
        let header = format!(
            "v1,bm90IGl0 v1,{}",
            base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
        );
        let body = b"{\"a\":1}";
        assert!(signing.verify("msg_1", "1700000000", &header, body, 1_700_000_100));
        // Too old or in the future: a replay.
        assert!(!signing.verify("msg_1", "1700000000", &header, body, 1_700_001_000));
        // Another body, id or timestamp.
        assert!(!signing.verify("msg_1", "1700000000", &header, b"{}", 1_700_000_000));
        assert!(!signing.verify("msg_2", "1700000000", &header, body, 1_700_000_000));
        assert!(!signing.verify("msg_1", "1700000001", &header, body, 1_700_000_000));
        assert!(!signing.verify("msg_1", "1700000000", "v1,", body, 1_700_000_000));
        assert!(SigningSecret::parse("secret").is_none());
        assert!(SigningSecret::parse("whsec_c2hvcnQ=").is_none());
    }

    #[test]
    fn relay_urls_are_recognised_only_under_the_receive_url() {
        let url = relay_url("https://glgate.acme.internal/", "abc_-1");
        assert_eq!(url, "https://glgate.acme.internal/-/webhooks/v1/abc_-1");
        assert_eq!(
            sealed_part("https://glgate.acme.internal", &url),
            Some("abc_-1")
        );
        assert_eq!(sealed_part("https://other.example", &url), None);
        assert_eq!(
            sealed_part(
                "https://glgate.acme.internal",
                "https://glgate.acme.internal/-/webhooks/v1/a/b"
            ),
            None
        );
        assert_eq!(
            sealed_part(
                "https://glgate.acme.internal",
                "https://glgate.acme.internal/-/webhooks/v1/"
            ),
            None
        );
    }
}
