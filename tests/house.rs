//! The tree's comments and docs speak of the product: no file cites work tracking (issue
//! numbers and the like, notes of work to come), a coordination note, or a file outside the
//! repository (the design notes the project started from live elsewhere; the repository's
//! own docs/ say what holds). Fails with every offending `file:line`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

use std::path::{Path, PathBuf};

/// Where to look, relative to the repository.
const DIRS: &[&str] =
    &["src", "tests", "examples", "benches", "fuzz/fuzz_targets", "demo", "bench", "scripts", "init", "docs"];
const FILES: &[&str] = &["README.md", "Makefile", "Cargo.toml"];
/// Build output and downloads (git-ignored), and generated pictures.
const SKIP_DIRS: &[&str] = &["target", "build", "out", "__pycache__", "fixtures"];
const SKIP_EXT: &[&str] = &["png", "svg"];

/// Files outside the repository and coordination notes, matched as written. Spelled in
/// pieces so that this file does not match itself.
const NAMES: &[&str] =
    &[concat!("INTERFACE", ".md"), concat!("DESIGN", ".md"), concat!("shared", "/"), concat!("SHARED", " TYPES")];
/// Work-tracking words, matched in lower case.
const WORDS: &[&str] = &[concat!("deliver", "able"), concat!("later", " issue")];

/// What is wrong with `line`, if anything.
fn offence(line: &str) -> Option<String> {
    if let Some(n) = NAMES.iter().find(|n| line.contains(**n)) {
        return Some(format!("names `{n}`"));
    }
    let lower = line.to_ascii_lowercase();
    if let Some(w) = WORDS.iter().find(|w| lower.contains(**w)) {
        return Some(format!("says `{w}`"));
    }
    // "issue" + optional blank + optional '#' + a digit
    for (i, _) in lower.match_indices("issue") {
        let rest = lower[i + 5..].strip_prefix(' ').unwrap_or(&lower[i + 5..]);
        let rest = rest.strip_prefix('#').unwrap_or(rest);
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            return Some("cites an issue number".into());
        }
    }
    // "#N" as a word of its own (start of line, or after a blank or '(')
    let b = line.as_bytes();
    for (i, _) in line.match_indices('#') {
        let starts = i == 0 || b[i - 1].is_ascii_whitespace() || b[i - 1] == b'(';
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        let ends = !matches!(b.get(i + 1 + digits), Some(c) if c.is_ascii_alphanumeric() || *c == b'_');
        if starts && digits > 0 && ends {
            return Some("cites a number as `#N`".into());
        }
    }
    // a note that waits for something to land
    if let Some(u) = lower.find("until ") {
        if lower[u..].contains(" lands") {
            return Some("waits for something to land".into());
        }
    }
    None
}

/// Every offending line of `text`: (line number, why, line). A phrase broken across two
/// lines counts too: the previous line's last word is put before this line, without its
/// comment marker ("... in a later" / "//! issue.").
fn offences(text: &str) -> Vec<(usize, String, &str)> {
    let mut out = Vec::new();
    let mut prev_word = "";
    for (n, line) in text.lines().enumerate() {
        let body = line.trim_start().trim_start_matches(['/', '!', '#', '*', '-']).trim_start();
        if let Some(why) = offence(line).or_else(|| offence(&format!("{prev_word} {body}"))) {
            out.push((n + 1, why, line));
        }
        prev_word = line.split_whitespace().last().unwrap_or("");
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) {
                walk(&p, out);
            }
        } else if !p.extension().is_some_and(|x| SKIP_EXT.contains(&x.to_string_lossy().as_ref())) {
            out.push(p);
        }
    }
}

