//! The GitHub Actions workflows (`.github/workflows/`): the deploy graph
//! (checks, one build, staging then production, migrations on every deploy
//! before the services roll, then the one Northflank project), hardening
//! (pinned actions, minimal permissions, no interpolation into scripts, no
//! stored cloud keys) and zizmor with zero findings.

use infra_tests::repo_root;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn workflows_dir() -> PathBuf {
    repo_root().join(".github/workflows")
}

struct Workflow {
    name: String,
    text: String,
    yaml: Value,
}

fn workflows() -> Vec<Workflow> {
    let mut found: Vec<Workflow> = std::fs::read_dir(workflows_dir())
        .expect("read .github/workflows")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml")
            )
        })
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read workflow");
            let yaml = serde_yaml_ng::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: invalid YAML: {e}", path.display()));
            Workflow {
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
                text,
                yaml,
            }
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!found.is_empty(), "no workflows in .github/workflows");
    found
}

fn workflow(name: &str) -> Value {
    workflows()
        .into_iter()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!(".github/workflows/{name} is missing"))
        .yaml
}

fn jobs(workflow: &Value) -> &serde_json::Map<String, Value> {
    workflow["jobs"].as_object().expect("workflow has jobs")
}

fn steps(job: &Value) -> &Vec<Value> {
    job["steps"].as_array().expect("job has steps")
}

fn run(step: &Value) -> &str {
    step["run"].as_str().unwrap_or("")
}

fn uses(step: &Value) -> &str {
    step["uses"].as_str().unwrap_or("")
}

/// Index of the only step whose script contains `needle`.
fn step_running(job: &Value, needle: &str) -> usize {
    let found: Vec<usize> = steps(job)
        .iter()
        .enumerate()
        .filter(|(_, s)| run(s).contains(needle))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one step running `{needle}`, found {found:?}"
    );
    found[0]
}

fn needs(job: &Value) -> BTreeSet<String> {
    match &job["needs"] {
        Value::String(s) => BTreeSet::from([s.clone()]),
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
        _ => BTreeSet::new(),
    }
}

/// Every job `name` waits for, directly or through other jobs.
fn ancestors(jobs: &serde_json::Map<String, Value>, name: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut todo: Vec<String> = needs(&jobs[name]).into_iter().collect();
    while let Some(job) = todo.pop() {
        if found.insert(job.clone()) {
            todo.extend(needs(&jobs[job.as_str()]));
        }
    }
    found
}

/// The arguments a script passes to `nix run <app>`: the words after the app
/// up to the end of the line or a shell operator.
fn app_arguments<'a>(script: &'a str, app: &str) -> Vec<&'a str> {
    let (_, rest) = script
        .split_once(&format!("nix run {app}"))
        .unwrap_or_else(|| panic!("the script does not run `nix run {app}`"));
    assert!(
        rest.is_empty() || rest.starts_with([' ', '\n']),
        "`nix run {app}` is followed by `{rest}`"
    );
    rest.lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .take_while(|word| !["|", "||", "&&", ";", "2>&1", ">", ">>"].contains(word))
        .collect()
}

/// Whether `step` pushes images to GHCR: deploy-northflank always does;
/// deploy-aws and push-images do when GHCR_REPOSITORY is set (in the step,
/// the job or the workflow).
fn pushes_to_ghcr(workflow: &Value, job: &Value, step: &Value) -> bool {
    let script = run(step);
    let ghcr_repository = [&step["env"], &job["env"], &workflow["env"]]
        .iter()
        .any(|env| env.get("GHCR_REPOSITORY").is_some());
    script.contains(".#deploy-northflank")
        || ((script.contains(".#deploy-aws") || script.contains(".#push-images"))
            && ghcr_repository)
}

