//! The benchmark command in quick mode (`cargo xtask bench --quick`, here its binary) produces
//! its table: every scenario present, zero errors, numbers greater than zero, and the CPU time
//! per request of the api and of Postgres (in the measured runs and the ceiling runs) greater
//! than zero. No timing assertions: this checks the harness, not the performance (see
//! benchmarks/results.md).
//!
//! Uses the debug binaries (`--debug`, built by the command itself) so the test suite does not
//! need a release build. Needs wrk and the PostgreSQL server programs on PATH; missing programs
//! fail the test with the command's message.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn number(value: &Value, what: &str) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"))
}

#[test]
fn quick_bench_produces_its_table() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "--quick", "--debug", "--out"])
        .arg(out.path())
        .output()
        .expect("run cargo xtask bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "cargo xtask bench --quick failed ({}):\n{stdout}\n{stderr}",
        output.status
    );

    let names = xtask::bench::scenario_names();
    assert_eq!(names.len(), 5);
    // The printed table has a row per scenario.
    for name in &names {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("| {name} |"))),
            "no table row for {name} in:\n{stdout}"
        );
    }

    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["quick"], Value::Bool(true));
    let scenarios = results["scenarios"].as_array().expect("scenarios array");
    let found: Vec<&str> = scenarios
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(found, names, "all scenarios, in order");
    for s in scenarios {
        let name = s["name"].as_str().unwrap();
        assert_eq!(s["errors"], Value::from(0), "{name}: errors in {s}");
        assert!(number(&s["requests"], "requests") > 0.0, "{name}: {s}");
        assert!(
            number(&s["requests_per_second"], "rps") > 0.0,
            "{name}: {s}"
        );
        assert!(number(&s["latency_ms"]["p50"], "p50") > 0.0, "{name}: {s}");
        assert!(number(&s["latency_ms"]["p99"], "p99") > 0.0, "{name}: {s}");
        assert_cpu_measured(name, s);
    }
    for service in ["api", "web"] {
        let memory = &results["memory"][service];
        assert!(number(&memory["idle_rss_bytes"], "idle") > 0.0, "{memory}");
        assert!(number(&memory["peak_rss_bytes"], "peak") > 0.0, "{memory}");
        let startup = &results["startup"][service];
        assert!(number(&startup["best_ms"], "best") > 0.0, "{startup}");
        assert!(number(&startup["median_ms"], "median") > 0.0, "{startup}");
    }
    let sizes = results["sizes"].as_array().expect("sizes array");
    for artifact in ["api", "web", "migrate", "bootstrap"] {
        let size = sizes
            .iter()
            .find(|a| a["name"] == artifact)
            .unwrap_or_else(|| panic!("no size for {artifact}"));
        assert!(number(&size["bytes"], "bytes") > 0.0, "{size}");
    }
    for key in ["cores", "cpu_model", "date", "git_rev"] {
        assert!(!results["machine"][key].is_null(), "machine.{key} missing");
    }
    assert!(
        results["command"]
            .as_str()
            .unwrap()
            .starts_with("cargo xtask bench")
    );

    let markdown = std::fs::read_to_string(out.path().join("results.md")).unwrap();
    assert_cpu_table(&markdown, &names);
    for name in &names {
        assert!(
            markdown.contains(&format!("| {name} |")),
            "{name} missing from results.md"
        );
    }
    // Quick mode never touches the committed results.
    assert!(!Path::new(out.path()).join("README.md").exists());
}

/// The CPU per request of the api (every scenario loads it, the web's through the web) and of
/// Postgres (every scenario but the api's health), in the measured run and in the ceiling run.
fn assert_cpu_measured(name: &str, s: &Value) {
    let cpu = &s["cpu_per_request"];
    assert!(number(&cpu["api_us"], "api µs") > 0.0, "{name}: {cpu}");
    if name != "api_health" {
        assert!(
            number(&cpu["postgres_us"], "postgres µs") > 0.0,
            "{name}: {cpu}"
        );
    }
    assert!(number(&cpu["total_us"], "total µs") > 0.0, "{name}: {cpu}");
    if name == "web_index" {
        assert!(number(&cpu["web_us"], "web µs") > 0.0, "{name}: {cpu}");
    }
    if !s["ceiling"].is_null() {
        let ceiling = &s["ceiling"]["cpu_per_transaction"];
        assert!(
            number(&ceiling["postgres_us"], "ceiling postgres µs") > 0.0,
            "{name}: {ceiling}"
        );
    }
}

/// results.md has the CPU table right after the headline: a row per scenario whose api and
/// postgres cells are numbers above zero (postgres: not for the api's health).
fn assert_cpu_table(markdown: &str, names: &[&str]) {
    let header = "| scenario | api µs/req | web µs/req | postgres µs/req |";
    let start = markdown
        .find(header)
        .unwrap_or_else(|| panic!("no CPU table in results.md:\n{markdown}"));
    let headline = markdown.find("| api / ceiling |").expect("headline table");
    assert!(headline < start, "the CPU table follows the headline");
    let rows: Vec<&str> = markdown[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    for name in names {
        let row = rows
            .iter()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no CPU row for {name} in:\n{}", rows.join("\n")));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let cell = |i: usize| -> f64 {
            cells[i]
                .parse()
                .unwrap_or_else(|_| panic!("{name}: cell {i} is not a number: {row}"))
        };
        assert!(cell(2) > 0.0, "{name}: api µs/req in {row}");
        if *name != "api_health" {
            assert!(cell(4) > 0.0, "{name}: postgres µs/req in {row}");
        }
    }
}
