//! Rebuilds the crate when an embedded migration changes (`sqlx::migrate!` cannot track files).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
