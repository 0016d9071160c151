//! The lexer: text → logical lines of words, with line numbers. Pure.
//!
//! Rules (see `docs/tandem.conf.5`):
//! - words are separated by blanks (spaces, tabs, and other ASCII whitespace);
//! - a word that starts with `#` starts a comment that runs to the end of the physical
//!   line (a `#` inside a word, e.g. `a#b`, is an ordinary character);
//! - a `\` at the end of a physical line (after removing any comment and trailing blanks)
//!   joins the next physical line, as if by a blank;
//! - a logical line keeps the number (1-based) of its FIRST physical line;
//! - lines without words are dropped.
//!
//! There is no quoting: a word cannot contain blanks.

/// One logical line: its first physical line number and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub line: usize,
    pub words: Vec<String>,
}

/// Splits `text` into logical lines. Never fails: every byte sequence is some list of words.
pub fn lex(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut cur: Option<Line> = None;
    for (idx, phys) in text.lines().enumerate() {
        let lineno = idx.saturating_add(1);
        let (words, continued) = split_physical(phys);
        let entry = cur.get_or_insert_with(|| Line { line: lineno, words: Vec::new() });
        entry.words.extend(words);
        if !continued {
            if let Some(done) = cur.take() {
                if !done.words.is_empty() {
                    out.push(done);
                }
            }
        }
    }
    // A `\` on the very last line: the logical line simply ends with the file.
    if let Some(done) = cur.take() {
        if !done.words.is_empty() {
            out.push(done);
        }
    }
    out
}

/// The words of one physical line, and whether it ends in a continuation `\`.
fn split_physical(phys: &str) -> (Vec<String>, bool) {
    let mut words: Vec<String> = Vec::new();
    for w in phys.split(|c: char| c.is_ascii_whitespace()) {
        if w.is_empty() {
            continue;
        }
        if w.starts_with('#') {
            break;
        }
        words.push(w.to_string());
    }
    let mut continued = false;
    if let Some(last) = words.last_mut() {
        if last == "\\" {
            words.pop();
            continued = true;
        } else if let Some(stripped) = last.strip_suffix('\\') {
            *last = stripped.to_string();
            continued = true;
        }
    }
    (words, continued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(l: &Line) -> Vec<&str> {
        l.words.iter().map(String::as_str).collect()
    }

    #[test]
    fn words_comments_and_blank_lines() {
        let t = "# header\n\ncluster  demo   # the name\n\tkeepalive\t100ms\n   # indented comment\nnode a#b c\n";
        let l = lex(t);
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].line, 3);
        assert_eq!(w(&l[0]), ["cluster", "demo"]);
        assert_eq!(l[1].line, 4);
        assert_eq!(w(&l[1]), ["keepalive", "100ms"]);
        assert_eq!(l[2].line, 6);
        assert_eq!(w(&l[2]), ["node", "a#b", "c"]);
    }

    #[test]
    fn continuation_keeps_first_line_number() {
        let t = "cluster x\ngroup web alpha \\\n  ip::192.0.2.50/24 \\\n  script::/bin/true\ndeadtime 2s\n";
        let l = lex(t);
        assert_eq!(l.len(), 3);
        assert_eq!(l[1].line, 2);
        assert_eq!(w(&l[1]), ["group", "web", "alpha", "ip::192.0.2.50/24", "script::/bin/true"]);
        assert_eq!(l[2].line, 5);
        assert_eq!(w(&l[2]), ["deadtime", "2s"]);
    }

    #[test]
    fn continuation_glued_to_word_and_before_comment() {
        let t = "group g a\\\nb # c\nping 192.0.2.1 \\ # more follow\n 192.0.2.2\n";
        let l = lex(t);
        assert_eq!(l.len(), 2);
        assert_eq!(w(&l[0]), ["group", "g", "a", "b"]);
        assert_eq!(l[1].line, 3);
        assert_eq!(w(&l[1]), ["ping", "192.0.2.1", "192.0.2.2"]);
    }

    #[test]
    fn continuation_over_blank_line_and_at_eof() {
        // An empty continued line still continues; a `\` on the last line just ends it.
        let l = lex("a \\\n\\\n b\nc \\");
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].line, 1);
        assert_eq!(w(&l[0]), ["a", "b"]);
        assert_eq!(l[1].line, 4);
        assert_eq!(w(&l[1]), ["c"]);
    }

    #[test]
    fn comment_line_ends_a_continuation() {
        let l = lex("a \\\n# note\nb\n");
        assert_eq!(l.len(), 2);
        assert_eq!(w(&l[0]), ["a"]);
        assert_eq!(l[1].line, 3);
    }

    #[test]
    fn crlf_and_empty_input() {
        assert!(lex("").is_empty());
        assert!(lex("\n\n   \n# x\n").is_empty());
        let l = lex("cluster x\r\nnode a b\r\n");
        assert_eq!(w(&l[0]), ["cluster", "x"]);
        assert_eq!(w(&l[1]), ["node", "a", "b"]);
        assert_eq!(l[1].line, 2);
    }

    #[test]
    fn lone_backslash_in_middle_is_a_word() {
        let l = lex("a \\ b\n");
        assert_eq!(w(&l[0]), ["a", "\\", "b"]);
    }
}
