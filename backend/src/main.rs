//! The `drydock` binary (placeholder until the server lands).
fn main() {
    println!("drydock {}", env!("CARGO_PKG_VERSION"));
}
