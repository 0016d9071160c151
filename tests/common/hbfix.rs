//! The heartbeat 3.0.6 captures in tests/fixtures/hb (listed in captures.tsv): every message
//! as sent, with the fields as an independent decoder (the capture script) saw them.
#![allow(dead_code)]

use std::path::PathBuf;

use tandem::hb::auth::AuthKeys;

pub struct Rec {
    pub i: u64,
    /// Epoch seconds (the capturing machine's clock).
    pub t: f64,
    /// "hn1->hn2" or "hn2->hn1".
    pub dir: String,
    /// "netstring" or "classic".
    pub framing: String,
    pub raw: Vec<u8>,
    pub fields: Vec<(u8, String, Vec<u8>)>,
}

impl Rec {
    pub fn sender(&self) -> &str {
        self.dir.split("->").next().unwrap_or("")
    }
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields.iter().find(|f| f.1 == name).map(|f| f.2.as_slice())
    }
    pub fn field_str(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(|v| std::str::from_utf8(v).ok())
    }
}

pub struct Capture {
    pub name: String,
    pub authkeys: String,
    pub keys: AuthKeys,
    pub medium: String,
    pub msgs: Vec<Rec>,
    /// The rig's actions: (epoch seconds, text).
    pub events: Vec<(f64, String)>,
}

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hb")
}

pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

pub fn load(name: &str) -> Capture {
    captures().into_iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no capture {name} in captures.tsv"))
}

pub fn captures() -> Vec<Capture> {
    let list = std::fs::read_to_string(dir().join("captures.tsv")).unwrap();
    let mut v = Vec::new();
    for line in list.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let (name, authline, medium) = (cols[0], cols[1], cols[2]);
        let authkeys = format!("auth 1\n{authline}\n");
        let keys = AuthKeys::parse(authkeys.as_bytes()).unwrap();
        let text = std::fs::read_to_string(dir().join(format!("{name}.messages.jsonl"))).unwrap();
        let mut msgs = Vec::new();
        for l in text.lines() {
            let j: serde_json::Value = serde_json::from_str(l).unwrap();
            let fields = j["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    let t = f[0].as_u64().unwrap() as u8;
                    let n = f[1].as_str().unwrap().to_string();
                    let val = f[2].as_str().unwrap();
                    // Strings were written as latin-1 text, binary values as hex.
                    let bytes = if t == 1 { unhex(val) } else { val.chars().map(|c| c as u32 as u8).collect() };
                    (t, n, bytes)
                })
                .collect();
            msgs.push(Rec {
                i: j["i"].as_u64().unwrap(),
                t: j["t"].as_f64().unwrap(),
                dir: j["dir"].as_str().unwrap().to_string(),
                framing: j["framing"].as_str().unwrap().to_string(),
                raw: unhex(j["raw_hex"].as_str().unwrap()),
                fields,
            });
        }
        let events = std::fs::read_to_string(dir().join(format!("{name}-events.txt")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (t, what) = l.split_once(' ')?;
                Some((t.parse().ok()?, what.to_string()))
            })
            .collect();
        v.push(Capture { name: name.to_string(), authkeys, keys, medium: medium.to_string(), msgs, events });
    }
    v
}

/// The serial byte log of a capture: (direction, bytes of one read), in time order.
pub fn serial_reads(name: &str) -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(dir().join(format!("{name}.bytes.jsonl"))).unwrap();
    text.lines()
        .filter_map(|l| {
            let j: serde_json::Value = serde_json::from_str(l).unwrap();
            Some((j["dir"].as_str()?.to_string(), unhex(j["hex"].as_str()?)))
        })
        .collect()
}
