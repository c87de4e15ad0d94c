fn main() {
    eprintln!("umlcow: not yet");
    std::process::exit(1);
}
