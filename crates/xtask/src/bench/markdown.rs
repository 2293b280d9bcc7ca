//! `results.md` and the console table, rendered from [`Results`] alone.

use std::fmt::Write as _;

use super::cpu::CpuPerRequest;
use super::results::{Results, ScenarioResult, TARGET_STARTUP_MS};

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

fn yes_no(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

/// The console table (also the tables of the Markdown's results section).
pub fn table(r: &Results) -> String {
    let mut t = ceiling_table(r);
    t.push('\n');
    t.push_str(&cpu_table(r));
    t.push('\n');
    t.push_str(&scenario_table(r));
    t.push('\n');
    t.push_str(&service_table(r));
    t.push('\n');
    t.push_str(&artifact_table(r));
    t
}

/// The headline: each scenario that has a database ceiling, against it.
fn ceiling_table(r: &Results) -> String {
    let mut t = String::new();
    t.push_str("| scenario | api req/s | ceiling: pgbench tps, same statement | api / ceiling | target | p99 ms | met | load avg 1 min |\n");
    t.push_str("| --- | ---: | ---: | ---: | --- | ---: | --- | ---: |\n");
    for s in &r.scenarios {
        let (Some(ceiling), Some(ratio)) = (&s.ceiling, s.ceiling_ratio) else {
            continue;
        };
        let target = s
            .target
            .ceiling_ratio
            .map_or("—".to_owned(), |t| format!("≥ {:.0} %", t * 100.0));
        let _ = writeln!(
            t,
            "| {} | {:.0} | {:.0} | **{:.0} %** | {target} | {:.2} | {} | {:.2} |",
            s.name,
            s.requests_per_second,
            ceiling.transactions_per_second,
            ratio * 100.0,
            s.latency_ms.p99,
            yes_no(s.target.met),
            s.load_average[0],
        );
    }
    t
}

/// The measured reason: CPU microseconds per request of each process group, in the api run
/// and in the ceiling run, and the ratio they allow when the machine is the limit.
fn cpu_table(r: &Results) -> String {
    let mut t = String::new();
    t.push_str("| scenario | api µs/req | web µs/req | postgres µs/req | wrk µs/req | total µs/req | machine µs/req | ceiling: postgres µs/tx | pgbench µs/tx | total µs/tx | machine µs/tx | ratio if CPU-bound |\n");
    t.push_str(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for s in &r.scenarios {
        let run = &s.cpu_per_request;
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} |",
            s.name,
            optional_us(run.api_us),
            optional_us(run.web_us),
            run.postgres_us,
            run.load_generator_us,
            run.total_us,
            run.machine_us,
            ceiling_cpu_cells(s.ceiling_cpu()),
            cpu_bound_ratio(s).map_or("—".to_owned(), |v| format!("{:.0} %", v * 100.0)),
        );
    }
    t
}

fn optional_us(us: Option<f64>) -> String {
    us.map_or("—".to_owned(), |v| format!("{v:.0}"))
}

/// The ceiling run's postgres, pgbench, total and machine cells.
fn ceiling_cpu_cells(cpu: Option<&CpuPerRequest>) -> String {
    cpu.map_or("— | — | — | —".to_owned(), |c| {
        format!(
            "{:.0} | {:.0} | {:.0} | {:.0}",
            c.postgres_us, c.load_generator_us, c.total_us, c.machine_us
        )
    })
}

/// The ceiling's total CPU per transaction ÷ the api run's total CPU per request: what
/// `api / ceiling` approaches when both runs are bound by the machine's CPU, not by latency.
pub fn cpu_bound_ratio(s: &ScenarioResult) -> Option<f64> {
    let ceiling = s.ceiling_cpu()?;
    (s.cpu_per_request.total_us > 0.0).then(|| ceiling.total_us / s.cpu_per_request.total_us)
}

fn scenario_table(r: &Results) -> String {
    let mut t = String::new();
    t.push_str(
        "| scenario | request | req/s | p50 ms | p99 ms | errors | target | met | other CPU % |\n",
    );
    t.push_str("| --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: |\n");
    for s in &r.scenarios {
        let _ = writeln!(
            t,
            "| {} | `{} {}` ({}) | {:.0} | {:.2} | {:.2} | {} | {} | {} | {:.0} |",
            s.name,
            s.method,
            s.path,
            s.service,
            s.requests_per_second,
            s.latency_ms.p50,
            s.latency_ms.p99,
            s.errors,
            s.target.text(),
            yes_no(s.target.met),
            s.background_cpu_percent,
        );
    }
    t
}

