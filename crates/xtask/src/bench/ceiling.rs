//! The database's own ceiling for a scenario: pgbench runs the api's exact statement (read
//! from the api's `.sqlx/` query data, so it follows the code) straight against the same
//! Postgres, prepared, with as many clients as the load generator has connections. The api
//! cannot be faster than this; `api req/s ÷ ceiling tps` says how close it comes.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tokio::process::Command;

use super::cpu::CpuPerRequest;
use super::load::LoadShape;
use super::pg_tools::PgTools;
use super::results::round;
use crate::postgres::{DB_NAME, DB_USER};

/// Which of the api's statements bounds a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statement {
    /// The first page of `GET /api/messages`.
    List { limit: u32 },
    /// `POST /api/messages`.
    Create,
}

impl Statement {
    pub fn name(self) -> &'static str {
        match self {
            Self::List { .. } => "list",
            Self::Create => "create",
        }
    }
}

/// The content the POST scenarios send (also in the wrk script).
pub const POST_CONTENT: &str = "Benchmark post: the quick brown fox jumps over the lazy dog.";

/// One pgbench run of a statement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ceiling {
    /// The pgbench script: the api's statement with its parameters as pgbench variables.
    pub script: String,
    /// pgbench's `-D` variables.
    pub variables: Vec<String>,
    pub clients: u32,
    pub threads: u32,
    pub duration_seconds: u64,
    pub transactions: u64,
    pub failed_transactions: u64,
    pub transactions_per_second: f64,
    pub latency_average_ms: f64,
    /// CPU time per transaction of Postgres and pgbench (measured around the run by the
    /// caller, see `cpu`).
    pub cpu_per_transaction: Option<CpuPerRequest>,
    pub pgbench_output: String,
}

/// pgbench, found next to pg_ctl or on PATH.
pub struct Pgbench {
    program: PathBuf,
    port: u16,
    dir: PathBuf,
    /// The api's query texts, from `.sqlx/`.
    queries: Vec<String>,
}

#[derive(Deserialize)]
struct SqlxQuery {
    query: String,
}

impl Pgbench {
    pub fn find(tools: &PgTools, root: &Path, dir: &Path) -> Result<Self> {
        let program = tools.tool("pgbench").context(
            "pgbench (the database's ceiling) was not found next to pg_ctl or on PATH; \
             install it with the PostgreSQL client programs (Debian: `apt-get install \
             postgresql-contrib` or `postgresql-15`)",
        )?;
        Ok(Self {
            program,
            port: tools.port,
            dir: dir.to_owned(),
            queries: sqlx_queries(&root.join(".sqlx"))?,
        })
    }

    /// Runs `statement` for `shape.duration` with `shape.connections` clients.
    pub async fn run(&self, statement: Statement, shape: LoadShape) -> Result<Ceiling> {
        let (script, variables) = self.script(statement)?;
        let path = self.dir.join(format!("{}.sql", statement.name()));
        std::fs::write(&path, &script)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let mut command = Command::new(&self.program);
        command
            .args(["-n", "-M", "prepared", "-h", "127.0.0.1", "-U", DB_USER])
            .args(["-p", &self.port.to_string()])
            .arg(format!("-c{}", shape.connections))
            .arg(format!("-j{}", shape.threads.min(shape.connections)))
            .arg(format!("-T{}", shape.duration.as_secs().max(1)))
            .arg("-f")
            .arg(&path);
        for variable in &variables {
            command.arg("-D").arg(variable);
        }
        let output = command
            .arg(DB_NAME)
            .env_remove("PGPASSWORD")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .context("cannot run pgbench")?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            bail!("pgbench failed ({}):\n{stdout}\n{stderr}", output.status);
        }
        let mut ceiling = parse_output(&stdout)
            .with_context(|| format!("pgbench's output:\n{stdout}\n{stderr}"))?;
        ceiling.script = script;
        ceiling.variables = variables;
        ceiling.clients = shape.connections;
        ceiling.threads = shape.threads.min(shape.connections);
        ceiling.duration_seconds = shape.duration.as_secs().max(1);
        Ok(ceiling)
    }

    /// The api's statement with pgbench variables for its parameters, and their values.
    fn script(&self, statement: Statement) -> Result<(String, Vec<String>)> {
        let (query, parameters) = match statement {
            Statement::List { limit } => (
                self.query(|q| {
                    q.starts_with("SELECT") && q.contains("ORDER BY id DESC") && q.contains("LIMIT")
                })?,
                // The first page read from the table: no cursor, no kept page's snapshot (the
                // rows are read; see crates/api/src/first_pages.rs); the handler asks for one
                // row more than `limit` to know whether a next page exists. pgbench cannot bind
                // NULL, so those are spelled as typed NULL literals.
                vec![
                    ("NULL::bigint".to_owned(), None),
                    (":rows".to_owned(), Some(format!("rows={}", limit + 1))),
                    ("NULL::text".to_owned(), None),
                ],
            ),
            Statement::Create => (
                self.query(|q| q.starts_with("INSERT INTO messages"))?,
                // The api's batch insert with one message per statement, each its own
                // commit: the database's rate when every create commits alone (what the
                // api's batches are measured against; crates/api/src/create_batches.rs). The
                // bench's creates send no Idempotency-Key: the key is a typed NULL.
                vec![
                    (
                        "ARRAY[:content]".to_owned(),
                        Some(format!("content={POST_CONTENT}")),
                    ),
                    ("ARRAY[NULL::text]".to_owned(), None),
                ],
            ),
        };
        let mut script = query.to_owned();
        // Highest first, so `$1` does not match the start of `$10`.
        for (i, (replacement, _)) in parameters.iter().enumerate().rev() {
            script = script.replace(&format!("${}", i + 1), replacement);
        }
        script.push_str(";\n");
        Ok((
            script,
            parameters.into_iter().filter_map(|(_, v)| v).collect(),
        ))
    }

    fn query(&self, matches: impl Fn(&str) -> bool) -> Result<&str> {
        self.queries
            .iter()
            .map(String::as_str)
            .find(|q| matches(q))
            .context("the api's statement was not found in .sqlx/ (run `cargo sqlx prepare --workspace`)")
    }
}

