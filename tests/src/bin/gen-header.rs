//! Writes include/moonshot_provider.h (`make header`).
fn main() {
    let path = moonshot_tests::header::header_path();
    std::fs::write(&path, moonshot_tests::header::generate_header()).expect("write the header");
    println!("wrote {}", path.display());
}
