//! `cargo xtask bench`: the benchmark suite of the services.
//!
//! Steps, one module each: build the binaries of the catalog and record binary and Lambda zip
//! sizes ([`artifacts`]) → start a throwaway Postgres (temporary data directory, free port),
//! run the migrations, start the api and web on loopback with their production settings
//! ([`stack`]) → measure start-up, memory and the machine's background CPU ([`probes`]) → for
//! each scenario ([`scenario`]): the database's ceiling for the api's statement (pgbench,
//! [`ceiling`]), wrk warm-up, then a measured wrk run ([`load`]), each with the CPU time per
//! request of the api, Postgres and the load generator ([`cpu`]) → stop
//! everything → write `results.json` ([`results`], typed) and `results.md` ([`markdown`]),
//! with what the numbers were measured on ([`machine`]).
//!
//! `--quick` runs ~3 s per scenario and writes to a temporary directory (or `--out`), never
//! to the committed `benchmarks/` files.

pub mod artifacts;
pub mod ceiling;
pub mod cpu;
pub mod load;
pub mod machine;
pub mod markdown;
pub mod options;
pub mod pg_tools;
pub mod probes;
pub mod results;
pub mod scenario;
pub mod stack;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use catalog::{Catalog, Job, Service};

use crate::output::step;
use crate::postgres::{PgBinaries, RunAs};
pub use options::{BenchArgs, BenchOptions, CONNECTIONS};
pub use scenario::scenario_names;

use artifacts::{Artifact, Binaries};
use ceiling::{Ceiling, Pgbench};
use cpu::{CpuPerRequest, Watched};
use load::{LoadShape, Wrk};
use machine::Machine;
use pg_tools::PgTools;
use probes::{Memory, StartupRuns};
use results::{
    LoadAverages, LoadSettings, LogOutput, Results, ScenarioResult, ServiceMemory, Startup,
    Surroundings,
};
use scenario::Scenario;
use stack::{Planned, Stack, WorkDir};

/// Messages in the database before the first scenario.
pub const SEED_MESSAGES: usize = 100;
/// The services' log settings, as recorded in the results.
const LOG_SETTINGS: &str =
    "catalog env (RUST_LOG=info), LOG_FORMAT=json, stdout drained from a pipe";

/// Runs the suite; everything started is stopped on return, on error and on Ctrl-C.
pub async fn run(options: BenchOptions) -> Result<()> {
    let work = WorkDir::create()?;
    let mut stack = Stack::default();
    let outcome = tokio::select! {
        result = run_suite(&options, &work, &mut stack) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted (Ctrl-C)")),
    };
    let stopped = stack.shutdown().await;
    match (&outcome, &stopped) {
        (Ok(_), Ok(())) => work.remove(),
        _ => step(format!(
            "kept the work directory (service logs, Postgres data): {}",
            work.path.display()
        )),
    }
    let results = outcome.and_then(|r| stopped.map(|()| r))?;
    println!("\n{}", markdown::table(&results));
    let (json_path, md_path) = results.write(&options.out_dir)?;
    step(format!(
        "wrote {} and {}",
        json_path.display(),
        md_path.display()
    ));
    Ok(())
}

/// Output of a command (stdout then stderr, trimmed), or None if it cannot be run.
pub(crate) fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = StdCommand::new(program).args(args).output().ok()?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Some(text.trim().to_owned())
}

/// The catalog's entries the suite runs: the api, the web and the migrations job.
struct CatalogEntries<'a> {
    api: (&'a str, &'a Service),
    web: (&'a str, &'a Service),
    migrate: (&'a str, &'a Job),
}

impl<'a> CatalogEntries<'a> {
    fn find(catalog: &'a Catalog) -> Result<Self> {
        let service = |name: &str| {
            catalog
                .services
                .get_key_value(name)
                .map(|(k, v)| (k.as_str(), v))
                .with_context(|| format!("the catalog has no `{name}` service"))
        };
        let migrate = catalog
            .jobs
            .iter()
            .find(|(_, j)| j.database)
            .map(|(k, v)| (k.as_str(), v))
            .context("the catalog has no database job (migrations)")?;
        Ok(Self {
            api: service("api")?,
            web: service("web")?,
            migrate,
        })
    }
}

