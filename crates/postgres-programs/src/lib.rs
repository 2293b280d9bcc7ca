//! Finding the PostgreSQL server programs and running them as the right user.
//!
//! PostgreSQL refuses to run as root, and CI runs as root: every Postgres command then
//! runs as an unprivileged user (`nobody`) through `runuser` or `setpriv`. Shared by the
//! local stack (`xtask`) and the test harness (`test-postgres`) so both behave alike.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::{Uid, User};

/// The unprivileged user Postgres runs as when we are root.
pub const UNPRIVILEGED_USER: &str = "nobody";

/// Finds an executable file called `name` in the directories of PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Finds a PostgreSQL server program on PATH, then in Debian's versioned directories
/// (`/usr/lib/postgresql/<version>/bin`, newest first), which Debian keeps off PATH.
pub fn find_server_program(name: &str) -> Option<PathBuf> {
    find_on_path(name).or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|entry| entry.path())
            .collect();
        versions.sort();
        versions
            .into_iter()
            .rev()
            .map(|version| version.join("bin").join(name))
            .find(|p| is_executable(p))
    })
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Paths of the Postgres server programs we need (`pg_ctl` starts `postgres` beside it).
#[derive(Debug, Clone)]
pub struct Binaries {
    pub initdb: PathBuf,
    pub pg_ctl: PathBuf,
}

impl Binaries {
    /// Finds `initdb` and `pg_ctl` in `dir` if given, else with [`find_server_program`].
    /// The error says how to install them.
    pub fn find(dir: Option<&Path>) -> Result<Self, String> {
        let lookup = |name: &str| match dir {
            Some(dir) => Some(dir.join(name)).filter(|p| is_executable(p)),
            None => find_server_program(name),
        };
        match (lookup("initdb"), lookup("pg_ctl")) {
            (Some(initdb), Some(pg_ctl)) => Ok(Self { initdb, pg_ctl }),
            _ => {
                let place = match dir {
                    Some(dir) => format!("in {}", dir.display()),
                    None => "on PATH".to_owned(),
                };
                Err(format!(
                    "the PostgreSQL server programs `initdb` and `pg_ctl` were not found {place}.\n\
                     Install PostgreSQL (Debian/Ubuntu: `apt-get install postgresql`; macOS: \
                     `brew install postgresql`), use the Nix dev shell (`nix develop`), or give \
                     their directory (--pg-bin <dir>, env PG_BIN, for `cargo xtask`)."
                ))
            }
        }
    }
}

/// How Postgres commands are run: directly, or as an unprivileged user when we are root.
#[derive(Debug, Clone)]
pub enum RunAs {
    CurrentUser,
    Unprivileged { user: User, runner: PathBuf },
}

impl RunAs {
    /// `CurrentUser` unless we are root. The error says what is missing.
    pub fn detect() -> Result<Self, String> {
        if !Uid::effective().is_root() {
            return Ok(Self::CurrentUser);
        }
        let user = User::from_name(UNPRIVILEGED_USER)
            .ok()
            .flatten()
            .ok_or_else(|| {
                format!(
                    "running as root, Postgres must run as an unprivileged user, but user \
                 `{UNPRIVILEGED_USER}` does not exist; run as a normal user instead"
                )
            })?;
        let runner = ["runuser", "setpriv"]
            .into_iter()
            .find_map(|name| {
                find_on_path(name).or_else(|| {
                    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                        .iter()
                        .map(|dir| Path::new(dir).join(name))
                        .find(|p| is_executable(p))
                })
            })
            .ok_or_else(|| {
                "running as root, Postgres must run as an unprivileged user, but neither \
                 `runuser` nor `setpriv` (util-linux) was found; install util-linux or run as \
                 a normal user"
                    .to_owned()
            })?;
        Ok(Self::Unprivileged { user, runner })
    }

    /// The user that must own Postgres' files, when it is not us.
    pub fn owner(&self) -> Option<&User> {
        match self {
            Self::CurrentUser => None,
            Self::Unprivileged { user, .. } => Some(user),
        }
    }

    /// A command running `program` as the right user.
    pub fn command(&self, program: &Path) -> Command {
        match self {
            Self::CurrentUser => Command::new(program),
            Self::Unprivileged { user, runner } => {
                let mut command = Command::new(runner);
                if runner.file_name() == Some(OsStr::new("setpriv")) {
                    command.args([
                        format!("--reuid={}", user.uid),
                        format!("--regid={}", user.gid),
                        "--clear-groups".to_owned(),
                        "--".to_owned(),
                    ]);
                } else {
                    command.args(["-u", &user.name, "--"]);
                }
                command.arg(program);
                command
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_names_it_and_how_to_install() {
        let err = Binaries::find(Some(Path::new("/nonexistent-pg-bin"))).unwrap_err();
        assert!(err.contains("/nonexistent-pg-bin"), "{err}");
        assert!(err.contains("nix develop"), "{err}");
    }

    #[test]
    fn as_root_commands_go_through_the_runner() {
        let run_as = RunAs::detect().expect("runuser or setpriv and `nobody` exist here");
        let command = run_as.command(Path::new("/bin/true"));
        if Uid::effective().is_root() {
            assert_ne!(command.get_program(), OsStr::new("/bin/true"));
            assert!(command.get_args().any(|a| a == OsStr::new("/bin/true")));
            assert_eq!(
                run_as.owner().map(|u| u.name.as_str()),
                Some(UNPRIVILEGED_USER)
            );
        } else {
            assert_eq!(command.get_program(), OsStr::new("/bin/true"));
            assert!(run_as.owner().is_none());
        }
        assert!(
            run_as
                .command(Path::new("/bin/true"))
                .status()
                .unwrap()
                .success()
        );
    }
}
