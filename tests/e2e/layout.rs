//! The layering ARCHITECTURE.md promises: the files of `src/` import each
//! other without a cycle. Every `crate::…` and `super::…` path in a file
//! (outside its `#[cfg(test)] mod tests`) is an edge to the file that
//! defines the longest matching module; a cycle fails with its files named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`["proxy", "answer"]`) of every file under `src/`, but unit
/// test files (`tests.rs`), which may import anything they test.
fn modules(root: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut found = BTreeMap::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap().with_extension("");
            let mut module: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            if module.last().is_some_and(|m| m == "tests") {
                continue;
            }
            found.insert(module, path);
        }
    }
    found
}

/// The module paths a file's code names, from `crate::` or `super::`.
fn named_paths(file: &Path, module: &[String]) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(file).unwrap();
    let code = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    let mut paths = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or_default();
        for (head, base) in [
            ("crate::", Vec::new()),
            // `super` is the parent of the file's module (for a `mod.rs`,
            // of its folder's module).
            ("super::", module[..module.len().saturating_sub(1)].to_vec()),
        ] {
            for (at, _) in line.match_indices(head) {
                if line[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let rest = &line[at + head.len()..];
                let braced = rest.starts_with('{');
                let names = if braced {
                    rest[1..].split('}').next().unwrap_or_default()
                } else {
                    rest
                };
                for item in names.split(',') {
                    let item: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                        .collect();
                    if item.is_empty() {
                        continue;
                    }
                    let mut path = base.clone();
                    path.extend(
                        item.split("::")
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned),
                    );
                    paths.push(path);
                }
            }
        }
    }
    paths
}

#[test]
fn the_files_of_src_import_each_other_without_a_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&root);
    let owner = |path: &[String]| {
        (0..=path.len())
            .rev()
            .find_map(|k| modules.get(&path[..k]).cloned())
    };
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for (module, file) in &modules {
        let targets = edges.entry(file.clone()).or_default();
        for path in named_paths(file, module) {
            if let Some(target) = owner(&path)
                && &target != file
            {
                targets.insert(target);
            }
        }
    }
    assert!(
        edges.len() > 40,
        "the walk found src/'s files ({})",
        edges.len()
    );
    // Depth-first search; a back edge closes a cycle.
    fn visit(
        file: &PathBuf,
        edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        done: &mut BTreeSet<PathBuf>,
        trail: &mut Vec<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(at) = trail.iter().position(|f| f == file) {
            return Some(trail[at..].to_vec());
        }
        if done.contains(file) {
            return None;
        }
        trail.push(file.clone());
        for next in edges.get(file).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, done, trail) {
                return Some(cycle);
            }
        }
        trail.pop();
        done.insert(file.clone());
        None
    }
    let mut done = BTreeSet::new();
    for file in edges.keys() {
        if let Some(cycle) = visit(file, &edges, &mut done, &mut Vec::new()) {
            let names: Vec<String> = cycle
                .iter()
                .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
                .collect();
            panic!(
                "import cycle between the files of src/: {}",
                names.join(" -> ")
            );
        }
    }
}