fn is_full_sha_pin(reference: &str) -> bool {
    let Some((action, sha)) = reference.split_once('@') else {
        return false;
    };
    action.split('/').count() >= 2
        && !action.starts_with('.')
        && sha.len() == 40
        && sha
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn every_action_is_pinned_to_a_full_commit_sha_with_its_version() {
    for w in workflows() {
        // Every `uses:` in the parsed document, job-level (reusable workflows) too.
        for (job_name, job) in jobs(&w.yaml) {
            if let Some(reference) = job["uses"].as_str() {
                panic!(
                    "{}: job {job_name} calls `{reference}`; keep jobs inline",
                    w.name
                );
            }
            for step in steps(job) {
                if step.get("uses").is_some() {
                    assert!(
                        is_full_sha_pin(uses(step)),
                        "{}: job {job_name}: `{}` is not pinned to a 40-hex commit SHA",
                        w.name,
                        uses(step)
                    );
                }
            }
        }
        // ... and in the text, each with a `# vX` comment naming the release.
        for line in w.text.lines() {
            let line = line.trim_start().trim_start_matches("- ");
            let Some(rest) = line.strip_prefix("uses:") else {
                continue;
            };
            let (reference, comment) = rest.split_once(" # ").unwrap_or((rest, ""));
            assert!(
                is_full_sha_pin(reference.trim()),
                "{}: `{line}` is not pinned",
                w.name
            );
            assert!(
                comment.trim().starts_with('v'),
                "{}: `{line}` lacks a `# vX.Y.Z` comment",
                w.name
            );
        }
    }
}

#[test]
fn permissions_are_empty_at_the_top_and_minimal_per_job() {
    for w in workflows() {
        assert_eq!(
            w.yaml["permissions"],
            serde_json::json!({}),
            "{}: top-level permissions must be `{{}}`",
            w.name
        );
        for (name, job) in jobs(&w.yaml) {
            let permissions = job["permissions"]
                .as_object()
                .unwrap_or_else(|| panic!("{}: job {name} must list its permissions", w.name));
            let assumes_role = steps(job)
                .iter()
                .any(|s| uses(s).starts_with("aws-actions/configure-aws-credentials@"));
            let job_pushes_to_ghcr = steps(job).iter().any(|s| pushes_to_ghcr(&w.yaml, job, s));
            for (scope, level) in permissions {
                let allowed = match (scope.as_str(), level.as_str()) {
                    ("contents", Some("read")) => true,
                    ("id-token", Some("write")) => assumes_role,
                    ("packages", Some("write")) => job_pushes_to_ghcr,
                    _ => false,
                };
                assert!(
                    allowed,
                    "{}: job {name} must not have `{scope}: {level}`",
                    w.name
                );
            }
            assert_eq!(
                permissions.get("id-token").is_some(),
                assumes_role,
                "{}: job {name}: id-token: write exactly where a role is assumed",
                w.name
            );
            assert_eq!(
                permissions.get("packages").is_some(),
                job_pushes_to_ghcr,
                "{}: job {name}: packages: write exactly where images go to GHCR",
                w.name
            );
            for step in steps(job) {
                assert!(
                    step["env"].get("GHCR_TOKEN").is_none() || pushes_to_ghcr(&w.yaml, job, step),
                    "{}: job {name}: GHCR_TOKEN only for a step that pushes to GHCR",
                    w.name
                );
            }
        }
    }
}

#[test]
fn checkouts_never_persist_credentials() {
    for w in workflows() {
        for (name, job) in jobs(&w.yaml) {
            for step in steps(job)
                .iter()
                .filter(|s| uses(s).starts_with("actions/checkout@"))
            {
                assert_eq!(
                    step["with"]["persist-credentials"],
                    Value::Bool(false),
                    "{}: job {name}: checkout needs `persist-credentials: false`",
                    w.name
                );
            }
        }
    }
}

#[test]
fn scripts_interpolate_nothing_and_no_untrusted_input_reaches_them() {
    const UNTRUSTED: [&str; 8] = [
        "github.head_ref",
        "github.event.pull_request.title",
        "github.event.pull_request.body",
        "github.event.pull_request.head.ref",
        "github.event.pull_request.head.label",
        "github.event.head_commit",
        "github.event.commits",
        "github.event.comment",
    ];
    for w in workflows() {
        for (name, job) in jobs(&w.yaml) {
            for step in steps(job) {
                assert!(
                    !run(step).contains("${{"),
                    "{}: job {name}: a `run:` script interpolates an expression; pass it through `env:`",
                    w.name
                );
            }
        }
        for untrusted in UNTRUSTED {
            assert!(
                !w.text.contains(untrusted),
                "{}: uses untrusted `{untrusted}`",
                w.name
            );
        }
    }
}

#[test]
fn no_long_lived_cloud_keys() {
    for w in workflows() {
        for key in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "aws-access-key-id",
            "aws-secret-access-key",
        ] {
            assert!(
                !w.text.contains(key),
                "{}: mentions `{key}`; assume a role with OIDC instead",
                w.name
            );
        }
    }
}

