fn main() {
    eprintln!("umlrun: not yet");
    std::process::exit(1);
}