/// Loopback ports of the stack.
struct Ports {
    postgres: u16,
    api: u16,
    api_metrics: u16,
    web: u16,
    web_metrics: u16,
}

impl Ports {
    fn free() -> Result<Self> {
        let p = stack::free_ports(5)?;
        Ok(Self {
            postgres: p[0],
            api: p[1],
            api_metrics: p[2],
            web: p[3],
            web_metrics: p[4],
        })
    }
}

/// A service planned to run: binary, environment, port.
struct Launch<'a> {
    plan: Planned<'a>,
    env: Vec<(String, String)>,
    port: u16,
}

/// What the scenarios run against.
struct Suite<'a> {
    options: &'a BenchOptions,
    wrk: Wrk,
    pgbench: Pgbench,
    pg_tools: PgTools,
    pg_dir: PathBuf,
    ports: Ports,
}

async fn run_suite(options: &BenchOptions, work: &WorkDir, stack: &mut Stack) -> Result<Results> {
    let started = Instant::now();
    let load_at_start = probes::load_average();
    let wrk = Wrk::find(&work.path)?;
    let catalog = Catalog::load(&options.catalog_path)
        .with_context(|| format!("cannot load the catalog {}", options.catalog_path.display()))?;
    let selected = scenario::select(&options.only)?;
    let bins = PgBinaries::find(options.pg_bin.as_deref()).map_err(anyhow::Error::msg)?;
    let run_as = RunAs::detect().map_err(anyhow::Error::msg)?;
    let entries = CatalogEntries::find(&catalog)?;

    let binaries = Binaries::build(options, &catalog).await?;
    let sizes = binaries
        .sizes(options, entries.migrate.1, &work.path)
        .await?;

    let ports = Ports::free()?;
    let pg_dir = work.path.join("pgdata");
    let database_url = stack
        .start_postgres(&bins, &run_as, pg_dir.clone(), ports.postgres)
        .await?;
    let pg_tools = PgTools::new(&bins, ports.postgres);
    let pgbench = Pgbench::find(&pg_tools, &options.root, &work.path)?;
    let fsync_probe = if options.quick {
        None
    } else {
        pg_tools.fsync_rate(&work.path)
    };
    let (migrate_name, migrate) = entries.migrate;
    let migrate_binary = binaries.path(&migrate.crate_name)?;
    stack::run_migrations(migrate_name, migrate, &migrate_binary, &database_url).await?;

    let launches = launches(&entries, &binaries, &ports, &database_url)?;
    let mut startup = Vec::new();
    for l in &launches {
        startup.push(probes::startup(&l.plan, &l.env, l.port, options.startup_runs).await?);
    }
    let suite = Suite {
        options,
        wrk,
        pgbench,
        pg_tools,
        pg_dir,
        ports,
    };
    let measured = suite.measure(stack, &launches, &selected).await?;
    let exits = stack.stop_services().await;

    let machine = Machine::probe(&options.root, &suite.wrk.program, &bins.pg_ctl);
    let collected = Collected {
        load_average: LoadAverages {
            start: load_at_start,
            end: probes::load_average(),
        },
        sizes,
        fsync_probe,
        startup,
        measured,
        exits,
    };
    Ok(collected.into_results(options, machine, started.elapsed()))
}

/// The api and the web with their production environment.
fn launches<'a>(
    entries: &CatalogEntries<'a>,
    binaries: &Binaries,
    ports: &Ports,
    database_url: &str,
) -> Result<Vec<Launch<'a>>> {
    let (api_name, api) = entries.api;
    let (web_name, web) = entries.web;
    let api_url = format!("http://127.0.0.1:{}", ports.api);
    let upstream = [(Service::url_variable(api_name), api_url)];
    Ok(vec![
        Launch {
            plan: Planned {
                name: api_name,
                service: api,
                binary: binaries.path(&api.crate_name)?,
            },
            env: stack::service_env(api, ports.api, ports.api_metrics, Some(database_url), &[]),
            port: ports.api,
        },
        Launch {
            plan: Planned {
                name: web_name,
                service: web,
                binary: binaries.path(&web.crate_name)?,
            },
            env: stack::service_env(web, ports.web, ports.web_metrics, None, &upstream),
            port: ports.web,
        },
    ])
}