#[test]
fn deploys_run_on_main_one_at_a_time_staging_before_production() {
    let deploy = workflow("deploy.yml");
    assert_eq!(
        deploy["on"]["push"]["branches"],
        serde_json::json!(["main"])
    );
    assert!(
        deploy["on"].get("workflow_dispatch").is_some(),
        "deploy.yml: manual dispatch"
    );
    assert!(
        deploy["on"].get("pull_request").is_none()
            && deploy["on"].get("pull_request_target").is_none()
    );

    let concurrency = &deploy["concurrency"];
    let group = concurrency["group"]
        .as_str()
        .expect("deploy.yml: a concurrency group");
    assert!(
        !group.contains("${{"),
        "deploy.yml: one group for every run, so two deploys never overlap"
    );
    assert_eq!(concurrency["cancel-in-progress"], Value::Bool(false));

    let jobs = jobs(&deploy);
    for env in ["staging", "production"] {
        assert_eq!(jobs[env]["environment"], env);
        assert_eq!(
            jobs[env]["if"], "github.ref == 'refs/heads/main'",
            "{env}: a manual run deploys main only"
        );
    }
    assert!(
        needs(&jobs["production"]).contains("staging"),
        "production needs staging"
    );
    assert!(
        needs(&jobs["staging"]).contains("build"),
        "staging needs the build"
    );
    assert!(
        needs(&jobs["build"]).contains("check"),
        "the build needs the checks"
    );
    for (name, job) in jobs {
        assert!(
            job.get("concurrency").is_none(),
            "{name}: the workflow's one concurrency group covers every job"
        );
        assert!(job.get("continue-on-error").is_none());
        for step in steps(job) {
            assert!(
                step.get("continue-on-error").is_none(),
                "no deploy step may fail silently"
            );
        }
    }
    // Only the environment jobs and the Northflank job deploy.
    let deploying: Vec<&String> = jobs
        .iter()
        .filter(|(_, job)| steps(job).iter().any(|s| run(s).contains(".#deploy-")))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(deploying, ["northflank", "production", "staging"]);
}

