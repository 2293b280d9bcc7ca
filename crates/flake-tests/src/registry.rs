//! A local OCI registry standing in for ECR: Debian's `docker-registry`
//! (distribution 2.8; `registry` in nixpkgs' docker-distribution) serving
//! TLS on 127.0.0.2:443 with a throwaway certificate. The apps compute ECR's
//! host name (`<account>.dkr.ecr.<region>.amazonaws.com`) themselves, so they
//! run in a private mount namespace whose /etc/hosts maps that name to
//! 127.0.0.2 (`unshare --mount`, root only: CI runs as root), and trust
//! its certificate (SSL_CERT_FILE: the system's roots plus this one).
//! Nothing outside that process tree sees the name.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADDRESS: (&str, u16) = ("127.0.0.2", 443);

pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    pub host: String,
}

fn registry_program() -> PathBuf {
    ["docker-registry", "registry"]
        .iter()
        .find_map(|name| postgres_programs::find_on_path(name))
        .unwrap_or_else(|| {
            panic!(
                "no OCI registry: apt-get install docker-registry (nixpkgs: docker-distribution)"
            )
        })
}

/// `cert.pem` and `key.pem` in `dir`, self-signed for `subject_alt_name`
/// (e.g. `DNS:example.com`, `IP:127.0.0.1`), valid for a day.
pub fn throwaway_certificate(dir: &Path, subject_alt_name: &str) {
    run(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=flake-tests"])
            .args(["-addext", &format!("subjectAltName={subject_alt_name}")])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem")),
        "openssl req (a throwaway certificate)",
    );
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Registry {
    /// Starts the registry and prepares the namespace files for `host`.
    pub fn start(host: &str) -> Self {
        let program = registry_program();
        let dir = tempfile::Builder::new()
            .prefix("flake-tests-registry-")
            .tempdir()
            .expect("tempdir");
        let path = dir.path();
        throwaway_certificate(path, &format!("DNS:{host}"));
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {}:{}\n  tls:\n    certificate: {}\n    key: {}\n",
            path.join("storage").display(),
            ADDRESS.0,
            ADDRESS.1,
            path.join("cert.pem").display(),
            path.join("key.pem").display()
        );
        std::fs::write(path.join("config.yml"), config).expect("registry config");
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        std::fs::write(path.join("hosts"), format!("{} {host}\n{hosts}", ADDRESS.0))
            .expect("hosts");
        // Go's TLS (skopeo) trusts SSL_CERT_FILE: the system's roots and this one.
        let system_roots =
            std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
        let own = std::fs::read_to_string(path.join("cert.pem")).expect("cert.pem");
        std::fs::write(path.join("roots.pem"), format!("{system_roots}\n{own}"))
            .expect("roots.pem");
        let mut child = Command::new(&program)
            .arg("serve")
            .arg(path.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        wait_for_listener(&mut child);
        Registry {
            child,
            dir,
            host: host.to_owned(),
        }
    }

    /// `program` in the namespace where `host` is this registry.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "--", "bash", "-c"])
            .arg(r#"mount --bind "$1" /etc/hosts && shift && exec "$@""#)
            .arg("bash")
            .arg(self.dir.path().join("hosts"))
            .arg(program)
            .env("REGISTRY_AUTH_FILE", self.dir.path().join("auth.json"))
            .env("SSL_CERT_FILE", self.dir.path().join("roots.pem"));
        command
    }

    /// The tags of `repository` (e.g. `staging/api`) in the registry.
    pub fn tags(&self, repository: &str) -> Vec<String> {
        let skopeo = postgres_programs::find_on_path("skopeo").expect("skopeo");
        let output = self
            .command(&skopeo)
            .args(["list-tags", &format!("docker://{}/{repository}", self.host)])
            .output()
            .expect("skopeo list-tags");
        if !output.status.success() {
            return Vec::new();
        }
        let listed: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("skopeo prints JSON");
        listed["Tags"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn wait_for_listener(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(ADDRESS).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let log: Vec<String> = child
                .stderr
                .take()
                .map(|e| BufReader::new(e).lines().map_while(Result::ok).collect())
                .unwrap_or_default();
            panic!("the registry exited ({status}):\n{}", log.join("\n"));
        }
        assert!(
            Instant::now() < deadline,
            "the registry did not listen on {ADDRESS:?} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(stderr) = child.stderr.take() {
        std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
