//! What the pure parse of a configuration gives (tandem's file or heartbeat's ha.d), before
//! the host's facts are applied. A leaf of `config` besides the types of `mod.rs`.

use super::{Config, ConfigWarning};

/// The result of the pure parse: a [`Config`] that is complete except for host facts.
///
/// In `config`: `local` is 0 (unresolved), `key` is empty (not read), `links` still holds
/// every link line (including the `ucast` line that points at this host itself).
/// `link_lines[i]` is the line of `config.links[i]`; `node_line` and `authkey_line` are the
/// lines of the first `node` and of the `authkey` directive (for host-fact errors).
#[derive(Debug, Clone)]
pub struct Parsed {
    pub config: Config,
    pub link_lines: Vec<usize>,
    pub node_line: usize,
    pub authkey_line: usize,
    /// The line of `authkey_accept` (0 when there is none).
    pub authkey_accept_line: usize,
    pub warnings: Vec<ConfigWarning>,
}