/// Northflank holds one project for the suite: one job deploys it, once
/// production is stable, and it is the only place images go to GHCR.
#[test]
fn northflank_deploys_once_after_production_is_stable() {
    let deploy = workflow("deploy.yml");
    let jobs = jobs(&deploy);

    let running: Vec<&String> = jobs
        .iter()
        .filter(|(_, job)| {
            steps(job)
                .iter()
                .any(|s| run(s).contains(".#deploy-northflank"))
        })
        .map(|(name, _)| name)
        .collect();
    assert_eq!(running, ["northflank"], "one job deploys Northflank");

    let job = &jobs["northflank"];
    assert!(
        needs(job).contains("production"),
        "northflank needs production"
    );
    assert!(ancestors(jobs, "northflank").is_superset(&BTreeSet::from(
        ["build", "check", "production", "staging"].map(String::from)
    )));
    assert_eq!(
        job["if"], "github.ref == 'refs/heads/main'",
        "northflank: a manual run deploys main only"
    );
    assert_eq!(
        job["environment"], "production",
        "northflank: NORTHFLANK_TOKEN lives in the production environment"
    );
    assert!(
        !steps(job)
            .iter()
            .any(|s| uses(s).starts_with("aws-actions/configure-aws-credentials@")),
        "northflank assumes no AWS role"
    );

    // deploy-aws confirms every service's rollout itself (nix/rollout.sh):
    // `aws ecs wait services-stable` calls a rolled-back service stable.
    let production = &jobs["production"];
    step_running(production, ".#deploy-aws");
    assert!(
        !serde_yaml_ng::to_string(&deploy)
            .unwrap()
            .contains("services-stable"),
        "no job waits with services-stable"
    );

    let step = &steps(job)[step_running(job, ".#deploy-northflank")];
    assert!(
        app_arguments(run(step), ".#deploy-northflank").is_empty(),
        "deploy-northflank takes no environment argument"
    );
    for variable in [
        "GHCR_REPOSITORY",
        "GHCR_TOKEN",
        "NORTHFLANK_REGISTRY_CREDENTIALS",
        "NORTHFLANK_TOKEN",
    ] {
        assert!(
            step["env"].get(variable).is_some(),
            "deploy-northflank needs {variable}"
        );
    }
    assert_eq!(step["env"]["GHCR_TOKEN"], "${{ github.token }}");
    assert_eq!(
        step["env"]["NORTHFLANK_TOKEN"],
        "${{ secrets.NORTHFLANK_TOKEN }}"
    );

    // Images go to GHCR exactly once per run: in this step.
    let ghcr_pushes: Vec<(&String, usize)> = jobs
        .iter()
        .flat_map(|(name, job)| {
            steps(job)
                .iter()
                .enumerate()
                .filter(|(_, s)| pushes_to_ghcr(&deploy, job, s))
                .map(move |(i, _)| (name, i))
        })
        .collect();
    assert_eq!(
        ghcr_pushes.len(),
        1,
        "images go to GHCR once: {ghcr_pushes:?}"
    );
    assert_eq!(ghcr_pushes[0].0, "northflank");
}

/// Migrations run on every deploy of both environments, before terraform apply
/// rolls the services: no diff of the pushed range decides, because a run that
/// was cancelled or failed before production carries a migration the next
/// run's range does not show. `migrate up` applies only pending migrations.
#[test]
fn migrations_run_on_every_deploy_before_any_service_rolls() {
    let deploy = workflow("deploy.yml");
    let jobs = jobs(&deploy);
    for env in ["staging", "production"] {
        let job = &jobs[env];
        // Nothing the job waits for decides whether it migrates.
        for ancestor in ancestors(jobs, env) {
            assert!(
                jobs[ancestor.as_str()].get("outputs").is_none(),
                "{env}: job {ancestor} has outputs; no job's output may gate the migrations"
            );
        }
        assert!(
            !serde_yaml_ng::to_string(job).unwrap().contains("needs."),
            "{env}: reads another job's outputs"
        );

        let steps = steps(job);
        let migrate: Vec<usize> = (0..steps.len())
            .filter(|&i| run(&steps[i]).contains(".#migrate-aws"))
            .collect();
        let apply = step_running(job, ".#deploy-aws");
        assert_eq!(
            migrate.len(),
            2,
            "{env}: the migration step, and its first-deploy variant"
        );
        let (before, first_deploy) = (&steps[migrate[0]], &steps[migrate[1]]);

        // Before terraform apply rolls the services, whenever the function exists.
        assert!(migrate[0] < apply, "{env}: order of the deploy steps");
        assert_eq!(
            before["if"], "steps.function.outputs.exists == 'true'",
            "{env}: migrations run on every deploy once the function exists"
        );

        // After apply only when the function did not exist before (first
        // deploy): together the two conditions cover every run.
        assert_eq!(
            first_deploy["if"],
            "steps.function.outputs.exists == 'false'"
        );
        assert!(apply < migrate[1]);

        let find = steps
            .iter()
            .position(|s| s["id"] == "function")
            .expect("the step finding the function");
        assert!(find < migrate[0]);
        assert!(
            steps[find].get("if").is_none(),
            "{env}: the function is always looked up"
        );
    }
}

