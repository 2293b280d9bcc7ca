//! `northflank plan|deploy`: the rendered Northflank template (northflank/template.json)
//! against Northflank's API. See `api` for the endpoints and their documentation.

pub mod api;
pub mod cli;
pub mod diff;
pub mod error;
pub mod retry;
pub mod template;
pub mod wire;

use std::process::ExitCode;
use std::time::Instant;

use crate::api::Client;
use crate::cli::{Cli, Command, Deploy};
use crate::error::Error;
use crate::template::Template;
use crate::wire::{Run, RunNode, RunStatus};

/// How a successful command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// `plan` found differences.
    Differs,
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Done => ExitCode::SUCCESS,
            Outcome::Differs => ExitCode::from(2),
        }
    }
}

pub async fn run(cli: Cli) -> Result<Outcome, Error> {
    let token = std::env::var("NORTHFLANK_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or(Error::MissingToken)?;
    let template = Template::load(&cli.target.template_file)?;
    let id = cli
        .target
        .template_id
        .clone()
        .unwrap_or_else(|| template.default_id());
    let client = Client::new(&cli.connection, token.trim())?;
    match cli.command {
        Command::Plan => plan(&client, &template, &id).await,
        Command::Deploy(options) => deploy(&client, &template, &id, &options).await,
    }
}

async fn plan(client: &Client, template: &Template, id: &str) -> Result<Outcome, Error> {
    let Some(deployed) = client.get_template(id).await? else {
        println!("Template `{id}` does not exist in Northflank; deploy will create it.");
        return Ok(Outcome::Differs);
    };
    let changes = diff::diff(&deployed.content(), &template.content());
    if changes.is_empty() {
        println!("Template `{id}`: no differences between Northflank and the rendered template.");
        Ok(Outcome::Done)
    } else {
        println!(
            "Template `{id}`: {} difference(s) from Northflank (-) to the rendered template (+):",
            changes.len()
        );
        print!("{}", diff::render(&changes));
        Ok(Outcome::Differs)
    }
}

async fn deploy(
    client: &Client,
    template: &Template,
    id: &str,
    options: &Deploy,
) -> Result<Outcome, Error> {
    // Check the arguments before touching anything.
    let arguments = template.arguments(&options.args)?;
    let id = if options.skip_update {
        println!("Template `{id}`: not updated (--skip-update).");
        id.to_owned()
    } else {
        put_template(client, template, id).await?
    };
    let run = client.run_template(&id, &arguments).await?;
    let names: Vec<&str> = arguments.keys().map(String::as_str).collect();
    println!("Run {}: started with {}.", run.id, names.join(", "));
    println!("Run {}: {}", run.id, run.status);
    let run = wait_for(client, &id, run, options).await?;
    if run.status == RunStatus::Success {
        println!("Run {}: succeeded.", run.id);
        Ok(Outcome::Done)
    } else {
        let failed = failed_nodes(&run);
        Err(Error::RunFailed {
            run: run.id,
            status: run.status.to_string(),
            failed,
        })
    }
}

/// Creates the template, or updates it when it differs; returns its id.
async fn put_template(client: &Client, template: &Template, id: &str) -> Result<String, Error> {
    let Some(deployed) = client.get_template(id).await? else {
        let created = client.create_template(&template.value).await?;
        println!("Template `{created}`: created.");
        return Ok(created);
    };
    let changes = diff::diff(&deployed.content(), &template.content());
    if changes.is_empty() {
        println!("Template `{id}`: unchanged.");
    } else {
        client.update_template(id, &template.value).await?;
        println!(
            "Template `{id}`: updated ({} difference(s)).",
            changes.len()
        );
    }
    Ok(id.to_owned())
}

/// Polls the run until it is over. A run this deploy stops waiting for (at the
/// timeout, or when Northflank stops answering) is aborted, so that with the
/// `queue` concurrency policy the next deploy does not wait behind it.
async fn wait_for(client: &Client, id: &str, mut run: Run, options: &Deploy) -> Result<Run, Error> {
    let started = Instant::now();
    while !run.is_over() {
        let waited = started.elapsed();
        if waited >= options.timeout {
            println!("Run {}: timed out.", run.id);
            let abort_failed = abort(client, id, &run.id).await;
            return Err(Error::Timeout {
                run: run.id,
                status: run.status.to_string(),
                waited,
                abort_failed,
            });
        }
        tokio::time::sleep(options.poll_interval.min(options.timeout - waited)).await;
        let next = match client.get_run(id, &run.id).await {
            Ok(next) => next,
            Err(cause) => {
                let abort_failed = abort(client, id, &run.id).await;
                return Err(Error::LostRun {
                    run: run.id,
                    cause: Box::new(cause),
                    abort_failed,
                });
            }
        };
        if next.status != run.status {
            println!("Run {}: {}", next.id, next.status);
        }
        run = next;
    }
    Ok(run)
}

/// Aborts the run; why it could not, if it could not.
async fn abort(client: &Client, id: &str, run: &str) -> Option<String> {
    println!("Run {run}: aborting it.");
    client.abort_run(id, run).await.err().map(|e| e.to_string())
}

/// The innermost nodes of a run that Northflank marks failed, as
/// `Kind \`ref\`: message`. Workflows fail with their steps, so a workflow is
/// named only when none of its steps is.
fn failed_nodes(run: &Run) -> Vec<String> {
    fn visit(node: &RunNode, out: &mut Vec<String>) {
        let before = out.len();
        for step in node.steps() {
            visit(step, out);
        }
        if node.failed() && out.len() == before {
            out.push(node.describe());
        }
    }
    let mut out = Vec::new();
    visit(&run.spec, &mut out);
    out
}