/// What the stack measured while it ran.
struct Measured {
    scenarios: Vec<ScenarioResult>,
    idle: BTreeMap<String, Memory>,
    peak: BTreeMap<String, Memory>,
    pg_settings: BTreeMap<String, String>,
    logs: BTreeMap<String, LogOutput>,
}

impl Suite<'_> {
    /// Starts the services, seeds, runs every scenario, reads memory and logs.
    async fn measure(
        &self,
        stack: &mut Stack,
        launches: &[Launch<'_>],
        selected: &[Scenario],
    ) -> Result<Measured> {
        for l in launches {
            stack.start_service(&l.plan, &l.env, l.port).await?;
        }
        let api = stack.servers.first_mut().context("api started")?;
        api.wait_http(self.ports.api, "/api/ready", Duration::from_secs(30))
            .await?;
        stack::seed(
            &format!("http://127.0.0.1:{}", self.ports.api),
            SEED_MESSAGES,
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let pids: BTreeMap<String, u32> = stack
            .servers
            .iter()
            .map(|s| (s.name.clone(), s.pid()))
            .collect();
        let idle = probes::memories(&pids)?;

        self.wrk.write_scripts()?;
        let mut scenarios = Vec::new();
        for scenario in selected {
            let result = self.run_scenario(scenario, &pids).await?;
            stack.check_running(scenario.name)?;
            scenarios.push(result);
        }
        let logs = stack
            .servers
            .iter()
            .map(|s| {
                let (bytes, lines) = s.log_counts();
                (s.name.clone(), LogOutput { bytes, lines })
            })
            .collect();
        Ok(Measured {
            scenarios,
            idle,
            peak: probes::memories(&pids)?,
            pg_settings: self.pg_tools.settings(),
            logs,
        })
    }

    /// The ceiling (pgbench), warm-up, the machine's background CPU, then the measured run.
    async fn run_scenario(
        &self,
        scenario: &Scenario,
        pids: &BTreeMap<String, u32>,
    ) -> Result<ScenarioResult> {
        let o = self.options;
        if let Some(on) = scenario.synchronous_commit {
            self.pg_tools
                .set_synchronous_commit(&self.pg_dir, on)
                .await?;
        }
        let shape = |duration| LoadShape {
            threads: o.threads,
            connections: o.connections,
            duration,
        };
        let ceiling = self.ceiling(scenario, shape(o.duration)).await?;
        let watched = self.watched(pids, scenario.service == "web")?;
        let port = if scenario.service == "web" {
            self.ports.web
        } else {
            self.ports.api
        };
        let url = format!("http://127.0.0.1:{port}{}", scenario.path);
        step(format!(
            "{}: {} {} — warm-up {}s, then {}s measured, {} connections, {} threads",
            scenario.name,
            scenario.method,
            scenario.path,
            o.warmup.as_secs(),
            o.duration.as_secs(),
            o.connections,
            o.threads
        ));
        if !o.warmup.is_zero() {
            self.wrk.run(shape(o.warmup), scenario.method, &url).await?;
        }
        let background_cpu = self.background_cpu(scenario.name).await;
        let load_average = probes::load_average();
        let before = watched.sample()?;
        let run = self
            .wrk
            .run(shape(o.duration), scenario.method, &url)
            .await?;
        let cpu = CpuPerRequest::between(&before, &watched.sample()?, run.summary.requests);
        let around = Surroundings {
            ceiling,
            cpu_per_request: cpu,
            rss_after_bytes: probes::memories(pids)?,
            background_cpu,
            load_average,
        };
        let result = ScenarioResult::new(scenario, &run, around);
        step(summary_line(&result));
        Ok(result)
    }

    /// pgbench with the scenario's statement, if it has one, for as long as the measured run.
    async fn ceiling(&self, scenario: &Scenario, shape: LoadShape) -> Result<Option<Ceiling>> {
        let Some(statement) = scenario.ceiling else {
            return Ok(None);
        };
        step(format!(
            "{}: ceiling — pgbench, the api's {} statement, {}s, {} clients",
            scenario.name,
            statement.name(),
            shape.duration.as_secs(),
            shape.connections
        ));
        let watched = Watched {
            postmaster: self.postmaster()?,
            ..Watched::default()
        };
        let before = watched.sample()?;
        let mut ceiling = self.pgbench.run(statement, shape).await?;
        let after = watched.sample()?;
        ceiling.cpu_per_transaction = Some(CpuPerRequest::between(
            &before,
            &after,
            ceiling.transactions,
        ));
        Ok(Some(ceiling))
    }

    /// The processes a measured run is charged with: Postgres, the api and, for a scenario
    /// of the web (which calls the api), the web.
    fn watched(&self, pids: &BTreeMap<String, u32>, web: bool) -> Result<Watched> {
        Ok(Watched {
            api: Some(*pids.get("api").context("the api's pid")?),
            web: if web {
                Some(*pids.get("web").context("the web's pid")?)
            } else {
                None
            },
            postmaster: self.postmaster()?,
        })
    }

    fn postmaster(&self) -> Result<u32> {
        crate::postgres::postmaster_pid(&self.pg_dir)
            .with_context(|| format!("no postmaster.pid in {}", self.pg_dir.display()))
    }

    /// The machine's CPU busy share while the stack is idle (what else runs), with a warning.
    async fn background_cpu(&self, scenario: &str) -> f64 {
        let window = Duration::from_millis(if self.options.quick { 300 } else { 1000 });
        let busy = probes::busy_percent(window).await;
        if busy > 15.0 {
            step(format!(
                "warning: {busy:.0}% of the CPU is busy with other processes before {scenario}"
            ));
        }
        busy
    }
}

/// One line per scenario on the console.
fn summary_line(r: &ScenarioResult) -> String {
    let mut line = format!(
        "{}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
        r.name, r.requests_per_second, r.latency_ms.p50, r.latency_ms.p99, r.errors
    );
    if let (Some(ceiling), Some(ratio)) = (&r.ceiling, r.ceiling_ratio) {
        line.push_str(&format!(
            "; ceiling {:.0}/s, api/ceiling {:.0} %",
            ceiling.transactions_per_second,
            ratio * 100.0
        ));
    }
    line
}

/// Everything gathered by a run, before it becomes [`Results`].
struct Collected {
    load_average: LoadAverages,
    sizes: Vec<Artifact>,
    fsync_probe: Option<String>,
    startup: Vec<StartupRuns>,
    measured: Measured,
    exits: Vec<(String, String)>,
}

impl Collected {
    fn into_results(self, options: &BenchOptions, machine: Machine, elapsed: Duration) -> Results {
        let Self {
            load_average,
            sizes,
            fsync_probe,
            startup,
            measured,
            exits,
        } = self;
        let memory = measured
            .peak
            .iter()
            .map(|(name, peak)| {
                let idle = measured.idle.get(name).copied().unwrap_or_default();
                (name.clone(), ServiceMemory::new(idle, *peak))
            })
            .collect();
        Results {
            command: options.command_line.clone(),
            quick: options.quick,
            profile: options.profile().to_owned(),
            machine,
            load: LoadSettings {
                connections: options.connections,
                threads: options.threads,
                warmup_seconds: options.warmup.as_secs(),
                duration_seconds: options.duration.as_secs(),
                seed_messages: SEED_MESSAGES,
                log_settings: LOG_SETTINGS.to_owned(),
            },
            postgres_settings: measured.pg_settings,
            fsync_probe,
            load_average,
            scenarios: measured.scenarios,
            memory,
            startup: startup
                .iter()
                .map(|s| (s.service.clone(), Startup::from(s)))
                .collect(),
            sizes,
            log_output: measured.logs,
            exit_status_on_sigterm: exits.into_iter().collect(),
            elapsed_seconds: elapsed.as_secs(),
        }
    }
}
