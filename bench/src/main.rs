//! `drydock-bench`: measures a running Drydock server through its public API (placeholder).
fn main() {
    println!("drydock-bench {}", env!("CARGO_PKG_VERSION"));
}
