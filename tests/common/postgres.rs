//! A throwaway PostgreSQL server for the store tests: the Debian `postgresql`
//! package's initdb and pg_ctl in a temp dir, listening on 127.0.0.1 at a
//! free port and on a Unix socket in that dir, with a `store` database, the
//! user `scanpay` and a password. Run as root (CI), the server runs as
//! `nobody`: PostgreSQL refuses to run as root. Stopped (immediately) on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const USER: &str = "scanpay";
pub const DATABASE: &str = "store";
pub const PASSWORD: &str = "store-test-secret";

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

/// The newest PostgreSQL the package installed (`/usr/lib/postgresql/N/bin`).
pub fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (apt-get install postgresql; .ci/run does it)")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
        .1
}

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

impl Postgres {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("scanpay-pg-")
            .tempdir()
            .expect("a temp dir");
        let pg = Self {
            bin: bin_dir(),
            port: free_port(),
            dir,
        };
        pg.chown(pg.dir.path());
        let pwfile = pg.dir.path().join("pwfile");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        pg.chown(&pwfile);
        let data = pg.data();
        let out = pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                USER,
                "--pwfile",
                pwfile.to_str().unwrap(),
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        );
        assert!(out.status.success(), "initdb: {}", text(&out));
        pg.start_server();
        let out = pg.run(
            "createdb",
            &[
                "-h",
                pg.socket_dir().to_str().unwrap(),
                "-p",
                &pg.port.to_string(),
                "-U",
                USER,
                DATABASE,
            ],
        );
        assert!(out.status.success(), "createdb: {}", text(&out));
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The URL a till's `store.database_url` holds (no password).
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// A settings block as `[store]` resolves it.
    pub fn settings(&self, batch_events: u32) -> scanpay::config::StoreSettings {
        scanpay::config::StoreSettings {
            database_url: self.url(),
            password: Some(PASSWORD.into()),
            batch_events,
            interval: Duration::from_millis(100),
        }
    }

    /// Runs a SQL statement through psql over the socket; its output, rows
    /// unaligned (`|`-separated), no header.
    pub fn psql(&self, sql: &str) -> String {
        let out = self.run(
            "psql",
            &[
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.socket_dir().to_str().unwrap(),
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                DATABASE,
                "-c",
                sql,
            ],
        );
        assert!(out.status.success(), "psql {sql}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn start_server(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=50",
            self.port,
            self.socket_dir().display()
        );
        let log = self.dir.path().join("server.log");
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            text(&out),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// The postmaster's pid, from `postmaster.pid`.
    fn postmaster(&self) -> Option<i32> {
        let pidfile = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        pidfile.lines().next()?.trim().parse().ok()
    }

    /// `kill -9` of the server and every backend: the database gone at once,
    /// as in a power cut of its machine (less the page cache).
    pub fn kill9(&self) {
        let Some(postmaster) = self.postmaster() else {
            return;
        };
        let mut pids = children_of(postmaster);
        pids.push(postmaster);
        for pid in &pids {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // A killed postmaster may stay a zombie a while where the machine's
        // init is slow to reap, and PostgreSQL takes a lock file naming an
        // existing pid (a zombie exists) for a live server: the lock files
        // are stale, as after a power cut.
        let deadline = Instant::now() + Duration::from_secs(2);
        while std::path::Path::new(&format!("/proc/{postmaster}")).exists()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(self.data().join("postmaster.pid"));
        let _ = std::fs::remove_file(
            self.socket_dir()
                .join(format!(".s.PGSQL.{}.lock", self.port)),
        );
    }

    /// Starts the server again after [`Self::kill9`]: it runs crash recovery.
    pub fn restart(&self) {
        self.start_server();
    }

    fn chown(&self, path: &Path) {
        if as_root() {
            std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
        }
    }

    /// Runs one of PostgreSQL's programs, as `nobody` when we are root.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let mut command = if as_root() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env_remove("PGPASSWORD")
            .env_remove("PGHOST")
            .env_remove("PGPORT")
            .env_remove("PGDATA");
        command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.postmaster().is_some_and(alive) {
            let data = self.data();
            let _ = self.run(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            );
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn alive(pid: i32) -> bool {
    // A zombie is dead for our purposes.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The processes whose parent is `parent` (PostgreSQL's backends).
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = stat.rsplit_once(')')?.1.to_string();
                    rest.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(parent)
        })
        .collect()
}
