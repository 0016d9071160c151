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