#[test]
fn staging_and_production_run_the_same_steps() {
    let deploy = workflow("deploy.yml");
    let jobs = jobs(&deploy);
    let (staging, production) = (&jobs["staging"], &jobs["production"]);
    assert_eq!(steps(staging), steps(production));
    assert_eq!(staging["permissions"], production["permissions"]);
    let mut staging_env = staging["env"].clone();
    staging_env["DEPLOY_ENV"] = "production".into();
    assert_eq!(staging_env, production["env"]);
}

#[test]
fn checks_run_on_pull_requests_and_before_every_deploy() {
    let ci = workflow("ci.yml");
    let deploy = workflow("deploy.yml");
    assert!(ci["on"].get("pull_request").is_some() && ci["on"].get("push").is_some());
    assert!(ci["on"].get("pull_request_target").is_none());

    let check = &jobs(&ci)["check"];
    assert_eq!(
        check,
        &jobs(&deploy)["check"],
        "ci.yml and deploy.yml run the same check job"
    );
    let actions: Vec<&str> = steps(check)
        .iter()
        .map(uses)
        .filter(|u| !u.is_empty())
        .collect();
    assert!(
        actions
            .iter()
            .any(|u| u.starts_with("DeterminateSystems/nix-installer-action@"))
    );
    assert!(
        actions
            .iter()
            .any(|u| u.starts_with("DeterminateSystems/magic-nix-cache-action@"))
    );
    let drift = step_running(check, "rendered-up-to-date");
    let flake_check = step_running(check, "nix flake check");
    assert!(
        drift < flake_check,
        "the drift check is its own, earlier step"
    );
}

#[test]
fn pull_requests_plan_both_environments_and_northflank_into_the_job_summary() {
    let ci = workflow("ci.yml");
    let ci_jobs = jobs(&ci);
    for (name, app) in [
        ("plan-aws", ".#plan-aws"),
        ("plan-northflank", ".#plan-northflank"),
    ] {
        let job = &ci_jobs[name];
        assert!(
            job["if"]
                .as_str()
                .unwrap_or("")
                .contains("github.event_name == 'pull_request'")
        );
        let script = run(&steps(job)[step_running(job, app)]);
        assert!(
            script.contains("$GITHUB_STEP_SUMMARY"),
            "{name}: the plan goes to the job summary"
        );
        assert!(
            script.contains("[[ $status == 0 || $status == 2 ]] || exit \"$status\""),
            "{name}: exit 2 (changes pending) passes, any other failure fails"
        );
    }
    // Terraform plans each environment; Northflank has one project, so one plan.
    assert_eq!(
        ci_jobs["plan-aws"]["strategy"]["matrix"]["environment"],
        serde_json::json!(["staging", "production"])
    );
    let plan_aws = &ci_jobs["plan-aws"];
    assert_eq!(
        app_arguments(
            run(&steps(plan_aws)[step_running(plan_aws, ".#plan-aws")]),
            ".#plan-aws"
        ),
        ["--", "\"$DEPLOY_ENV\""]
    );
    let plan_northflank = &ci_jobs["plan-northflank"];
    assert!(
        plan_northflank.get("strategy").is_none(),
        "plan-northflank: one job, no environment matrix"
    );
    assert!(
        app_arguments(
            run(&steps(plan_northflank)[step_running(plan_northflank, ".#plan-northflank")]),
            ".#plan-northflank"
        )
        .is_empty(),
        "plan-northflank takes no environment argument"
    );
    // The plan role trusts `repo:<owner>/<repo>:pull_request`, so no environment here.
    let plan_aws = &ci_jobs["plan-aws"];
    assert!(plan_aws.get("environment").is_none());
    let credentials = steps(plan_aws)
        .iter()
        .find(|s| uses(s).starts_with("aws-actions/configure-aws-credentials@"))
        .expect("plan-aws assumes a role");
    assert_eq!(
        credentials["with"]["role-to-assume"],
        "${{ vars.AWS_PLAN_ROLE_ARN }}"
    );

    let deploy = workflow("deploy.yml");
    for env in ["staging", "production"] {
        let credentials = steps(&jobs(&deploy)[env])
            .iter()
            .find(|s| uses(s).starts_with("aws-actions/configure-aws-credentials@"))
            .expect("deploy jobs assume a role");
        assert_eq!(
            credentials["with"]["role-to-assume"],
            "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
        );
    }
}

