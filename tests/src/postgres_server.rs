//! [`PostgresServer`]: a PostgreSQL server of a test's own, in a fresh
//! cluster under the temporary directory, on loopback and a Unix socket.
//!
//! Debian's `postgresql` keeps `initdb` and `postgres` in
//! `/usr/lib/postgresql/VERSION/bin`, off the PATH; the newest version
//! there is used, and the package is installed when none is (as root, as
//! in CI). PostgreSQL refuses to run as root, so as root the cluster
//! belongs to the `postgres` user the package creates, and both programs
//! run as that user.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::ensure_installed;

/// How long a cluster may take to be made or to start: `initdb` and a
/// start under a busy 2-core machine take several seconds.
const START_PATIENCE: Duration = Duration::from_secs(90);

/// A PostgreSQL server of the test's own: a new cluster (user `torsion`,
/// trust authentication, `fsync` off) listening on 127.0.0.1 on a free
/// port and on a Unix socket in its directory; stopped and deleted on
/// drop. [`PostgresServer::start`] returns `None` (with the reason on
/// stderr) only when `TORSION_SKIP_POSTGRES=1` or PostgreSQL cannot be
/// installed.
#[derive(Debug)]
pub struct PostgresServer {
    bin: PathBuf,
    dir: PathBuf,
    owner: Option<(u32, u32)>,
    child: Option<Child>,
    /// Where it listens on loopback.
    pub addr: SocketAddr,
}

/// The newest `/usr/lib/postgresql/N/bin` that holds both programs.
fn server_programs() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("postgres").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Who the cluster belongs to: `Ok(None)` for us, `Ok(Some(ids))` for
/// the `postgres` user when we are root, `Err` when we are root and there
/// is no such user.
fn owner() -> Result<Option<(u32, u32)>, String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    // SAFETY: getpwnam takes a NUL-terminated name; the record it returns
    // is read at once, before any other call could reuse it.
    let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if pw.is_null() {
        return Err("running as root, PostgreSQL needs the `postgres` user \
                    (Debian's package makes it), and there is none"
            .into());
    }
    // SAFETY: pw is a valid record (checked above).
    unsafe { Ok(Some(((*pw).pw_uid, (*pw).pw_gid))) }
}

impl PostgresServer {
    /// Makes a cluster and starts it on a free port.
    pub fn start() -> Option<PostgresServer> {
        if std::env::var_os("TORSION_SKIP_POSTGRES").is_some_and(|v| v == "1") {
            eprintln!("skipping: TORSION_SKIP_POSTGRES=1");
            return None;
        }
        if !ensure_installed(
            "PostgreSQL's server (initdb and postgres under /usr/lib/postgresql)",
            || server_programs().is_some(),
            "postgresql",
        ) {
            return None;
        }
        let bin = server_programs()?;
        let owner = match owner() {
            Ok(owner) => owner,
            Err(why) => {
                crate::skip(&why);
                return None;
            }
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "torsion-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("make the cluster's directory");
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown to postgres");
        }
        let mut server = PostgresServer {
            bin,
            dir,
            owner,
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let initdb = server
            .command("initdb")
            .arg("-D")
            .arg(server.data())
            .args(["-U", "torsion", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .output()
            .expect("run initdb");
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        // A free port is picked, then postgres binds it: another program
        // may take it in between; then postgres exits and another is tried.
        for _ in 0..10 {
            server.addr.set_port(
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port(),
            );
            if server.try_spawn() {
                return Some(server);
            }
        }
        panic!(
            "postgres did not start on any of 10 free ports; its log: {}",
            server.log()
        );
    }

    /// `program` from the server's bin directory, run as the cluster's
    /// owner.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd.current_dir(&self.dir);
        cmd
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The connection string for loopback TCP.
    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=torsion dbname=postgres",
            self.addr.port()
        )
    }

    /// The connection string for its Unix socket.
    pub fn unix_conninfo(&self) -> String {
        format!(
            "host={} port={} user=torsion dbname=postgres",
            self.dir.display(),
            self.addr.port()
        )
    }

    /// What the server has logged, every start appended.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Starts postgres; false if it exited because the port was taken
    /// (any other exit is a panic, with the server's log).
    fn try_spawn(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("server log");
        let logged_before = self.log().len();
        let mut cmd = self.command("postgres");
        // SAFETY: prctl is async-signal-safe; this runs in the child before
        // exec. The server then ends (a fast shutdown) when the thread that
        // started it does, even if the test process is killed.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT);
                Ok(())
            });
        }
        let child = cmd
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.addr.port().to_string()])
            .arg("-k")
            .arg(&self.dir)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "max_connections=40"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn postgres");
        self.child = Some(child);
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                let log = self.log();
                let this_start = &log[logged_before.min(log.len())..];
                assert!(
                    this_start.contains("Address already in use"),
                    "postgres exited ({status}) on start; its log: {this_start}"
                );
                return false;
            }
            if ready(&self.data()) {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not become ready within {START_PATIENCE:?}; its log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it (a fast shutdown: every session is ended with "terminating
    /// connection due to administrator command") and waits until it has.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill has no memory preconditions; the pid is our
            // child's, not yet reaped.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGINT) };
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, with the same data.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.try_spawn(),
            "postgres did not start again on {}",
            self.addr
        );
    }
}

/// Whether the server of `data` says it accepts connections: the status
/// line of `postmaster.pid` (its eighth) reads `ready`.
fn ready(data: &Path) -> bool {
    std::fs::read_to_string(data.join("postmaster.pid"))
        .is_ok_and(|pid_file| pid_file.lines().nth(7).is_some_and(|l| l.trim() == "ready"))
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
