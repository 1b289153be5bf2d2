//! `/projects/:id/repository/...`: commits, tags and files.

use serde_json::{Value, json};

use super::Ctx;
use super::pagination::paginate;
use crate::reply::Reply;
use crate::store::{Project, Store};

/// What every repository file contains. The proxy must never let it out.
const FILE_CONTENT: &str = "FAKE-GITLAB-SECRET-FILE-CONTENT: this must never reach a client\n";

/// Dispatches `/projects/:id/repository/...`.
pub(crate) fn route(ctx: &Ctx<'_>, store: &Store, pid: u64, rest: &[&str]) -> Reply {
    let Some(project) = store.project(pid) else {
        return Reply::not_found("Project");
    };
    match (ctx.method, rest) {
        ("GET", ["commits", sha]) => commit(ctx, store, project, sha),
        ("GET", ["tags"]) => tags(ctx, store, project),
        ("GET", ["files", path]) => file(ctx, path),
        ("GET", ["files", _, "raw"]) => {
            Reply::raw("text/plain; charset=utf-8", FILE_CONTENT.into())
        }
        _ => Reply::route_not_found(),
    }
}

/// A 7 to 40 hex digit sha, lowercased and padded with zeros to 40.
fn full_sha(sha: &str) -> Option<String> {
    let valid = (7..=40).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| format!("{:0<40}", sha.to_ascii_lowercase()))
}

/// `GET /projects/:id/repository/commits/:sha`.
fn commit(ctx: &Ctx<'_>, store: &Store, project: &Project, sha: &str) -> Reply {
    match full_sha(sha) {
        Some(sha) => Reply::ok(ctx.render(store).commit(project, &sha, "Fake commit")),
        None => Reply::not_found("Commit"),
    }
}

/// `GET /projects/:id/repository/tags`: two fixed tags, newest first.
fn tags(ctx: &Ctx<'_>, store: &Store, project: &Project) -> Reply {
    let render = ctx.render(store);
    let items: Vec<Value> = [("v1.1.0", "b".repeat(40)), ("v1.0.0", "a".repeat(40))]
        .into_iter()
        .map(|(name, sha)| {
            json!({
                "name": name,
                "message": format!("Release {name}"),
                "target": sha,
                "commit": render.commit(project, &sha, &format!("Release {name}")),
                "release": null,
                "protected": false,
                "created_at": null,
            })
        })
        .collect();
    paginate(ctx, items)
}

/// `GET /projects/:id/repository/files/:file_path`.
fn file(ctx: &Ctx<'_>, path: &str) -> Reply {
    let reference = ctx.params.str("ref").unwrap_or_else(|| "main".into());
    let file_name = path.rsplit('/').next().unwrap_or(path);
    Reply::ok(json!({
        "file_name": file_name,
        "file_path": path,
        "size": FILE_CONTENT.len(),
        "encoding": "base64",
        "content_sha256": "0".repeat(64),
        "ref": reference,
        "blob_id": "c".repeat(40),
        "commit_id": "b".repeat(40),
        "last_commit_id": "b".repeat(40),
        "execute_filemode": false,
        "content": base64(FILE_CONTENT.as_bytes()),
    }))
}

/// Standard base64 with padding.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn shas() {
        assert_eq!(
            full_sha("ABCDEF1").unwrap(),
            format!("abcdef1{}", "0".repeat(33))
        );
        assert!(full_sha("abc").is_none());
        assert!(full_sha("main").is_none());
        assert!(full_sha(&"g".repeat(40)).is_none());
    }
}
