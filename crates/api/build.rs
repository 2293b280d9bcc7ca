// Compile the `sqlx::query!` macros against the committed offline data (`.sqlx/` at the
// workspace root) unless told otherwise, so a `DATABASE_URL` in the environment (e.g. for
// the tests) never makes the build connect to a database. `cargo sqlx prepare` sets
// SQLX_OFFLINE=false itself and still works.
fn main() {
    println!("cargo:rerun-if-env-changed=SQLX_OFFLINE");
    if std::env::var_os("SQLX_OFFLINE").is_none() {
        println!("cargo:rustc-env=SQLX_OFFLINE=true");
    }
}
