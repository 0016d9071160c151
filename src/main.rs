//! `tandem`: one binary, many commands (src/cli).

fn main() {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    // Also answers to heartbeat's command names (hb_standby, hb_takeover, cl_status).
    std::process::exit(tandem::cli::run_as(&argv0, args.collect()));
}
