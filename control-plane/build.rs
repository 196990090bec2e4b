//! `sqlx::migrate!` embeds `migrations/` at compile time; without this a new
//! migration file alone does not rebuild the control plane (the binary then
//! silently lacks it).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
