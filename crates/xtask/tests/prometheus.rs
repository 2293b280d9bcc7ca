//! The local monitoring: the alert rules fire on the failures they describe (promtool's rule
//! unit tests), and the scrape configuration generated from the catalog is one Prometheus
//! accepts. Needs `promtool` (Debian: `apt-get install prometheus`; `nix develop` has it).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

fn promtool() -> Command {
    let path = xtask::postgres::find_on_path("promtool").unwrap_or_else(|| {
        panic!("promtool not found on PATH: install Prometheus (`apt-get install prometheus`)")
    });
    Command::new(path)
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let dir = xtask::workspace_root().join("crates/xtask/monitoring");
    let text = run(promtool()
        .arg("check")
        .arg("rules")
        .arg(dir.join("alerts.yml")));
    assert!(text.contains("3 rules found"), "{text}");
    run(promtool()
        .arg("test")
        .arg("rules")
        .arg(dir.join("alerts.test.yml")));
}

#[test]
fn generated_scrape_config_is_valid_and_covers_every_service() {
    let catalog = catalog::Catalog::load_workspace().expect("catalog");
    let targets: Vec<(String, SocketAddr)> = catalog
        .services
        .iter()
        .map(|(name, s)| {
            (
                name.clone(),
                SocketAddr::from(([127, 0, 0, 1], s.metrics_port)),
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prometheus.yml");
    let rules = xtask::workspace_root().join(xtask::prometheus::RULES_FILE);
    xtask::prometheus::Config::new(rules, &targets)
        .write(&path)
        .unwrap();
    run(promtool().arg("check").arg("config").arg(&path));
    let text = std::fs::read_to_string(Path::new(&path)).unwrap();
    for (name, service) in &catalog.services {
        assert!(
            text.contains(&format!("\"job_name\": \"{name}\"")),
            "{text}"
        );
        assert!(
            text.contains(&format!("127.0.0.1:{}", service.metrics_port)),
            "{text}"
        );
    }
}
