//! Resolution of a project or group id (numeric, or a full path in any letter
//! case) to GitLab's canonical object, with glgate's own token.
//!
//! Results are cached for a bounded time and count, and concurrent lookups of
//! one id share a single upstream call (single flight). The cache holds facts
//! about GitLab's objects, never scope decisions: every request decides
//! afresh against its client's current scope. Failures are never cached, so
//! the next request tries again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::{FullPath, Kind};
use crate::config::CacheSettings;
use crate::upstream::{Upstream, UpstreamError};

/// A project or group as GitLab names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// Project or group.
    pub kind: Kind,
    /// GitLab's numeric id.
    pub id: u64,
    /// The canonical full path (`path_with_namespace` or `full_path`).
    pub path: FullPath,
}

/// What GitLab says about an id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The object exists and the token can see it.
    Found(Arc<Resolved>),
    /// GitLab answered 404: no such object, or the token cannot see it.
    NotFound,
}

/// Why an id could not be resolved. Messages never name the upstream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResolveError {
    /// GitLab could not be reached, or did not answer in time.
    #[error("GitLab could not be reached")]
    Unavailable,
    /// GitLab answered with an unexpected status.
    #[error("GitLab answered {0}")]
    Status(u16),
    /// GitLab's answer was not the object expected.
    #[error("GitLab's answer did not describe a {0}")]
    Malformed(Kind),
}

/// How recent a cached answer the caller accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Anything within the cache's time to live (reads).
    Cached,
    /// Only an answer fetched for this request or one already in flight
    /// (writes: a transfer must not be missed).
    Fresh,
}

/// Where an answer came from (for metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The cache had it.
    Hit,
    /// Fetched from GitLab by this request, or by one it joined.
    Miss,
}

impl Source {}

/// How a request names an object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Id {
    Numeric(u64),
    Path(String),
}

impl Id {
    /// GitLab reads an all-digit `:id` as a numeric id, anything else as a
    /// full path (case-insensitive).
    fn parse(text: &str) -> Id {
        if !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && let Ok(id) = text.parse()
        {
            return Id::Numeric(id);
        }
        Id::Path(text.to_ascii_lowercase())
    }

    /// The id as a path segment: digits, or the path percent-encoded
    /// (`/` included) so that it stays one segment.
    fn segment(&self) -> String {
        match self {
            Id::Numeric(id) => id.to_string(),
            Id::Path(path) => crate::canonical::encode_component(path),
        }
    }
}

type Key = (Kind, Id);

/// How long a "not found" is reused at most: a project created meanwhile
/// should not stay invisible for a whole ttl, and junk spellings should not
/// crowd out real answers.
const NOT_FOUND_TTL: Duration = Duration::from_secs(5);

/// Longest id looked up: GitLab's deepest full path is far shorter, so a
/// longer one cannot exist and is not worth a call or a cache entry.
const MAX_ID_BYTES: usize = 1024;

struct Slot {
    cell: OnceCell<Result<Lookup, ResolveError>>,
    created: Instant,
}

impl Slot {
    fn pending() -> Arc<Slot> {
        Arc::new(Slot {
            cell: OnceCell::new(),
            created: Instant::now(),
        })
    }
}

/// The resolution cache with single flight.
pub struct Resolver {
    slots: Mutex<HashMap<Key, Arc<Slot>>>,
    settings: CacheSettings,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("entries", &self.lock().len())
            .field("settings", &self.settings)
            .finish()
    }
}

