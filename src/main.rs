//! `tandem`: one binary, many commands (src/cli).

fn main() {
    std::process::exit(tandem::cli::run(std::env::args().skip(1).collect()));
}
