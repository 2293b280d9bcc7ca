//! The load driver: wrk, with Lua scripts that print its summary as one JSON line.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tokio::process::Command;

use crate::postgres::find_on_path;

/// Prefix of the summary line printed by [`DONE_LUA`].
const SUMMARY_PREFIX: &str = "XTASK_BENCH_JSON ";

const DONE_LUA: &str = r#"
-- Written by `cargo xtask bench`: print the summary as one JSON line.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'XTASK_BENCH_JSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%.0f,"max":%.0f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"p999":%.0f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.min, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
"#;

const POST_LUA: &str = r#"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"content":"Benchmark post: the quick brown fox jumps over the lazy dog."}'
"#;

/// wrk, found on PATH, with its scripts written to a work directory.
pub struct Wrk {
    pub program: PathBuf,
    get_script: PathBuf,
    post_script: PathBuf,
}

/// How hard and how long wrk drives a URL.
#[derive(Debug, Clone, Copy)]
pub struct LoadShape {
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
}

/// wrk's summary line, as printed by [`DONE_LUA`].
#[derive(Debug, Clone, Deserialize)]
pub struct WrkSummary {
    pub requests: u64,
    pub duration_us: u64,
    pub bytes: u64,
    pub errors: ErrorCounts,
    pub latency_us: LatencyUs,
}

/// Socket errors and non-2xx/3xx responses, as wrk counts them.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ErrorCounts {
    pub connect: u64,
    pub read: u64,
    pub status: u64,
    pub timeout: u64,
    pub write: u64,
}

/// wrk's latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct LatencyUs {
    pub mean: f64,
    pub max: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
}

/// One wrk run: the summary and wrk's human-readable output.
#[derive(Debug, Clone)]
pub struct WrkRun {
    pub summary: WrkSummary,
    pub text: String,
}

impl ErrorCounts {
    /// Non-2xx/3xx responses plus socket errors (connect, read, write, timeout).
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.status + self.timeout
    }
}

impl WrkSummary {
    pub fn requests_per_second(&self) -> f64 {
        let seconds = self.duration_us as f64 / 1e6;
        if seconds > 0.0 {
            self.requests as f64 / seconds
        } else {
            0.0
        }
    }

    pub fn bytes_per_response(&self) -> f64 {
        if self.requests > 0 {
            (self.bytes as f64 / self.requests as f64).round()
        } else {
            0.0
        }
    }
}

impl Wrk {
    /// Finds wrk and writes its scripts into `dir`.
    pub fn find(dir: &Path) -> Result<Self> {
        let program = find_on_path("wrk").context(
            "the load generator `wrk` was not found on PATH. Install it (Debian/Ubuntu: \
             `apt-get install wrk`; macOS: `brew install wrk`; Nix: `nix shell nixpkgs#wrk`) and \
             run `cargo xtask bench` again",
        )?;
        Ok(Self {
            program,
            get_script: dir.join("get.lua"),
            post_script: dir.join("post.lua"),
        })
    }

    pub fn write_scripts(&self) -> Result<()> {
        std::fs::write(&self.get_script, DONE_LUA)?;
        std::fs::write(&self.post_script, format!("{POST_LUA}{DONE_LUA}"))?;
        Ok(())
    }

    /// Drives `method url` (GET, or POST of one message) for `shape.duration`.
    pub async fn run(&self, shape: LoadShape, method: &str, url: &str) -> Result<WrkRun> {
        let script = if method == "POST" {
            &self.post_script
        } else {
            &self.get_script
        };
        let output = Command::new(&self.program)
            .arg(format!("-t{}", shape.threads))
            .arg(format!("-c{}", shape.connections))
            .arg(format!("-d{}s", shape.duration.as_secs().max(1)))
            .args(["--timeout", "2s", "--latency", "-s"])
            .arg(script)
            .arg(url)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .context("cannot run wrk")?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            bail!("wrk failed ({}):\n{stdout}\n{stderr}", output.status);
        }
        parse_output(&stdout).with_context(|| format!("wrk's output:\n{stdout}\n{stderr}"))
    }
}

fn parse_output(stdout: &str) -> Result<WrkRun> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(SUMMARY_PREFIX))
        .context("no summary line in wrk's output")?;
    let summary: WrkSummary = serde_json::from_str(line)
        .with_context(|| format!("cannot parse wrk's summary: {line}"))?;
    let text = stdout
        .lines()
        .filter(|l| !l.starts_with(SUMMARY_PREFIX.trim_end()))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(WrkRun { summary, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_is_parsed_and_removed_from_the_text() {
        let stdout = "Running 1s test @ http://127.0.0.1:1/\n\
            XTASK_BENCH_JSON {\"requests\":200,\"duration_us\":2000000,\"bytes\":35000,\
            \"errors\":{\"connect\":0,\"read\":1,\"write\":0,\"status\":2,\"timeout\":0},\
            \"latency_us\":{\"mean\":950.5,\"stdev\":10.0,\"min\":100,\"max\":9000,\
            \"p50\":900,\"p90\":1500,\"p99\":4000,\"p999\":8000}}\n";
        let run = parse_output(stdout).unwrap();
        assert_eq!(run.summary.requests_per_second(), 100.0);
        assert_eq!(run.summary.bytes_per_response(), 175.0);
        assert_eq!(run.summary.errors.total(), 3);
        assert_eq!(run.summary.latency_us.p99, 4000.0);
        assert_eq!(run.text, "Running 1s test @ http://127.0.0.1:1/");
    }
}