fn service_table(r: &Results) -> String {
    let mut t = String::new();
    t.push_str("| service | idle RSS MiB | peak RSS MiB (VmHWM) | start-up best ms | start-up median ms | target | met |\n");
    t.push_str("| --- | ---: | ---: | ---: | ---: | --- | --- |\n");
    for (name, memory) in &r.memory {
        let startup = r.startup.get(name);
        let (best, median) = startup.map_or((0.0, 0.0), |s| (s.best_ms, s.median_ms));
        let met = memory.met && startup.is_some_and(|s| s.met);
        let _ = writeln!(
            t,
            "| {name} | {:.1} | {:.1} | {best:.1} | {median:.1} | peak < 30 MiB, start-up < {TARGET_STARTUP_MS:.0} ms | {} |",
            mib(memory.idle_rss_bytes),
            mib(memory.peak_rss_bytes),
            yes_no(met),
        );
    }
    t
}

fn artifact_table(r: &Results) -> String {
    let mut t = String::new();
    t.push_str("| artifact | kind | size MiB | bytes | linkage | target | met |\n");
    t.push_str("| --- | --- | ---: | ---: | --- | --- | --- |\n");
    for a in &r.sizes {
        let _ = writeln!(
            t,
            "| {} | {} | {:.2} | {} | {} | {} | {} |",
            a.name,
            a.kind,
            mib(a.bytes),
            a.bytes,
            a.linkage,
            a.target_bytes
                .map_or("—".to_owned(), |t| format!("< {:.0} MiB", mib(t))),
            a.met.map_or("—", yes_no),
        );
    }
    t
}

/// What the headline table means.
const CEILING_NOTE: &str = "The first table is the headline: the api's rate as a share of the database's own rate for \
the same statement (*ceiling*: `pgbench -M prepared` running the api's query from `.sqlx/` against the same Postgres, \
with as many clients as wrk has connections, just before the scenario). For the list the ceiling reads the rows \
every time (no kept page: the api serves an unchanged first page as kept, after the database confirms in the same \
statement that nothing committed since; `crates/api/src/first_pages.rs`); for creates it commits one message per \
transaction (the api inserts the creates that arrive together in one statement; `crates/api/src/create_batches.rs`). \
Both share the machine with whatever else runs on it, so the ratio holds up where absolute numbers do not. *met* \
covers every target of the scenario.\n\n\
The second table is the measured reason: CPU time per request of each process group over the measured run (utime + \
stime from `/proc`: the api, the web, every process of the Postgres cluster, wrk), and per transaction over the \
ceiling run (Postgres, pgbench). *total* is their sum; *machine* is the whole machine's busy CPU (`/proc/stat`), so \
*machine − total* is work outside the groups (the bench draining the services' logs, other users). Everything shares \
the same cores, so when the machine, not latency, is the limit, `api / ceiling` approaches *ratio if CPU-bound* = \
ceiling total ÷ api run total.\n\n";

/// The whole of `results.md`.
pub fn document(r: &Results) -> String {
    let mut md = String::new();
    md.push_str("# Benchmark results\n\n");
    if r.quick {
        let _ = writeln!(
            md,
            "> Quick mode (smoke run): {} s per scenario; numbers are indicative only.\n",
            r.load.warmup_seconds + r.load.duration_seconds
        );
    }
    let _ = writeln!(
        md,
        "Made by `{}` (see `crates/xtask/src/bench/`).\n",
        r.command
    );
    md.push_str(&setup(r));
    md.push_str("## Results\n\n");
    md.push_str(CEILING_NOTE);
    md.push_str(&table(r));
    md.push_str("\n*other CPU %*: share of the machine's CPU busy during the second before the measured run, while the benchmarked stack was idle (other work on the machine; nothing is pinned).\n\n");
    md.push_str("## Scenarios\n\n");
    for s in &r.scenarios {
        let _ = writeln!(md, "- `{}`: {}", s.name, s.description);
    }
    md.push('\n');
    md.push_str(&details(r));
    md
}

