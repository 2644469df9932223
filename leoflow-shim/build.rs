//! Embeds the Python shim: walks `python/` (minus tests, benchmarks, tool config and caches)
//! and writes a table of `(relative path, include_bytes!)` entries plus a content hash to
//! `$OUT_DIR/embedded.rs`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// Directory names never embedded: test suites, benchmarks and interpreter or tool caches.
const SKIPPED_DIRS: &[&str] = &[
    "tests",
    "benchmarks",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
];

/// File names never embedded: test and lint configuration.
const SKIPPED_FILES: &[&str] = &["pytest.ini", "conftest.py", "ruff.toml"];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("python");
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-changed=build.rs");

    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();

    // FNV-1a over (path, length, bytes) of every file: stable across toolchains, no dependency.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(env!("CARGO_PKG_VERSION").as_bytes());
    let mut table = String::new();
    for rel in &files {
        let abs = root.join(rel);
        let bytes = fs::read(&abs).unwrap_or_else(|e| panic!("reading {}: {e}", abs.display()));
        feed(rel.as_bytes());
        feed(&(bytes.len() as u64).to_le_bytes());
        feed(&bytes);
        writeln!(
            table,
            "    ({rel:?}, include_bytes!({:?})),",
            abs.display().to_string()
        )
        .expect("writing to a String");
    }
    let out = format!(
        "/// Content hash of the embedded files (FNV-1a 64, hex).\n\
         pub const HASH: &str = \"{hash:016x}\";\n\n\
         /// Every embedded file: path relative to `python/` (always `/`-separated) and bytes.\n\
         pub static FILES: &[(&str, &[u8])] = &[\n{table}];\n"
    );
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("embedded.rs");
    fs::write(&dest, out).unwrap_or_else(|e| panic!("writing {}: {e}", dest.display()));
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let kind = entry
            .file_type()
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        if name.starts_with('.') {
            continue;
        }
        if kind.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_str()) {
                walk(root, &path, files);
            }
        } else if !SKIPPED_FILES.contains(&name.as_str())
            && !path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("pyc") || e.eq_ignore_ascii_case("pyo"))
            && !name.ends_with('~')
        {
            let rel = path
                .strip_prefix(root)
                .expect("walked from root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push(rel);
        }
    }
}