impl Resolver {
    /// An empty cache.
    pub(crate) fn new(settings: CacheSettings) -> Resolver {
        Resolver {
            slots: Mutex::new(HashMap::new()),
            settings,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Arc<Slot>>> {
        // A panic while holding this lock leaves only a map of cached facts,
        // each valid on its own: carry on with it.
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Resolves `id` (as bound by a template: decoded, any case) to GitLab's
    /// object of `kind`.
    pub(crate) async fn resolve(
        &self,
        upstream: &Upstream,
        kind: Kind,
        id: &str,
        freshness: Freshness,
    ) -> Result<(Lookup, Source), ResolveError> {
        if id.len() > MAX_ID_BYTES {
            return Ok((Lookup::NotFound, Source::Miss));
        }
        let key = (kind, Id::parse(id));
        let (slot, source) = self.slot(&key, freshness);
        let result = slot
            .cell
            .get_or_init(|| fetch(upstream, kind, &key.1))
            .await
            .clone();
        match &result {
            Ok(Lookup::Found(object)) => self.alias(&key, &slot, object),
            Ok(Lookup::NotFound) => {}
            Err(_) => self.forget(&key, &slot),
        }
        result.map(|lookup| (lookup, source))
    }

    /// The slot for `key`: the cached one if still good for `freshness`,
    /// otherwise a new pending one that this caller (and any joining) fills.
    fn slot(&self, key: &Key, freshness: Freshness) -> (Arc<Slot>, Source) {
        let mut slots = self.lock();
        if let Some(slot) = slots.get(key) {
            let age = slot.created.elapsed();
            let usable = match freshness {
                Freshness::Cached => age < self.ttl_of(slot),
                Freshness::Fresh => !slot.cell.initialized(),
            };
            if usable {
                let source = if slot.cell.initialized() {
                    Source::Hit
                } else {
                    Source::Miss
                };
                return (Arc::clone(slot), source);
            }
        }
        self.make_room(&mut slots);
        let slot = Slot::pending();
        slots.insert(key.clone(), Arc::clone(&slot));
        (slot, Source::Miss)
    }

    /// How long `slot`'s answer is reused.
    fn ttl_of(&self, slot: &Slot) -> Duration {
        match slot.cell.get() {
            Some(Ok(Lookup::NotFound)) => self.settings.ttl.min(NOT_FOUND_TTL),
            _ => self.settings.ttl,
        }
    }

    /// Also files a found object under its numeric id and canonical path, so
    /// that every spelling of it shares one answer.
    fn alias(&self, key: &Key, slot: &Arc<Slot>, object: &Resolved) {
        let mut slots = self.lock();
        let aliases = [
            (object.kind, Id::Numeric(object.id)),
            (object.kind, Id::Path(object.path.as_str().to_owned())),
        ];
        for alias in aliases {
            if alias == *key {
                continue;
            }
            let current = slots
                .get(&alias)
                .is_some_and(|s| s.created >= slot.created && s.cell.initialized());
            if !current {
                self.make_room(&mut slots);
                slots.insert(alias, Arc::clone(slot));
            }
        }
    }

    /// Drops a failed slot (if it is still the one filed) so the next request retries.
    fn forget(&self, key: &Key, slot: &Arc<Slot>) {
        let mut slots = self.lock();
        if slots.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(key);
        }
    }

    /// Keeps the map under `max_entries`: expired answers go first, then the
    /// oldest tenth at once (so that a full cache does not scan on every insert).
    fn make_room(&self, slots: &mut HashMap<Key, Arc<Slot>>) {
        if slots.len() < self.settings.max_entries {
            return;
        }
        slots.retain(|_, slot| {
            !slot.cell.initialized() || slot.created.elapsed() < self.ttl_of(slot)
        });
        let max = self.settings.max_entries.max(1);
        if slots.len() < max {
            return;
        }
        let mut ages: Vec<Instant> = slots.values().map(|slot| slot.created).collect();
        ages.sort_unstable();
        let excess = slots.len() + 1 - max;
        let cut = ages[(excess + max / 10).min(ages.len() - 1)];
        slots.retain(|_, slot| slot.created > cut);
    }

    /// Takes note of what GitLab just said about an object in an answer (a
    /// project or group listed, say): when the object has moved since it was
    /// cached, every entry still naming it is dropped, so the next request
    /// resolves it afresh. It never adds an answer: only GitLab's reply to
    /// glgate's own lookup does.
    pub(crate) fn invalidate_if_moved(&self, kind: Kind, id: u64, path: &FullPath) {
        let mut slots = self.lock();
        let moved = slots
            .get(&(kind, Id::Numeric(id)))
            .and_then(|slot| match slot.cell.get() {
                Some(Ok(Lookup::Found(found))) => Some(found.path != *path),
                _ => None,
            })
            .unwrap_or(false);
        if moved {
            slots.retain(|_, slot| {
                !matches!(
                    slot.cell.get(),
                    Some(Ok(Lookup::Found(found))) if found.kind == kind && found.id == id
                )
            });
        }
    }
}

/// `GET /projects/:id` or `GET /groups/:id`, following one redirect (GitLab
/// redirects a renamed or transferred project's old path to its new one).
async fn fetch(upstream: &Upstream, kind: Kind, id: &Id) -> Result<Lookup, ResolveError> {
    let mut segment = id.segment();
    for hop in 0..2 {
        let target = object_target(kind, &segment);
        let read = upstream
            .read_own(&target)
            .await
            .map_err(|error| match error {
                UpstreamError::ResponseTooLarge(_) | UpstreamError::Truncated => {
                    ResolveError::Malformed(kind)
                }
                _ => ResolveError::Unavailable,
            })?;
        match read.status.as_u16() {
            200 => return parse_object(kind, &read.body).map(|o| Lookup::Found(Arc::new(o))),
            404 => return Ok(Lookup::NotFound),
            301 | 302 | 303 | 307 | 308 if hop == 0 => {
                segment = read
                    .location
                    .as_deref()
                    .and_then(|location| redirect_segment(kind, location))
                    .ok_or(ResolveError::Malformed(kind))?;
            }
            status => return Err(ResolveError::Status(status)),
        }
    }
    Err(ResolveError::Malformed(kind))
}

/// The API target that reads one object. A group is read without its
/// projects (GitLab would otherwise list them all).
pub(crate) fn object_target(kind: Kind, segment: &str) -> String {
    match kind {
        Kind::Project => format!("{}/projects/{segment}", crate::canonical::API_PREFIX),
        Kind::Group => format!(
            "{}/groups/{segment}?with_projects=false",
            crate::canonical::API_PREFIX
        ),
        Kind::Namespace => format!("{}/namespaces/{segment}", crate::canonical::API_PREFIX),
    }
}

/// The object segment of a redirect to `…/api/v4/projects/<segment>[/…]`,
/// if it is one; only unreserved characters and percent escapes are taken.
pub(crate) fn redirect_segment(kind: Kind, location: &str) -> Option<String> {
    let marker = format!("{}/{}/", crate::canonical::API_PREFIX, kind.collection());
    let start = location.find(&marker)? + marker.len();
    let rest = &location[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let segment = &rest[..end];
    let clean = !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'-' | b'.' | b'_' | b'~'));
    clean.then(|| segment.to_owned())
}

/// Reads GitLab's JSON object: its `id` and canonical path.
pub(crate) fn parse_object(kind: Kind, body: &[u8]) -> Result<Resolved, ResolveError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| ResolveError::Malformed(kind))?;
    let field = match kind {
        Kind::Project => "path_with_namespace",
        Kind::Group | Kind::Namespace => "full_path",
    };
    let id = value.get("id").and_then(serde_json::Value::as_u64);
    let path = value.get(field).and_then(serde_json::Value::as_str);
    match (id, path) {
        (Some(id), Some(path)) if !path.is_empty() => Ok(Resolved {
            kind,
            id,
            path: FullPath::from_gitlab(path),
        }),
        _ => Err(ResolveError::Malformed(kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_numeric_or_case_folded_paths() {
        assert_eq!(Id::parse("101"), Id::Numeric(101));
        assert_eq!(Id::parse("Acme/Backend"), Id::Path("acme/backend".into()));
        assert_eq!(
            Id::parse("99999999999999999999999"),
            Id::Path("99999999999999999999999".into())
        );
        assert_eq!(
            Id::Path("acme/my proj".into()).segment(),
            "acme%2Fmy%20proj"
        );
        assert_eq!(Id::Numeric(7).segment(), "7");
    }

    #[test]
    fn targets_and_redirects() {
        assert_eq!(
            object_target(Kind::Project, "acme%2Fbackend"),
            "/api/v4/projects/acme%2Fbackend"
        );
        assert_eq!(
            object_target(Kind::Group, "10"),
            "/api/v4/groups/10?with_projects=false"
        );
        assert_eq!(
            redirect_segment(
                Kind::Project,
                "https://gitlab.example/gl/api/v4/projects/acme%2Fnew?x=1"
            ),
            Some("acme%2Fnew".into())
        );
        assert_eq!(
            redirect_segment(Kind::Project, "https://gitlab.example/api/v4/groups/5"),
            None
        );
        assert_eq!(
            redirect_segment(Kind::Project, "https://x/api/v4/projects/a\"b"),
            None
        );
    }

    #[test]
    fn objects_need_an_id_and_a_path() {
        let ok = parse_object(
            Kind::Project,
            br#"{"id": 5, "path_with_namespace": "Acme/X"}"#,
        )
        .unwrap();
        assert_eq!((ok.id, ok.path.as_str()), (5, "acme/x"));
        assert!(parse_object(Kind::Group, br#"{"id": 5, "path_with_namespace": "a/x"}"#).is_err());
        assert!(parse_object(Kind::Project, br#"[]"#).is_err());
        assert!(parse_object(Kind::Project, b"not json").is_err());
    }
}
