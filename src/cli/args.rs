//! A small argument splitter: options with values, flags, and positional words.

/// Splits `args` into options (with their values) and positional words.
pub struct Args {
    pub words: Vec<String>,
    opts: Vec<(String, Option<String>)>,
}

pub fn parse_args(args: &[String], with_value: &[&str], flags: &[&str]) -> Result<Args, String> {
    let mut words = Vec::new();
    let mut opts = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some((k, v)) = a.split_once('=').filter(|(k, _)| k.starts_with("--")) {
            if with_value.contains(&k) {
                opts.push((k.to_string(), Some(v.to_string())));
                continue;
            }
            return Err(format!("unknown option {k}"));
        }
        if with_value.contains(&a.as_str()) {
            let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
            opts.push((a.clone(), Some(v.clone())));
        } else if flags.contains(&a.as_str()) {
            opts.push((a.clone(), None));
        } else if a.starts_with('-') && a.len() > 1 {
            return Err(format!("unknown option {a}"));
        } else {
            words.push(a.clone());
        }
    }
    Ok(Args { words, opts })
}

impl Args {
    pub fn get(&self, names: &[&str]) -> Option<String> {
        self.opts.iter().rev().find(|(k, _)| names.contains(&k.as_str())).and_then(|(_, v)| v.clone())
    }
    pub fn has(&self, name: &str) -> bool {
        self.opts.iter().any(|(k, _)| k == name)
    }
}
