//! `make bench`: what the plugin costs its host, next to the openai npm
//! package and two floors, against one fast local upstream (see
//! tests/src/bench/ and the README's Benchmarks section).

fn main() {
    moonshot_tests::bench::run::main();
}
