//! Fuzz what OCF brings in from outside: an agent's meta-data XML (read by check-config) and
//! the OCF_RESKEY_* parameters a cluster manager gives tandem's own agents.
//! Properties: no panic; no more parameters or actions than tags; parameters that parse
//! give back the same spec through `params_of`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::agent::ocf::{metadata, ra};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(md) = metadata::parse(&text) {
        assert!(md.params.len() <= text.matches("<parameter").count());
        assert!(md.actions.len() <= text.matches("<action").count());
    }
    // The same bytes as NAME=VALUE lines, for every agent.
    let vars: Vec<(String, String)> =
        text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for agent in &ra::AGENTS {
        if let Ok(cfg) = agent.parse_params(&vars) {
            let (again, params) = ra::params_of(&cfg.spec).expect("one of tandem's agents");
            assert_eq!(again.name, agent.name);
            assert_eq!(agent.parse_params(&params).map(|c| c.spec).as_ref(), Ok(&cfg.spec));
        }
    }
});
