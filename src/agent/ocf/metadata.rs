//! Reading an OCF resource agent's `meta-data`: which parameters it has, which are required,
//! their defaults, and which actions it lists. Pure, and no XML crate: a small scanner that
//! knows the few XML constructs agents print (declarations, a DOCTYPE with or without an
//! internal subset, comments, CDATA, elements with quoted attributes, the predefined and
//! numeric character references) and checks that elements nest properly. Anything else is
//! an error naming the byte offset.

/// The largest meta-data accepted (resource-agents' biggest is about 60 KB).
pub const MAX_LEN: usize = 1 << 20;
/// The deepest element nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// What `meta-data` says about an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaData {
    /// `<resource-agent name=…>`.
    pub name: String,
    pub params: Vec<ParamInfo>,
    /// `<actions><action name=…>`, in order (a name may repeat, e.g. several monitors).
    pub actions: Vec<String>,
}

/// One `<parameter>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamInfo {
    pub name: String,
    /// `required="1"`.
    pub required: bool,
    /// `unique="1"` (deprecated in OCF 1.1 but still printed by most agents).
    pub unique: bool,
    /// `<content default=…>`.
    pub default: Option<String>,
    /// `<content type=…>`.
    pub content_type: Option<String>,
}

impl MetaData {
    pub fn param(&self, name: &str) -> Option<&ParamInfo> {
        self.params.iter().find(|p| p.name == name)
    }
    pub fn has_action(&self, name: &str) -> bool {
        self.actions.iter().any(|a| a == name)
    }
}

/// One piece of markup.
#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Start { name: &'a str, attrs: Vec<(&'a str, String)>, empty: bool },
    End { name: &'a str },
}

/// Parses meta-data XML.
pub fn parse(xml: &str) -> Result<MetaData, String> {
    if xml.len() > MAX_LEN {
        return Err(format!("meta-data is larger than {MAX_LEN} bytes"));
    }
    let mut md = MetaData::default();
    let mut stack: Vec<&str> = Vec::new();
    let mut root_done = false;
    let mut sc = Scanner { s: xml, pos: 0 };
    while let Some(tok) = sc.next_token()? {
        match tok {
            Token::Start { name, attrs, empty } => {
                if root_done || (stack.is_empty() && name != "resource-agent") {
                    return Err(format!(
                        "unexpected element <{name}> at byte {}: the root must be <resource-agent>",
                        sc.pos
                    ));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                }
                let attr = |n: &str| attrs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
                match (stack.as_slice(), name) {
                    ([], "resource-agent") => md.name = attr("name").unwrap_or_default(),
                    (["resource-agent", "parameters"], "parameter") => {
                        let Some(pname) = attr("name") else {
                            return Err(format!("<parameter> without a name at byte {}", sc.pos));
                        };
                        md.params.push(ParamInfo {
                            name: pname,
                            required: attr("required").is_some_and(|v| is_true(&v)),
                            unique: attr("unique").is_some_and(|v| is_true(&v)),
                            default: None,
                            content_type: None,
                        });
                    }
                    (["resource-agent", "parameters", "parameter"], "content") => {
                        if let Some(p) = md.params.last_mut() {
                            p.default = attr("default");
                            p.content_type = attr("type");
                        }
                    }
                    (["resource-agent", "actions"], "action") => {
                        if let Some(a) = attr("name") {
                            md.actions.push(a);
                        }
                    }
                    _ => {}
                }
                if empty {
                    root_done |= stack.is_empty();
                } else {
                    stack.push(name);
                }
            }
            Token::End { name } => match stack.pop() {
                Some(open) if open == name => root_done |= stack.is_empty(),
                Some(open) => return Err(format!("</{name}> closes <{open}> at byte {}", sc.pos)),
                None => return Err(format!("</{name}> without an open element at byte {}", sc.pos)),
            },
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("<{open}> is not closed"));
    }
    if !root_done {
        return Err("no <resource-agent> element".to_string());
    }
    Ok(md)
}

fn is_true(v: &str) -> bool {
    matches!(v.trim(), "1" | "true" | "yes" | "on")
}

struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    /// Moves past the first `end` after the current position, or fails.
    fn skip_past(&mut self, end: &str, what: &str) -> Result<(), String> {
        match self.rest().find(end) {
            Some(i) => {
                self.pos += i + end.len();
                Ok(())
            }
            None => Err(format!("unterminated {what} at byte {}", self.pos)),
        }
    }

    /// The next start or end tag; text, comments, CDATA, declarations and the DOCTYPE are
    /// checked and skipped. `None` at the end of the input.
    fn next_token(&mut self) -> Result<Option<Token<'a>>, String> {
        loop {
            let rest = self.rest();
            let Some(lt) = rest.find('<') else {
                check_text(rest, self.pos)?;
                self.pos = self.s.len();
                return Ok(None);
            };
            check_text(rest.get(..lt).unwrap_or(""), self.pos)?;
            self.pos += lt;
            let rest = self.rest();
            if rest.starts_with("<!--") {
                self.skip_past("-->", "comment")?;
            } else if rest.starts_with("<![CDATA[") {
                self.skip_past("]]>", "CDATA section")?;
            } else if rest.starts_with("<?") {
                self.skip_past("?>", "processing instruction")?;
            } else if rest.starts_with("<!") {
                self.skip_declaration()?;
            } else if let Some(after) = rest.strip_prefix("</") {
                let (name, n) = take_name(after);
                if name.is_empty() {
                    return Err(format!("bad end tag at byte {}", self.pos));
                }
                let tail = after.get(n..).unwrap_or("");
                let ws = tail.len() - tail.trim_start().len();
                if !tail.get(ws..).unwrap_or("").starts_with('>') {
                    return Err(format!("bad end tag </{name}> at byte {}", self.pos));
                }
                self.pos += 2 + n + ws + 1;
                return Ok(Some(Token::End { name }));
            } else {
                return self.start_tag().map(Some);
            }
        }
    }

    /// `<!DOCTYPE …>` (with an optional `[…]` internal subset) or another `<!…>` declaration.
    fn skip_declaration(&mut self) -> Result<(), String> {
        let start = self.pos;
        let b = self.s.as_bytes();
        let mut i = self.pos + 2;
        let mut in_subset = false;
        let mut quote: Option<u8> = None;
        while let Some(&c) = b.get(i) {
            match (quote, c) {
                (Some(q), _) if c == q => quote = None,
                (Some(_), _) => {}
                (None, b'"' | b'\'') => quote = Some(c),
                (None, b'[') => in_subset = true,
                (None, b']') => in_subset = false,
                (None, b'>') if !in_subset => {
                    self.pos = i + 1;
                    return Ok(());
                }
                _ => {}
            }
            i += 1;
        }
        Err(format!("unterminated declaration at byte {start}"))
    }

    /// `<name attr="v" attr='v'>` or `<name …/>`.
    fn start_tag(&mut self) -> Result<Token<'a>, String> {
        let start = self.pos;
        let after = self.rest().get(1..).unwrap_or("");
        let (name, n) = take_name(after);
        if name.is_empty() {
            return Err(format!("bad '<' at byte {start}"));
        }
        self.pos += 1 + n;
        let mut attrs: Vec<(&'a str, String)> = Vec::new();
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            let ws = rest.len() - trimmed.len();
            self.pos += ws;
            if let Some(t) = trimmed.strip_prefix("/>") {
                let _ = t;
                self.pos += 2;
                return Ok(Token::Start { name, attrs, empty: true });
            }
            if trimmed.starts_with('>') {
                self.pos += 1;
                return Ok(Token::Start { name, attrs, empty: false });
            }
            if trimmed.is_empty() {
                return Err(format!("unterminated tag <{name}> at byte {start}"));
            }
            if ws == 0 {
                return Err(format!("missing blank before an attribute in <{name}> at byte {}", self.pos));
            }
            let (aname, n) = take_name(trimmed);
            if aname.is_empty() {
                return Err(format!("bad attribute in <{name}> at byte {}", self.pos));
            }
            self.pos += n;
            let rest = self.rest();
            let t = rest.trim_start();
            let Some(t2) = t.strip_prefix('=') else {
                return Err(format!("attribute {aname} of <{name}> has no value at byte {}", self.pos));
            };
            let t3 = t2.trim_start();
            self.pos += rest.len() - t3.len();
            let Some(q) = t3.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                return Err(format!("attribute {aname} of <{name}> is not quoted at byte {}", self.pos));
            };
            let body = t3.get(1..).unwrap_or("");
            let Some(end) = body.find(q) else {
                return Err(format!("unterminated value of attribute {aname} at byte {}", self.pos));
            };
            let raw = body.get(..end).unwrap_or("");
            if raw.contains('<') {
                return Err(format!("'<' in the value of attribute {aname} at byte {}", self.pos));
            }
            let value = decode(raw).map_err(|e| format!("attribute {aname} of <{name}>: {e}"))?;
            if attrs.iter().any(|(k, _)| *k == aname) {
                return Err(format!("attribute {aname} repeated in <{name}> at byte {}", self.pos));
            }
            attrs.push((aname, value));
            self.pos += 1 + end + 1;
        }
    }
}

