//! Fuzz the metrics responder's request parser, which reads bytes from any client that can
//! reach `metrics_listen`. Properties: no panic; a parsed request's method is upper-case
//! letters and its path starts with '/' and holds no query; the answer is one of the
//! documented ones; a prefix of an accepted request never parses as another request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::daemon::http::{answer_for, parse_request, Answer, Parse};

fuzz_target!(|data: &[u8]| {
    let p = parse_request(data);
    if let Parse::Request { method, path } = p {
        assert!(!method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()));
        assert!(path.starts_with('/') && !path.contains('?'));
    }
    match answer_for(p) {
        Answer::Metrics | Answer::Wait => {}
        Answer::Status(code) => assert!([400, 404, 405, 431].contains(&code)),
    }
    for cut in [1, data.len() / 2] {
        if let Some(prefix) = data.get(..data.len().saturating_sub(cut)) {
            if let (Parse::Request { path: a, .. }, Parse::Request { path: b, .. }) = (parse_request(prefix), p) {
                assert_eq!(a, b, "a prefix parsed as another request");
            }
        }
    }
});
