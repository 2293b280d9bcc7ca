//! The flags of `cargo xtask bench` and the options they resolve to.

use std::path::PathBuf;
use std::time::Duration;

use super::stack::unique;

/// Load generator connections (the targets are stated at 64).
pub const CONNECTIONS: u32 = 64;

/// Flags of `cargo xtask bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Smoke run: ~3 s per scenario (1 s warm-up, 2 s measured), 3 start-up runs, no fsync
    /// probe; writes to a temporary directory unless --out is given.
    #[arg(long)]
    pub quick: bool,
    /// Directory for results.json and results.md (default: benchmarks/, or a temporary
    /// directory with --quick).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Measured seconds per scenario (default 15, 2 with --quick).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u64>,
    /// Warm-up seconds per scenario, not measured (default 5, 1 with --quick).
    #[arg(long, value_name = "SECONDS")]
    pub warmup: Option<u64>,
    /// Concurrent connections of the load generator.
    #[arg(long, default_value_t = CONNECTIONS)]
    pub connections: u32,
    /// Load generator threads (default: the number of cores).
    #[arg(long)]
    pub threads: Option<u32>,
    /// Start-up runs per service (default 9, 3 with --quick).
    #[arg(long)]
    pub startup_runs: Option<usize>,
    /// Run only these scenarios (repeatable or comma separated; see the table for names).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Build and run the debug binaries instead of release (smoke tests only; numbers are
    /// meaningless).
    #[arg(long)]
    pub debug: bool,
    /// Do not run `cargo build` first (use the binaries already in target/).
    #[arg(long)]
    pub no_build: bool,
    /// Directory holding initdb and pg_ctl (default: found on PATH).
    #[arg(long, env = "PG_BIN")]
    pub pg_bin: Option<PathBuf>,
}

/// Resolved options.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub root: PathBuf,
    pub catalog_path: PathBuf,
    pub quick: bool,
    pub out_dir: PathBuf,
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: u32,
    pub threads: u32,
    pub startup_runs: usize,
    pub only: Vec<String>,
    pub release: bool,
    pub build: bool,
    pub pg_bin: Option<PathBuf>,
    /// The command as typed, recorded in the results.
    pub command_line: String,
}

impl BenchArgs {
    pub fn into_options(self) -> BenchOptions {
        let root = crate::workspace_root();
        let quick = self.quick;
        let out_dir = match self.out {
            Some(dir) if dir.is_relative() => std::env::current_dir().unwrap_or_default().join(dir),
            Some(dir) => dir,
            None if quick => std::env::temp_dir().join(format!("xtask-bench-quick-{}", unique())),
            None => root.join("benchmarks"),
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        BenchOptions {
            catalog_path: root.join(catalog::FILE_NAME),
            root,
            quick,
            out_dir,
            duration: Duration::from_secs(
                self.duration.unwrap_or(if quick { 2 } else { 15 }).max(1),
            ),
            warmup: Duration::from_secs(self.warmup.unwrap_or(if quick { 1 } else { 5 })),
            connections: self.connections.max(1),
            threads: self
                .threads
                .unwrap_or(cores() as u32)
                .clamp(1, self.connections.max(1)),
            startup_runs: self
                .startup_runs
                .unwrap_or(if quick { 3 } else { 9 })
                .max(1),
            only: self.only,
            release: !self.debug,
            build: !self.no_build,
            pg_bin: self.pg_bin,
            command_line: format!("cargo xtask {}", args.join(" ")),
        }
    }
}

impl BenchOptions {
    /// `release` or `debug`.
    pub fn profile(&self) -> &'static str {
        if self.release { "release" } else { "debug" }
    }
}

/// Cores available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
