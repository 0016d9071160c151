//! A minimal JSON writer for `status --json` (no dependency needed for one object).

use core::fmt::Write;

pub fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Builds one JSON object/array incrementally, handling commas.
pub struct Obj<'a> {
    out: &'a mut String,
    first: bool,
    close: char,
}

impl<'a> Obj<'a> {
    pub fn object(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, first: true, close: '}' }
    }
    pub fn array(out: &'a mut String) -> Obj<'a> {
        out.push('[');
        Obj { out, first: true, close: ']' }
    }
    fn sep(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }
    fn key(&mut self, k: &str) {
        self.sep();
        escape_into(self.out, k);
        self.out.push(':');
    }
    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        escape_into(self.out, v);
        self
    }
    pub fn num(&mut self, k: &str, v: u64) -> &mut Self {
        self.key(k);
        let _ = write!(self.out, "{v}");
        self
    }
    pub fn opt_num(&mut self, k: &str, v: Option<u64>) -> &mut Self {
        match v {
            Some(v) => self.num(k, v),
            None => {
                self.key(k);
                self.out.push_str("null");
                self
            }
        }
    }
    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.out.push_str(if v { "true" } else { "false" });
        self
    }
    /// A nested object or array under key `k` (or an array element when `k` is None).
    pub fn nested(&mut self, k: Option<&str>, array: bool) -> Obj<'_> {
        match k {
            Some(k) => self.key(k),
            None => self.sep(),
        }
        if array {
            Obj::array(self.out)
        } else {
            Obj::object(self.out)
        }
    }
}

impl Drop for Obj<'_> {
    fn drop(&mut self) {
        self.out.push(self.close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn writes_nested_objects() {
        let mut s = String::new();
        {
            let mut o = Obj::object(&mut s);
            o.str("node", "al\"pha").num("n", 3).bool("up", true).opt_num("x", None);
            let mut a = o.nested(Some("peers"), true);
            {
                let mut p = a.nested(None, false);
                p.str("name", "beta");
            }
            {
                let mut p = a.nested(None, false);
                p.str("name", "g\n");
            }
        }
        assert_eq!(s, r#"{"node":"al\"pha","n":3,"up":true,"x":null,"peers":[{"name":"beta"},{"name":"g\n"}]}"#);
    }
}
