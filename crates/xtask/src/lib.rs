//! Developer tasks of the workspace, run as `cargo xtask <task>` (alias in `.cargo/config.toml`).
//!
//! - `dev`: the local stack (Postgres, migrations, every service of the catalog and a
//!   router mirroring the production load balancer), see [`dev`].
//! - `report`: the figures of `docs/comparison.md`, recomputed from the repository, see [`report`].
//! - `bench`: the benchmark suite (wrk against the release binaries), see [`bench`].

pub mod bench;
pub mod dev;
pub mod output;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod proxy;
pub mod reaper;
pub mod report;

use std::path::PathBuf;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    catalog::workspace_root()
}
