//! A moto server (the AWS emulator) on loopback, and the ECR calls the
//! staging apply/destroy test makes against it.

use crate::{free_port, require_program};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto server on a free loopback port, stopped on drop. Runs
/// `moto_server.py` (moto's server plus the tagging calls moto lacks).
pub struct Moto {
    child: Child,
    python: PathBuf,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Self {
        Self::start_with(&[], "http")
    }

    /// moto serving HTTPS with a PEM certificate and key (`AWS_CA_BUNDLE`
    /// makes clients trust it): for calls a bucket policy allows over TLS
    /// only, which moto enforces.
    pub fn start_tls(cert: &Path, key: &Path) -> Self {
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        Self::start_with(&["--ssl-cert", &cert, "--ssl-key", &key], "https")
    }

    fn start_with(extra_args: &[&str], scheme: &str) -> Self {
        let python = std::env::var_os("PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| require_program("python3", "install Python 3 with moto[server]"));
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("moto_server.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .args(extra_args)
            // AWS-managed policies (e.g. AWSLambdaVPCAccessExecutionRole) exist.
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            // moto runs no tasks: with this many "running", a new ECS
            // service's PRIMARY deployment is COMPLETED (staging's desired
            // count), which deploy-aws waits for.
            .env("MOTO_ECS_SERVICE_RUNNING", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let mut log = String::new();
                if let Some(stderr) = child.stderr.take() {
                    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                        log.push_str(&line);
                        log.push('\n');
                    }
                }
                panic!(
                    "moto exited ({status}); is it installed? pip install 'moto[server]'\n{log}"
                );
            }
            assert!(
                Instant::now() < deadline,
                "moto did not listen on port {port} within a minute"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // Drain its log so a full pipe never blocks it.
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
        }
        Moto {
            child,
            python,
            endpoint: format!("{scheme}://127.0.0.1:{port}"),
        }
    }

    /// Pushes a stand-in image (a small OCI manifest) into the ECR repository
    /// `repository` through the ECR API, with `moto_put_image.py`.
    pub fn put_image(&self, region: &str, repository: &str, tag: &str) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("moto_put_image.py");
        let output = Command::new(&self.python)
            .arg(&script)
            .args([self.endpoint.as_str(), region, repository, tag])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.python.display()));
        assert!(
            output.status.success(),
            "pushing a stand-in image to {repository} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
