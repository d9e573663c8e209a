fn main() {
    rebound::suite::Suite::new("scenarios").run()
}
