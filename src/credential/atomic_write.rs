//! Writing a secret file so that readers see the old content or the new one,
//! never a mix or nothing: a temporary file in the same folder (mode 0600),
//! fsync, rename over the target, fsync the folder.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why the file could not be written. The secret is never part of it.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct WriteError {
    /// The target file.
    pub path: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

/// Replaces `path` with `secret` and a newline, atomically, mode 0600. A
/// symbolic link is followed: its target is replaced, the link stays.
pub(crate) fn write_secret_file(path: &Path, secret: &str) -> Result<(), WriteError> {
    let error = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    let real = real_path(path);
    let temporary = temporary_path(&real).map_err(error)?;
    let result = write_and_rename(&temporary, &real, secret);
    if result.is_err() {
        // Nothing useful can be done if the leftover cannot be removed.
        let _ = std::fs::remove_file(&temporary);
    }
    result.map_err(error)
}

/// Whether a secret of `len` bytes could be written next to `path` right
/// now: creates a temporary file there, writes and syncs a placeholder of
/// that length (so a full disk shows), and removes it. Checked before asking
/// GitLab for a new token, because GitLab revokes the old one at once.
pub(crate) fn check_writable(path: &Path, len: usize) -> Result<(), WriteError> {
    let error = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    let temporary = temporary_path(&real_path(path)).map_err(error)?;
    let mut file = create_private(&temporary).map_err(error)?;
    let written = file
        .write_all(&vec![b'x'; len + 1])
        .and_then(|()| file.sync_all());
    drop(file);
    let removed = std::fs::remove_file(&temporary);
    written.and(removed).map_err(error)
}

/// `path` with symbolic links resolved (so a linked token file is replaced
/// where it really is, and stays linked); `path` itself when it does not
/// exist yet.
fn real_path(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Writes `secret` to a new file `<path>.unsaved` (or `<path>.unsaved.<n>`
/// when that exists), created exclusively with mode 0600 and synced: an
/// emergency copy when `path` itself cannot be replaced. Returns its path.
pub(crate) fn write_emergency_copy(path: &Path, secret: &str) -> Result<PathBuf, WriteError> {
    let error = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    let mut last = std::io::Error::other("no free name for an emergency copy");
    for attempt in 0..10u32 {
        let mut name = path.as_os_str().to_os_string();
        name.push(".unsaved");
        if attempt > 0 {
            name.push(format!(".{attempt}"));
        }
        let copy = PathBuf::from(name);
        match create_private(&copy) {
            Ok(mut file) => {
                let written = file
                    .write_all(secret.as_bytes())
                    .and_then(|()| file.write_all(b"\n"))
                    .and_then(|()| file.sync_all());
                if let Err(source) = written {
                    let _ = std::fs::remove_file(&copy);
                    return Err(error(source));
                }
                return Ok(copy);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(error(e)),
        }
    }
    Err(error(last))
}

fn temporary_path(path: &Path) -> std::io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(format!(".{}.tmp", hex::encode(nonce)));
    Ok(folder(path).join(temporary))
}

fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

fn write_and_rename(temporary: &Path, path: &Path, secret: &str) -> std::io::Result<()> {
    let mut file = create_private(temporary)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(temporary, path)?;
    // The rename is durable only once the folder is synced.
    File::open(folder(path))?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "old\n").unwrap();
        write_secret_file(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_folder_is_an_error_that_names_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("token");
        let error = write_secret_file(&path, "s3cret").unwrap_err();
        assert!(!error.to_string().contains("s3cret"));
        assert!(check_writable(&path, 40).is_err());
    }

    #[test]
    fn a_symlinked_file_is_replaced_where_it_points() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let target = dir.path().join("real").join("token");
        std::fs::write(&target, "old\n").unwrap();
        let link = dir.path().join("token");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        check_writable(&link, 40).unwrap();
        write_secret_file(&link, "new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
        assert_eq!(
            std::fs::read_dir(dir.path().join("real")).unwrap().count(),
            1
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
