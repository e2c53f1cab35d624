//! The `drydock-agent` binary (placeholder).
fn main() {
    println!("drydock-agent {}", env!("CARGO_PKG_VERSION"));
}
