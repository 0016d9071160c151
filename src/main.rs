fn main() {
    std::process::exit(tandem_main());
}

fn tandem_main() -> i32 {
    0
}