/// An XML name at the start of `s` (letters, digits, `_ - . :`, anything non-ASCII); its
/// length in bytes.
fn take_name(s: &str) -> (&str, usize) {
    let n = s
        .char_indices()
        .find(|&(i, c)| {
            let ok = c.is_alphanumeric() || matches!(c, '_' | ':' | '-' | '.') || !c.is_ascii();
            !ok || (i == 0 && (c.is_ascii_digit() || c == '-' || c == '.'))
        })
        .map_or(s.len(), |(i, _)| i);
    (s.get(..n).unwrap_or(""), n)
}

/// Text between tags may hold character references; a bare `&` or `>`-less markup is an error.
fn check_text(t: &str, at: usize) -> Result<(), String> {
    decode(t).map(|_| ()).map_err(|e| format!("{e} in text at byte {at}"))
}

/// Replaces the predefined entities and numeric character references.
fn decode(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or(""));
        let after = rest.get(amp + 1..).unwrap_or("");
        let Some(semi) = after.find(';').filter(|&i| i <= 10) else {
            return Err("a bare '&'".to_string());
        };
        let ent = after.get(..semi).unwrap_or("");
        let c = match ent {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(h) = ent.strip_prefix("#x") {
                    u32::from_str_radix(h, 16).ok()
                } else if let Some(d) = ent.strip_prefix('#') {
                    d.parse::<u32>().ok()
                } else {
                    None
                };
                code.filter(|&c| c != 0).and_then(char::from_u32).ok_or_else(|| format!("unknown entity &{ent};"))?
            }
        };
        out.push(c);
        rest = after.get(semi + 1..).unwrap_or("");
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMMY: &str = r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="Dummy" version="1.0">
<version>1.0</version>
<longdesc lang="en">
This is a dummy OCF resource agent. It does absolutely nothing except keep track
of whether it is running or not, &amp; it's <b>useful</b> for testing.
</longdesc>
<shortdesc lang="en">Example stateless resource agent</shortdesc>
<!-- a comment with <parameter name="fake"> inside -->
<parameters>
<parameter name="state" unique-group="state">
<longdesc lang="en"><![CDATA[Location to store the <resource> state in.]]></longdesc>
<shortdesc lang="en">State file</shortdesc>
<content type="string" default="/run/resource-agents/Dummy-&#x7B;OCF_RESOURCE_INSTANCE&#125;.state" />
</parameter>
<parameter name='ip' required='1' unique="1">
<longdesc lang="en">x</longdesc><shortdesc lang="en">y</shortdesc>
<content type = "string"/>
</parameter>
<parameter name="mode"><longdesc lang="en">m</longdesc><shortdesc lang="en">m</shortdesc>
<content type="select" default="live"><option value="live"/><option value="dry-run"/></content>
</parameter>
</parameters>
<actions>
<action name="start"        timeout="20s" />
<action name="stop"         timeout="20s" />
<action name="monitor"      timeout="20s" interval="10s" depth="0"/>
<action name="meta-data"    timeout="5s" />
<action name="validate-all" timeout="20s" />
</actions>
<special tag="x"><parameter name="not-a-parameter"/></special>
</resource-agent>
"#;

    #[test]
    fn reads_parameters_defaults_and_actions() {
        let md = parse(DUMMY).unwrap();
        assert_eq!(md.name, "Dummy");
        let names: Vec<&str> = md.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["state", "ip", "mode"]);
        let state = md.param("state").unwrap();
        assert!(!state.required && !state.unique);
        assert_eq!(state.default.as_deref(), Some("/run/resource-agents/Dummy-{OCF_RESOURCE_INSTANCE}.state"));
        assert_eq!(state.content_type.as_deref(), Some("string"));
        let ip = md.param("ip").unwrap();
        assert!(ip.required && ip.unique);
        assert_eq!(ip.default, None);
        assert_eq!(md.param("mode").unwrap().default.as_deref(), Some("live"));
        assert_eq!(md.actions, ["start", "stop", "monitor", "meta-data", "validate-all"]);
        assert!(md.has_action("validate-all"));
        assert!(md.param("not-a-parameter").is_none() && md.param("fake").is_none());
    }

    #[test]
    fn doctype_with_internal_subset_and_no_declaration() {
        let x = "<!DOCTYPE resource-agent [ <!ENTITY x \"a>b\"> ]>\n<resource-agent name=\"a\"><parameters/><actions/></resource-agent>";
        assert_eq!(parse(x).unwrap().name, "a");
        assert_eq!(parse("<resource-agent name='x'/>").unwrap().name, "x");
    }

    #[test]
    fn malformed_input_is_an_error() {
        for (x, want) in [
            ("", "no <resource-agent>"),
            ("<foo/>", "root must be <resource-agent>"),
            ("<resource-agent>", "not closed"),
            ("<resource-agent></parameters>", "closes <resource-agent>"),
            ("<resource-agent/></x>", "without an open element"),
            ("<resource-agent/><resource-agent/>", "unexpected element"),
            ("<resource-agent name=x/>", "not quoted"),
            ("<resource-agent name=\"x/>", "unterminated value"),
            ("<resource-agent name/>", "has no value"),
            ("<resource-agent a='1' a='2'/>", "repeated"),
            ("<resource-agent a='1'b='2'/>", "missing blank"),
            ("<resource-agent a='&bogus;'/>", "unknown entity"),
            ("<resource-agent a='&#0;'/>", "unknown entity"),
            ("<resource-agent a='<'/>", "'<' in the value"),
            ("<resource-agent>a & b</resource-agent>", "bare '&'"),
            ("<!-- x", "unterminated comment"),
            ("<![CDATA[ x", "unterminated CDATA"),
            ("<!DOCTYPE x [ > ", "unterminated declaration"),
            ("<resource-agent><parameters><parameter/></parameters></resource-agent>", "without a name"),
            ("< resource-agent/>", "bad '<'"),
            ("<resource-agent></ resource-agent>", "bad end tag"),
            ("<resource-agent></resource-agent x>", "bad end tag"),
            ("<resource-agent", "unterminated tag"),
        ] {
            match parse(x) {
                Err(e) => assert!(e.contains(want), "{x:?}: {e}"),
                Ok(m) => panic!("{x:?} accepted: {m:?}"),
            }
        }
        let deep = format!("{}{}", "<resource-agent>".to_string() + &"<a>".repeat(MAX_DEPTH), "");
        assert!(parse(&deep).unwrap_err().contains("deeper"));
        assert!(parse(&" ".repeat(MAX_LEN + 1)).unwrap_err().contains("larger"));
    }

    #[test]
    fn every_prefix_of_a_document_is_handled() {
        // No panic and no false success on any truncation.
        for i in 0..DUMMY.trim_end().len() {
            if let Some(p) = DUMMY.get(..i) {
                assert!(parse(p).is_err(), "prefix of {i} bytes accepted");
            }
        }
    }
}
