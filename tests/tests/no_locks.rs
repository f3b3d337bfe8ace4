//! The design rule that protocol state lives on one shard, unlocked: the
//! `protocols` crate uses no Mutex, RwLock, spin lock or atomics.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_protocols_crate_holds_no_locks() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocols/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 5, "found the sources");
    let forbidden = [
        "Mutex",
        "RwLock",
        "Atomic",
        "SpinLock",
        "spin::",
        "parking_lot",
    ];
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // Code only: comments may discuss locks.
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for word in forbidden {
            assert!(
                !code.contains(word),
                "{} mentions {word}: protocol state must not be locked",
                f.display()
            );
        }
    }
}