/// The workflow reads the cluster, service and function names from the
/// committed renders with jq: they must be plain names there.
#[test]
fn deploy_names_come_from_the_committed_renders() {
    for env in ["staging", "production"] {
        let path = repo_root().join(format!("infra/{env}/main.tf.json"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            panic!("{} is missing", path.display());
        };
        let render: Value = serde_json::from_str(&text).expect("render is JSON");
        let resources = &render["resource"];
        let names = |kind: &str, field: &str| -> Vec<String> {
            resources[kind]
                .as_object()
                .unwrap_or_else(|| panic!("{env}: no {kind} in the render"))
                .values()
                .map(|r| r[field].as_str().expect("a name").to_owned())
                .collect()
        };
        let all = [
            names("aws_ecs_cluster", "name"),
            names("aws_ecs_service", "name"),
            names("aws_lambda_function", "function_name"),
        ];
        assert_eq!(all[0].len(), 1, "{env}: one ECS cluster");
        assert!(!all[1].is_empty());
        assert_eq!(all[2].len(), 1, "{env}: one migration function");
        for name in all.iter().flatten() {
            assert!(
                !name.contains("${"),
                "{env}: `{name}` is an interpolation, not a name"
            );
        }
    }
}

/// zizmor at its default persona, offline, with every ignore disregarded:
/// zero findings means none is hidden either.
#[test]
fn zizmor_finds_nothing() {
    let zizmor = std::env::var("ZIZMOR").unwrap_or_else(|_| "zizmor".to_owned());
    let output = match Command::new(&zizmor)
        .args([
            "--offline",
            "--no-ignores",
            "--format",
            "json",
            "--no-progress",
        ])
        .arg(workflows_dir())
        .output()
    {
        Ok(output) => output,
        Err(e) => panic!(
            "cannot run `{zizmor}` ({e}): install it with `pip install zizmor` (or set ZIZMOR to its path); \
             the workflows must be audited, so this test fails rather than skips"
        ),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let findings: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "zizmor printed no JSON ({e}), exit {:?}:\n{stdout}\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let findings = findings.as_array().expect("a list of findings");
    let summary: Vec<String> = findings
        .iter()
        .map(|f| {
            format!(
                "{} ({}): {}",
                f["ident"], f["determinations"]["severity"], f["desc"]
            )
        })
        .collect();
    assert!(
        findings.is_empty(),
        "zizmor findings:\n{}",
        summary.join("\n")
    );
    assert!(
        output.status.success(),
        "zizmor exit {:?}",
        output.status.code()
    );
}

/// Every repository variable and environment the workflows read is either set
/// up by the bootstrap's `github_settings` output or one of the two values only
/// the operator knows (the README's setup lists them).
#[test]
fn the_bootstrap_sets_up_what_the_workflows_read() {
    const OPERATOR_CHOSEN: [&str; 2] = ["ALERT_EMAIL", "NORTHFLANK_REGISTRY_CREDENTIALS"];
    let render: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("infra/bootstrap/main.tf.json"))
            .expect("bootstrap render"),
    )
    .unwrap();
    let settings = render["output"]["github_settings"]["value"]
        .as_str()
        .expect("output github_settings");

    let mut variables = BTreeSet::new();
    let mut environments = BTreeSet::new();
    for w in workflows() {
        let mut text = w.text.as_str();
        while let Some(at) = text.find("vars.") {
            text = &text[at + 5..];
            let name: String = text
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            variables.insert(name);
        }
        for job in jobs(&w.yaml).values() {
            if let Some(env) = job["environment"].as_str() {
                environments.insert(env.to_owned());
            }
        }
    }
    for variable in &variables {
        assert!(
            OPERATOR_CHOSEN.contains(&variable.as_str())
                || settings.contains(&format!("gh variable set {variable} ")),
            "repository variable {variable} is set up nowhere"
        );
    }
    for env in &environments {
        assert!(
            settings.contains(&format!("environments/{env}"))
                || settings.contains("for env in staging production"),
            "environment {env} is created nowhere"
        );
    }
    assert!(settings.contains("for env in staging production"));
    assert!(settings.contains("deployment-branch-policies\" -f name=main"));
    assert_eq!(
        environments,
        BTreeSet::from(["northflank-plan", "production", "staging"].map(String::from))
    );
}

