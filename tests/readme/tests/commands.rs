//! The README's shell commands that name a package start what they say:
//! `cargo run -p NAME` without `--bin` needs NAME to have one binary or a
//! `default-run` (cargo refuses otherwise: "could not determine which binary
//! to run").

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The manifest of the workspace package called `name`.
fn manifest_of(name: &str) -> Option<String> {
    let mut dirs = vec![repo()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let file_name = entry.file_name();
            let skip = ["target", "vendor", ".git", "node_modules"];
            if path.is_dir() && !skip.iter().any(|s| file_name == *s) {
                dirs.push(path);
            } else if file_name == "Cargo.toml" {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if text
                    .lines()
                    .any(|l| l.trim() == format!("name = \"{name}\""))
                {
                    return Some(text);
                }
            }
        }
    }
    None
}

#[test]
fn every_cargo_run_of_a_package_names_a_binary_cargo_can_pick() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let mut checked = 0;
    for line in readme.lines() {
        let Some(at) = line.find("cargo run -p ") else {
            continue;
        };
        let rest = &line[at + "cargo run -p ".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        if rest.contains("--bin") {
            continue;
        }
        let manifest = manifest_of(&name)
            .unwrap_or_else(|| panic!("README runs package {name:?}, which is not here"));
        let bins = manifest.matches("[[bin]]").count();
        assert!(
            bins <= 1 || manifest.contains("default-run"),
            "README line {line:?}: package {name} has {bins} binaries and no default-run"
        );
        checked += 1;
    }
    assert!(checked > 0, "the README names no package to run");
}
