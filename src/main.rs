//! `tandem`: one binary, many commands (src/cli).

fn main() {
    std::process::exit(tandem::cli::main(std::env::args().collect()));
}