/// The query texts of the workspace's `.sqlx/query-*.json` files.
fn sqlx_queries(dir: &Path) -> Result<Vec<String>> {
    let mut queries = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path)?;
            let query: SqlxQuery = serde_json::from_str(&text)
                .with_context(|| format!("{} is not sqlx query data", path.display()))?;
            queries.push(query.query.trim().to_owned());
        }
    }
    queries.sort();
    Ok(queries)
}

/// The figures of pgbench's summary.
fn parse_output(stdout: &str) -> Result<Ceiling> {
    let value = |prefix: &str| -> Result<f64> {
        let line = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .with_context(|| format!("no `{prefix}` line"))?;
        let number = line.trim().split([' ', '/']).next().unwrap_or_default();
        number
            .parse()
            .with_context(|| format!("bad `{prefix}` line: {line}"))
    };
    let failed = if stdout.contains("number of failed transactions:") {
        value("number of failed transactions:")? as u64
    } else {
        0
    };
    if failed > 0 {
        bail!("{failed} pgbench transactions failed");
    }
    Ok(Ceiling {
        script: String::new(),
        variables: Vec::new(),
        clients: 0,
        threads: 0,
        duration_seconds: 0,
        transactions: value("number of transactions actually processed:")? as u64,
        failed_transactions: failed,
        transactions_per_second: round(value("tps =")?, 1),
        latency_average_ms: round(value("latency average =")?, 3),
        cpu_per_transaction: None,
        pgbench_output: stdout.trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PGBENCH_15: &str = "pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: /tmp/list.sql
scaling factor: 1
query mode: prepared
number of clients: 64
number of threads: 2
maximum number of tries: 1
duration: 15 s
number of transactions actually processed: 201234
number of failed transactions: 0 (0.000%)
latency average = 4.771 ms
initial connection time = 61.529 ms
tps = 13415.123456 (without initial connection time)
";

    #[test]
    fn pgbench_summary_is_read() {
        let c = parse_output(PGBENCH_15).unwrap();
        assert_eq!(c.transactions, 201_234);
        assert_eq!(c.transactions_per_second, 13415.1);
        assert_eq!(c.latency_average_ms, 4.771);
    }

    #[test]
    fn failed_transactions_are_an_error() {
        let failing = PGBENCH_15.replace(
            "failed transactions: 0 (0.000%)",
            "failed transactions: 3 (0.001%)",
        );
        assert!(parse_output(&failing).is_err());
    }

    #[test]
    fn the_list_script_is_the_api_statement_with_pgbench_variables() {
        let pgbench = Pgbench {
            program: PathBuf::new(),
            port: 0,
            dir: PathBuf::new(),
            queries: sqlx_queries(&crate::workspace_root().join(".sqlx")).unwrap(),
        };
        let (script, variables) = pgbench.script(Statement::List { limit: 100 }).unwrap();
        assert!(script.contains("FROM messages"), "{script}");
        assert!(script.contains("LIMIT :rows"), "{script}");
        assert!(!script.contains('$'), "every parameter replaced: {script}");
        assert_eq!(variables, ["rows=101"]);
        let (script, variables) = pgbench.script(Statement::Create).unwrap();
        assert!(script.starts_with("INSERT INTO messages"), "{script}");
        assert!(script.contains(":content"), "{script}");
        assert_eq!(variables, [format!("content={POST_CONTENT}")]);
    }
}