#[test]
fn comments_and_docs_speak_of_the_product() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for d in DIRS {
        walk(&root.join(d), &mut files);
    }
    files.extend(FILES.iter().map(|f| root.join(f)));
    files.sort();
    assert!(files.len() > 50, "found only {} files under {}", files.len(), root.display());
    let mut bad = Vec::new();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else { continue }; // binary
        for (n, why, line) in offences(&text) {
            let rel = f.strip_prefix(root).unwrap_or(f).display();
            bad.push(format!("{rel}:{n}: {why}: {}", line.trim()));
        }
    }
    assert!(
        bad.is_empty(),
        "{} line(s) speak of the work rather than the product (say what the code does; name a file \
         of docs/ instead of an outside note):\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn the_check_catches_what_it_should() {
    let flagged = [
        concat!("//! Issue", " 2, shown by: x"),
        concat!("# see issue #", "12"),
        concat!("/// as ", "INTERFACE", ".md says"),
        concat!("see ../", "shared", "/tools/x.sh"),
        concat!("//! ", "SHARED", " TYPES: Repr"),
        concat!("// (fixes ", "#3)"),
        concat!("// deliver", "able 7"),
        concat!("// STONITH (a later", " issue)"),
        concat!("// until `tandem agent` ", "lands"),
        concat!("/// in a later\n", "/// issue."),
        concat!("// see issue\n", "// 4 for why"),
    ];
    for l in flagged {
        assert!(!offences(l).is_empty(), "not flagged: {l}");
    }
    let fine = [
        "#[derive(Debug)]",
        "#!/bin/sh",
        "r#\"raw\"#",
        "x = \"#333\"",
        "format!(\"{:#x}\", v)",
        "# the issue is the lock",
        "a shared key",
        "/usr/share/doc",
        "<a href=\"#1-intro\">",
    ];
    for l in fine {
        assert!(offences(l).is_empty(), "flagged: {l}");
    }
    assert!(offences("the issue\nis the lock").is_empty());
}

/// The backquoted words of a table cell.
fn quoted(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// The top-level modules `crate::` paths in `text` name.
fn crate_paths(text: &str) -> Vec<String> {
    text.match_indices("crate::")
        .map(|(i, m)| text[i + m.len()..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect())
        .filter(|s: &String| !s.is_empty())
        .collect()
}

/// docs/architecture.md's layer table holds: every module of src/ has a row, and imports
/// point down to what the row lists (`sys` and `time` serve every row; `testutil` is the unit
/// tests').
#[test]
fn layers_import_only_downwards() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let table = doc.split("## Layers and what each may import").nth(1).expect("no layer section");
    // module → (row, what it may import)
    let mut rows: Vec<(String, u32, Vec<String>)> = Vec::new();
    for line in table.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(row) = cells.get(1).and_then(|c| c.parse::<u32>().ok()) else { continue };
        let may: Vec<String> = quoted(cells[3]).iter().map(|s| s.to_string()).collect();
        for m in quoted(cells[2]) {
            if let Some(name) = m.strip_suffix('/').or_else(|| m.strip_suffix(".rs")) {
                rows.push((name.to_string(), row, may.clone()));
            }
        }
    }
    assert!(rows.len() > 15, "the layer table lists only {rows:?}");
    let row_of = |m: &str| rows.iter().find(|r| r.0 == m).map(|r| r.1);

    let mut bad = Vec::new();
    let mut seen = Vec::new();
    for e in std::fs::read_dir(root.join("src")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let module = name.strip_suffix(".rs").unwrap_or(&name).to_string();
        if module == "lib" || module == "testutil" {
            continue;
        }
        seen.push(module.clone());
        let Some((_, row, may)) = rows.iter().find(|r| r.0 == module) else {
            bad.push(format!("src/{name}: no row in the layer table"));
            continue;
        };
        let mut files = Vec::new();
        if e.path().is_dir() {
            walk(&e.path(), &mut files);
        } else {
            files.push(e.path());
        }
        for f in files.iter().filter(|f| f.extension().is_some_and(|x| x == "rs")) {
            let text = std::fs::read_to_string(f).unwrap();
            for m in crate_paths(&text) {
                if m == module || ["sys", "time", "testutil"].contains(&m.as_str()) {
                    continue;
                }
                let rel = f.strip_prefix(root).unwrap_or(f).display();
                match row_of(&m) {
                    None => bad.push(format!("{rel}: imports `{m}`, which has no row")),
                    Some(r) if r >= *row => bad.push(format!("{rel}: row {row} imports `{m}` of row {r}")),
                    Some(_) if !may.contains(&m) => bad.push(format!("{rel}: imports `{m}`, not in its row's list")),
                    Some(_) => {}
                }
            }
        }
    }
    bad.sort();
    bad.dedup();
    assert!(seen.len() > 15, "found only {seen:?} under src/");
    assert!(bad.is_empty(), "docs/architecture.md's layer table and the code disagree:\n{}", bad.join("\n"));
}