/// The bullet list saying what was measured, where and how.
fn setup(r: &Results) -> String {
    let m = &r.machine;
    let l = &r.load;
    let mut md = String::new();
    let _ = writeln!(md, "- Date: {}; git revision: {}", m.date, m.git_rev);
    let _ = writeln!(
        md,
        "- Machine: {} cores, {}, {} RAM, Linux {}",
        m.cores, m.cpu_model, m.memory_total, m.kernel
    );
    let _ = writeln!(
        md,
        "- Load: {} ({} threads, {} connections, HTTP/1.1 keep-alive), {} s warm-up then {} s measured per scenario; {} messages seeded first",
        m.load_generator,
        l.threads,
        l.connections,
        l.warmup_seconds,
        l.duration_seconds,
        l.seed_messages
    );
    let settings: Vec<String> = r
        .postgres_settings
        .iter()
        .filter(|(k, _)| k.as_str() != "server_version" && k.as_str() != "synchronous_commit")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let _ = writeln!(
        md,
        "- Everything on this one machine, on loopback, nothing pinned: wrk, {} ({}), the api and the web share the {} cores",
        m.postgres,
        settings.join(", "),
        m.cores
    );
    let _ = writeln!(
        md,
        "- Services: {} build ({}), production settings: the catalog's env (`RUST_LOG=info`), `LOG_FORMAT=json`, stdout drained from a pipe as a log driver would (one JSON line per request); api pool: its default",
        r.profile, m.rustc
    );
    let [start1, start5, start15] = r.load_average.start;
    let [end1, end5, end15] = r.load_average.end;
    let _ = writeln!(
        md,
        "- Machine load average (1, 5, 15 min): {start1:.2}, {start5:.2}, {start15:.2} at the start; {end1:.2}, {end5:.2}, {end15:.2} at the end ({} cores; above that, other work was waiting for CPU)",
        m.cores
    );
    if let Some(fsync) = &r.fsync_probe {
        let _ = writeln!(md, "- Disk: pg_test_fsync, one 8 kB write: `{fsync}`");
    }
    let _ = writeln!(
        md,
        "- Errors = non-2xx/3xx responses + socket errors (connect, read, write, timeout); latency is wrk's, per request, at {} connections\n",
        l.connections
    );
    md
}

fn details(r: &Results) -> String {
    let mut md = String::new();
    md.push_str("## Details\n\n");
    md.push_str("- Memory: idle RSS = `VmRSS` after start-up and seeding, before any load; peak = `VmHWM` after all scenarios.\n");
    let runs = r.startup.values().next().map_or(0, |s| s.runs_ms.len());
    let _ = writeln!(
        md,
        "- Start-up: process spawn to the first 2xx on the health path (polled every 0.5 ms over a fresh connection), {runs} runs per service:"
    );
    for (service, s) in &r.startup {
        let runs: Vec<String> = s.runs_ms.iter().map(|v| format!("{v:.1}")).collect();
        let _ = writeln!(md, "  - {service}: {} ms", runs.join(", "));
    }
    if let Some(a) = r.sizes.iter().find(|a| !a.note.is_empty()) {
        let _ = writeln!(md, "- Lambda zip: {}.", a.note);
    }
    let logs: Vec<String> = r
        .log_output
        .iter()
        .map(|(k, l)| format!("{k}: {} lines, {:.0} MiB", l.lines, mib(l.bytes)))
        .collect();
    let _ = writeln!(
        md,
        "- Log output over the run (JSON, drained from the pipe): {}",
        logs.join("; ")
    );
    let exits: Vec<String> = r
        .exit_status_on_sigterm
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let _ = writeln!(md, "- Exit on SIGTERM after the load: {}", exits.join(", "));
    let _ = writeln!(md, "- Whole run: {} s.", r.elapsed_seconds);
    md.push_str(
        "\nRaw numbers (all percentiles, wrk output, per-scenario memory): `results.json`.\n",
    );
    if !r.quick {
        md.push_str("Profiling notes and before/after numbers: [README.md](README.md).\n");
    }
    md
}
