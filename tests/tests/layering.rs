//! The layering rule: glommio is the runtime's implementation detail. Code
//! above it — the `torsion` command, the protocols, the examples, these
//! tests — uses torsion's own API (connections, timers, tasks, sockets) and
//! never names glommio, so the reactor can change under them. Only
//! `runtime/` and `vendor/` may; `benches/` keeps a plain-glommio echo peer
//! as a baseline (`benches/src/bin/glommio-echo.rs`) and is not scanned.

use std::path::{Path, PathBuf};

/// The workspace members above the runtime.
const SCANNED: [&str; 4] = ["bin", "protocols", "examples", "tests"];

/// What naming glommio looks like (built with `concat!` so that this file's
/// own literals are not a use).
const NEEDLES: [&str; 2] = [concat!("glommio", "::"), concat!("use ", "glommio")];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// Every `.rs` file under `dir`, outside build output (`target/`).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `file:line: text` for every line of `text` that names glommio.
fn uses_of_glommio(file: &Path, text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| NEEDLES.iter().any(|n| line.contains(n)))
        .map(|(i, line)| format!("{}:{}: {}", file.display(), i + 1, line.trim()))
        .collect()
}

#[test]
fn nothing_above_the_runtime_names_glommio() {
    let root = repo_root();
    let mut files = Vec::new();
    for dir in SCANNED {
        let dir = root.join(dir);
        assert!(dir.is_dir(), "{} is missing", dir.display());
        rust_files(&dir, &mut files);
    }
    assert!(
        files.iter().any(|f| f.ends_with("tests/tests/layering.rs")),
        "the scan found this file: it looks where it should"
    );
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let shown = file.strip_prefix(&root).unwrap_or(file);
        found.extend(uses_of_glommio(shown, &text));
    }
    assert!(
        found.is_empty(),
        "glommio is the runtime's own business: use torsion's API instead \
         (torsion::client::Connector, Connection, Frames, Clock, spawn_local, UdpSocket…) in\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_a_use_and_names_its_line() {
    let text = format!(
        "fn main() {{}}\n{} std::io;\nlet t = {}timer::sleep(d);\n",
        "use", NEEDLES[0]
    );
    let found = uses_of_glommio(Path::new("bin/src/x.rs"), &text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("bin/src/x.rs:3: let t = "),
        "{found:?}"
    );
    let text = format!("{};\n", NEEDLES[1]);
    assert_eq!(
        uses_of_glommio(Path::new("a.rs"), &text),
        [format!("a.rs:1: {};", NEEDLES[1])]
    );
}
