//! The README and docs/ are self-contained (issue 20, item 13): every relative link points at a
//! file of the repository, nothing a user ships with the repository cites the team's private
//! notes (`../shared`, `spec/`, `DESIGN.md`), and the Example's output block is what the command
//! above it prints today.

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Relative link targets `](target)` of a markdown text (anchors and URLs left out).
fn relative_links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(j) = rest.find(')') else { break };
        let target = rest[..j].split('#').next().unwrap_or("").trim();
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            out.push(target.to_string());
        }
        rest = &rest[j..];
    }
    out
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![Path::new(ROOT).join("README.md")];
    for e in std::fs::read_dir(Path::new(ROOT).join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    files
}

#[test]
fn links_point_into_the_repository() {
    let mut missing = Vec::new();
    for f in markdown_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        for t in relative_links(&text) {
            if !f.parent().unwrap().join(&t).exists() {
                missing.push(format!("{}: {t}", f.display()));
            }
        }
    }
    assert!(missing.is_empty(), "links to missing files: {missing:?}");
    // The checker finds links at all (a parser that finds none would pass vacuously).
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    assert!(relative_links(&readme).contains(&"docs/bounds.md".to_string()));
}

/// Files a user of the repository reads or runs: none may send them to the team's notes.
#[test]
fn nothing_cites_files_outside_the_repository() {
    let mut files = markdown_files();
    for dir in [
        "src",
        "scripts",
        "notebooks",
        "experiments",
        "benches",
        "kernels",
    ] {
        let mut stack = vec![Path::new(ROOT).join(dir)];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    files.push(p);
                }
            }
        }
    }
    let mut found = Vec::new();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue; // binary files (figures) cite nothing
        };
        for needle in ["../shared", "spec/bounds.md", "spec/paper.md", "DESIGN.md"] {
            if text.contains(needle) {
                found.push(format!("{}: {needle}", f.display()));
            }
        }
    }
    assert!(files.len() > 50, "only {} files scanned", files.len());
    assert!(
        found.is_empty(),
        "citations of files users do not have: {found:?}"
    );
}

/// The README's Example: the command in its indented block, and the fenced block after it is the
/// command's standard output, byte for byte.
#[test]
fn the_example_output_is_what_the_command_prints() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let example = &readme[readme.find("## Example").expect("an Example section")..];
    let cmd_start = example.find("cargo run --release -- ").unwrap() + 23;
    let block = example[cmd_start..].find("```\n").unwrap() + cmd_start;
    let command: Vec<String> = example[cmd_start..block]
        .replace("\\\n", " ")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let body = &example[block + 4..];
    let expected = &body[..body.find("```").unwrap()];
    assert!(
        expected.lines().count() > 10,
        "the Example output block is (nearly) empty"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_mpno"))
        .args(&command)
        .output()
        .unwrap();
    assert!(out.status.success(), "{command:?}");
    let got = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        got,
        expected,
        "README Example output differs from `mpno {}`: paste the new output",
        command.join(" ")
    );
}