/// A job that can mint an OIDC token (`id-token: write`, to assume an AWS
/// role) installs upstream Nix without logging in to FlakeHub: the Nix
/// installer action's default (`determinate: true`) installs Determinate Nix
/// and uses the job's OIDC token for FlakeHub.
#[test]
fn deploy_jobs_holding_an_oidc_token_install_nix_without_flakehub() {
    let deploy = workflow("deploy.yml");
    let mut checked = 0;
    for (name, job) in jobs(&deploy) {
        if job["permissions"]["id-token"] != "write" {
            continue;
        }
        for step in steps(job)
            .iter()
            .filter(|s| uses(s).starts_with("DeterminateSystems/nix-installer-action@"))
        {
            assert_eq!(
                step["with"]["determinate"],
                Value::Bool(false),
                "deploy.yml: job {name}: the Nix installer must not log in to FlakeHub"
            );
            checked += 1;
        }
        for step in steps(job)
            .iter()
            .filter(|s| uses(s).starts_with("DeterminateSystems/magic-nix-cache-action@"))
        {
            assert_eq!(step["with"]["use-flakehub"], Value::Bool(false), "{name}");
        }
    }
    assert_eq!(checked, 2, "staging and production install Nix");
}

/// A job's AWS session lasts as long as the job may run (nothing refreshes
/// it, and an apply that outlives it leaves the state lock behind), and the
/// deploy role lets it last that long.
#[test]
fn aws_sessions_last_as_long_as_the_deploy_jobs() {
    let render: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("infra/bootstrap/main.tf.json"))
            .expect("bootstrap render"),
    )
    .unwrap();
    let max_session = render["resource"]["aws_iam_role"]["deploy"]["max_session_duration"]
        .as_u64()
        .expect("the deploy role's max_session_duration");
    let deploy = workflow("deploy.yml");
    let mut checked = 0;
    for (name, job) in jobs(&deploy) {
        for step in steps(job) {
            if !uses(step).starts_with("aws-actions/configure-aws-credentials@") {
                continue;
            }
            let job_seconds = job["timeout-minutes"].as_u64().expect("timeout-minutes") * 60;
            let session = step["with"]["role-duration-seconds"]
                .as_u64()
                .unwrap_or(3600);
            assert!(
                session >= job_seconds,
                "{name}: the session ({session} s) ends before the job may ({job_seconds} s)"
            );
            assert!(
                session <= max_session,
                "{name}: role-duration-seconds {session} exceeds the deploy role's max_session_duration {max_session}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 2, "staging and production assume the deploy role");
}
