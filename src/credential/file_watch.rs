//! Re-reading `token_file` when it changes.
//!
//! A periodic check (size, modification time, inode) rather than inotify:
//! Kubernetes updates a mounted Secret by swapping a symlinked folder, which
//! a watch on the file misses, while `metadata` follows the link and sees a
//! new inode. Reading a small file every few seconds costs nothing.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Credential, ready_personal};
use crate::config::TokenSource;
use crate::gitlab::UpstreamToken;

/// What identifies one version of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Signature {
    len: u64,
    modified_ns: i128,
    inode: u64,
    device: u64,
}

/// The watch on one token file.
#[derive(Debug)]
pub(super) struct FileWatch {
    path: PathBuf,
    seen: Option<Signature>,
    failing: Option<String>,
    /// Whether "the file is ignored while a rotated token is unsaved" was logged.
    unsaved_logged: bool,
}

impl FileWatch {
    /// A watch on `path`; its first check reads the file.
    pub(super) fn new(path: PathBuf) -> FileWatch {
        FileWatch {
            path,
            seen: None,
            failing: None,
            unsaved_logged: false,
        }
    }

    /// The watched file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the file's token if the file changed. A missing, unreadable,
    /// empty or malformed file keeps the current token and is logged as an
    /// error (naming the file, never the token).
    pub(super) fn check(&mut self, credential: &Credential) {
        if credential.shared.has_unsaved() {
            // The file holds the token a rotation revoked; the only valid
            // one is in memory and is being saved (see `rotate`).
            let signature = signature(&self.path).ok();
            if self.seen != signature || !self.unsaved_logged {
                tracing::error!(
                    file = %self.path.display(),
                    "the token file is ignored: it holds the token auto_rotate revoked, and the new token could not be saved to it yet (retrying); fix the folder and do not restart glgate until the save is logged"
                );
                self.unsaved_logged = true;
            }
            self.seen = signature;
            self.failing = None;
            return;
        }
        self.unsaved_logged = false;
        let signature = match signature(&self.path) {
            Ok(signature) => signature,
            Err(error) => {
                self.fail(format!(
                    "cannot read token file {}: {error}",
                    self.path.display()
                ));
                return;
            }
        };
        if self.seen == Some(signature) && self.failing.is_none() {
            return;
        }
        self.seen = Some(signature);
        let token = match UpstreamToken::read(&TokenSource::File(self.path.clone())) {
            Ok(token) => token,
            Err(error) => {
                self.fail(error.to_string());
                return;
            }
        };
        if self.failing.take().is_some() {
            tracing::info!(file = %self.path.display(), "the token file is readable again");
        }
        let unchanged = credential
            .shared
            .current_token()
            .is_some_and(|current| current.same_as(&token));
        if !unchanged {
            credential.install(ready_personal(token));
            tracing::info!(
                file = %self.path.display(),
                "token file changed: the new GitLab token is used from the next request"
            );
        }
    }

    fn fail(&mut self, message: String) {
        // Logged again only when the problem changes, so a broken file does
        // not flood the log, but each new problem is seen.
        if self.failing.as_deref() != Some(&message) {
            tracing::error!(
                "{message}; still using the previous GitLab token: fix the file (a non-empty single line)"
            );
        }
        self.failing = Some(message);
    }
}

pub(super) fn signature(path: &Path) -> std::io::Result<Signature> {
    let meta = std::fs::metadata(path)?;
    Ok(Signature {
        len: meta.len(),
        modified_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        inode: meta.ino(),
        device: meta.dev(),
    })
}
