//! Helpers shared by torsion's integration tests: blocking clients on
//! 127.0.0.1 with timeouts, bounded waits, and an event recorder protocols
//! can report to from their shard.

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod postgres_server;
pub use postgres_server::PostgresServer;

/// Generous bound for anything a test waits on; tests never assert speed.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A loopback endpoint on an ephemeral port.
pub const LOOPBACK: &str = "tcp:0:interface=127.0.0.1";

/// A builder with two loopback listeners on ephemeral ports (the chat's
/// line and WebSocket listeners, say): `local_addrs()[0]` and `[1]`.
pub fn two_loopback_listeners() -> torsion::ServerBuilder {
    torsion::Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .also_listen_on(LOOPBACK)
        .unwrap()
}

/// A blocking client with read/write timeouts, so no test can hang.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Writes `payload` and reads back exactly as many bytes.
pub fn round_trip(stream: &mut TcpStream, payload: &[u8]) -> io::Result<Vec<u8>> {
    stream.write_all(payload)?;
    let mut back = vec![0u8; payload.len()];
    stream.read_exact(&mut back)?;
    Ok(back)
}

/// Reads until end-of-file or error; returns the bytes and the error, if any.
pub fn read_to_end_or_error(stream: &mut TcpStream) -> (Vec<u8>, Option<io::Error>) {
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (all, None),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (all, Some(e)),
        }
    }
}

/// Polls `cond` until it holds or `PATIENCE` runs out; returns whether it held.
pub fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// A deterministic payload: byte `i` is a function of `seed` and `i`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Collects events that protocols on shard threads send.
pub struct Recorder<T> {
    tx: mpsc::Sender<T>,
    rx: mpsc::Receiver<T>,
}

impl<T> Default for Recorder<T> {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel();
        Recorder { tx, rx }
    }
}

impl<T> Recorder<T> {
    /// A sender for a protocol to report with.
    pub fn sender(&self) -> mpsc::Sender<T> {
        self.tx.clone()
    }

    /// The next event, waiting at most `PATIENCE`.
    pub fn next(&self) -> Option<T> {
        self.rx.recv_timeout(PATIENCE).ok()
    }

    /// Exactly `n` events (panics if they do not arrive in time).
    pub fn take(&self, n: usize) -> Vec<T> {
        (0..n)
            .map(|i| {
                self.next()
                    .unwrap_or_else(|| panic!("event {i} of {n} did not arrive"))
            })
            .collect()
    }

    /// Every event up to and including the `n`-th one for which `wanted`
    /// holds, waiting at most `PATIENCE` for each (panics, with what came,
    /// if they do not arrive). For tests about some events (say, ten
    /// connections lost) among others whose number depends on timing
    /// (pause and resume notices): wait for the ones the test is about,
    /// never for a count of all of them.
    pub fn take_until(&self, n: usize, mut wanted: impl FnMut(&T) -> bool) -> Vec<T>
    where
        T: std::fmt::Debug,
    {
        let mut events = Vec::new();
        let mut seen = 0;
        while seen < n {
            let event = self.next().unwrap_or_else(|| {
                panic!("only {seen} of {n} awaited events arrived; all events: {events:?}")
            });
            if wanted(&event) {
                seen += 1;
            }
            events.push(event);
        }
        events
    }

    /// Events already delivered, without waiting.
    pub fn drain(&self) -> Vec<T> {
        self.rx.try_iter().collect()
    }
}

/// CPU time (user + system) from a `/proc/.../stat` file: `/proc/PID/stat`
/// for a process, `/proc/self/task/TID/stat` for one of our threads.
pub fn cpu_time_from_stat(path: &str) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// CPU time a process has used.
pub fn process_cpu(pid: u32) -> Duration {
    cpu_time_from_stat(&format!("/proc/{pid}/stat"))
}

/// CPU time one of this process's threads has used.
pub fn thread_cpu(tid: u64) -> Duration {
    cpu_time_from_stat(&format!("/proc/self/task/{tid}/stat"))
}

/// Makes sure the pinned Twisted (`tests/interop/requirements.txt`) is
/// importable, installing it with pip the first time a test asks, so that
/// `cargo test --workspace` works on a fresh machine. Returns false (skip)
/// only when `TORSION_SKIP_TWISTED=1`; otherwise a failed install panics
/// with what to do.
pub fn ensure_twisted() -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let requirements = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/requirements.txt");
    let result = READY.get_or_init(|| {
        let want = std::fs::read_to_string(requirements)
            .map_err(|e| format!("cannot read {requirements}: {e}"))?
            .trim()
            .trim_start_matches("twisted==")
            .to_string();
        let have = std::process::Command::new("python3")
            .args(["-c", "import twisted; print(twisted.__version__)"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        if have.as_deref() == Some(want.as_str()) {
            return Ok(());
        }
        eprintln!("installing Twisted {want} for the interop tests");
        let status =
            pip_install(requirements).map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("pip install -r {requirements} failed ({status})"))
        }
    });
    match result {
        Ok(()) => true,
        Err(_) if std::env::var("TORSION_SKIP_TWISTED").as_deref() == Ok("1") => {
            eprintln!("skipping: Twisted unavailable and TORSION_SKIP_TWISTED=1");
            false
        }
        Err(e) => panic!(
            "the interop tests need Twisted and python3 with pip: {e} \
             (set TORSION_SKIP_TWISTED=1 to skip them)"
        ),
    }
}

/// Parses the `torsion` binary's one stdout line,
/// `torsion: listening on <ip>:<port> (<N> shards)` (`(1 shard)` for one),
/// into the address and the shard count; panics on anything else.
pub fn parse_listening_line(line: &str) -> (SocketAddr, usize) {
    let parsed = line
        .trim()
        .strip_prefix("torsion: listening on ")
        .and_then(|rest| rest.split_once(" ("))
        .and_then(|(addr, shards)| {
            let (n, noun) = shards.strip_suffix(')')?.split_once(' ')?;
            let n: usize = n.parse().ok()?;
            let want = if n == 1 { "shard" } else { "shards" };
            (noun == want).then_some(())?;
            Some((addr.parse().ok()?, n))
        });
    parsed.unwrap_or_else(|| panic!("unexpected listening line {line:?}"))
}

/// Parses the second line `serve --metrics` prints,
/// `torsion: metrics on <scheme>://<ip>:<port>/metrics`, into the URL and
/// the address; panics on anything else.
pub fn parse_metrics_line(line: &str, scheme: &str) -> (String, SocketAddr) {
    let url = line
        .trim()
        .strip_prefix("torsion: metrics on ")
        .unwrap_or_else(|| panic!("unexpected metrics line {line:?}"));
    let addr = url
        .strip_prefix(&format!("{scheme}://"))
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("unexpected metrics line {line:?}"));
    (url.to_string(), addr)
}

/// The sum of every sample of `name` in a Prometheus text scrape whose
/// labels include all of `with` (e.g. `r#"code="2xx""#`).
pub fn metric_total(text: &str, name: &str, with: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (n, labels) = series.split_once('{').unwrap_or((series, ""));
            n == name && with.iter().all(|w| labels.contains(w))
        })
        .map(|(_, v)| v.parse::<f64>().unwrap())
        .sum()
}

/// Reads the listening line from a spawned `torsion serve`'s stdout.
pub fn read_listening_line(stdout: std::process::ChildStdout) -> (SocketAddr, usize) {
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    parse_listening_line(&line)
}

/// A self-signed certificate for `localhost` and `127.0.0.1` with its key,
/// and the key of another certificate (for mismatch tests), as PEM files in
/// a temporary folder that goes when this is dropped.
#[derive(Debug)]
pub struct Certs {
    /// The folder holding the files.
    pub dir: std::path::PathBuf,
    /// `cert.pem`.
    pub cert: std::path::PathBuf,
    /// `key.pem`, the certificate's key.
    pub key: std::path::PathBuf,
    /// `other-key.pem`, a key that does not match `cert`.
    pub other_key: std::path::PathBuf,
}

impl Certs {
    /// Makes the files under a folder named after `tag` and the process.
    pub fn new(tag: &str) -> Certs {
        let dir = std::env::temp_dir().join(format!("torsion-tls-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let ck = rcgen::generate_simple_self_signed(names.clone()).unwrap();
        let other = rcgen::generate_simple_self_signed(names).unwrap();
        let c = Certs {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            other_key: dir.join("other-key.pem"),
            dir,
        };
        std::fs::write(&c.cert, ck.cert.pem()).unwrap();
        std::fs::write(&c.key, ck.signing_key.serialize_pem()).unwrap();
        std::fs::write(&c.other_key, other.signing_key.serialize_pem()).unwrap();
        c
    }

    /// A `tls:` endpoint on 127.0.0.1, any port, with `cert` and `key`.
    pub fn endpoint(&self, key: &std::path::Path) -> String {
        format!(
            "tls:0:interface=127.0.0.1:certKey={}:privateKey={}",
            self.cert.display(),
            key.display()
        )
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server process a test or bench started: killed and reaped when
/// dropped, so a failing assertion leaves no server behind.
#[derive(Debug)]
pub struct ServerProcess {
    /// The process.
    pub child: std::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// How many shards it said it runs.
    pub shards: usize,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a process (`VmRSS`), in KiB; 0 once it is gone.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `cmd` to its end and returns its stdout, asserting (with its
/// stdout and stderr in the message) that it succeeded.
pub fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().expect("run the command");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Makes sure a Python module pinned in `tests/interop/<requirements>` is
/// importable (`pip install -r` the first time a test asks). Returns false,
/// with the reason on stderr, only when pip cannot install it.
pub fn ensure_python_module(module: &str, requirements: &str) -> bool {
    let importable = || succeeds("python3", &["-c", &format!("import {module}")]);
    if importable() {
        return true;
    }
    let path = format!("{}/interop/{requirements}", env!("CARGO_MANIFEST_DIR"));
    eprintln!("installing {path} for the interop tests");
    let _ = pip_install(&path);
    if importable() {
        return true;
    }
    skip(&format!(
        "python3 cannot import {module} and pip could not install {path}"
    ));
    false
}

/// Makes sure the Node packages pinned in `tests/interop/node/package.json`
/// are installed there (`npm ci` the first time a test asks; the npm
/// registry is the only network it needs). Returns the directory, or
/// `None` with the reason on stderr when Node or npm is missing or the
/// install fails.
pub fn ensure_node_packages() -> Option<std::path::PathBuf> {
    static NPM: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/node");
    let _one_at_a_time = NPM.lock().unwrap_or_else(|e| e.into_inner());
    if ["ws", "puppeteer-core"].iter().all(|p| {
        dir.join("node_modules")
            .join(p)
            .join("package.json")
            .exists()
    }) {
        return Some(dir);
    }
    if !succeeds("node", &["--version"]) {
        skip("node is not installed");
        return None;
    }
    eprintln!(
        "installing {} (npm ci) for the interop tests",
        dir.display()
    );
    let ok = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(dir)
    } else {
        skip(&format!("npm ci failed in {}", dir.display()));
        None
    }
}

/// Makes sure `program` is on the PATH, installing Debian's `package` with
/// apt-get when it is missing and we are root (as in CI). Returns false,
/// with the reason on stderr, when it stays unavailable.
pub fn ensure_program(program: &str, package: &str) -> bool {
    ensure_installed(
        program,
        || succeeds("sh", &["-c", &format!("command -v {program}")]),
        package,
    )
}

/// Makes sure `what` is there (`present`), installing Debian's `package`
/// with apt-get when it is not and we are root (as in CI), one install at
/// a time. Returns false, with the reason on stderr, when it stays
/// unavailable.
pub fn ensure_installed(what: &str, present: impl Fn() -> bool, package: &str) -> bool {
    static APT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if present() {
        return true;
    }
    let _one_at_a_time = APT.lock().unwrap_or_else(|e| e.into_inner());
    if present() {
        return true;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        eprintln!("installing {package} (apt-get) for the interop tests");
        let install = format!(
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {package} >/dev/null 2>&1 || \
             (apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {package} >/dev/null 2>&1)"
        );
        let _ = std::process::Command::new("sh")
            .args(["-c", &install])
            .status();
        if present() {
            return true;
        }
    }
    skip(&format!(
        "{what} is not installed{} (apt-get install {package})",
        if root {
            " and apt-get could not install it"
        } else {
            " and installing needs root"
        }
    ));
    false
}

/// An interop test cannot run: says why on stderr, so the test is skipped
/// — unless `TORSION_REQUIRE_INTEROP=1` (CI sets it, having installed
/// everything up front), where a skip would hide a broken set-up: then it
/// fails, saying why.
pub fn skip(why: &str) {
    if std::env::var_os("TORSION_REQUIRE_INTEROP").is_some_and(|v| v == "1") {
        panic!("{why}, and TORSION_REQUIRE_INTEROP=1 says every interop test must run");
    }
    eprintln!("skipping: {why}");
}

/// Whether `program args` runs and exits 0 (its output discarded).
fn succeeds(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `python3 -m pip install -r requirements`, quietly.
fn pip_install(requirements: &str) -> io::Result<std::process::ExitStatus> {
    std::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(requirements)
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .status()
}

/// A `redis-server` of the test's own on a free loopback port, persistence
/// off; killed on drop. [`RedisServer::start`] installs Debian's
/// `redis-server` when missing (as root); it returns `None` (with the
/// reason on stderr) only when `TORSION_SKIP_REDIS=1` or it cannot be had.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<std::process::Child>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl RedisServer {
    /// Starts one on a free port.
    pub fn start() -> Option<RedisServer> {
        if std::env::var_os("TORSION_SKIP_REDIS").is_some_and(|v| v == "1") {
            eprintln!("skipping: TORSION_SKIP_REDIS=1");
            return None;
        }
        if !ensure_program("redis-server", "redis-server") {
            return None;
        }
        // A free port is picked, then redis-server binds it: another
        // program may take it in between. Then redis-server exits at once
        // ("address already in use") and another port is tried.
        for _ in 0..10 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut r = RedisServer {
                child: None,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            if r.try_spawn() {
                return Some(r);
            }
        }
        panic!("redis-server did not start on any of 10 free ports");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Starts redis-server on `addr` (asserting that it did).
    fn spawn(&mut self) {
        let addr = self.addr;
        assert!(self.try_spawn(), "redis-server did not start on {addr}");
    }

    /// Starts redis-server on `addr`; false if it exited instead (the port
    /// was taken) or never answered `PING`.
    fn try_spawn(&mut self) -> bool {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.addr.port().to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let mut exited = false;
        // Ours answers PING; anything else on the port, or nothing, does not.
        let up = wait_until(|| {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                exited = true;
                return true;
            }
            self.ping()
        });
        if exited || !up {
            self.kill();
            return false;
        }
        true
    }

    /// Whether a server on `addr` answers `PING` with `+PONG`.
    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(self.addr) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(PATIENCE));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut reply = String::new();
        io::BufReader::new(s).read_line(&mut reply).is_ok() && reply.trim_end() == "+PONG"
    }

    /// Kills it (SIGKILL): everything it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again, empty, on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends one inline command and returns the first line of the reply
    /// (`+OK`, `:3`, `$5`…).
    pub fn command(&self, line: &str) -> String {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        let mut r = io::BufReader::new(s);
        let mut reply = String::new();
        io::BufRead::read_line(&mut r, &mut reply).unwrap();
        reply.trim_end().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Spawns `cmd` with its stdout piped and returns the child with its first
/// `n` stdout lines (waiting at most [`PATIENCE`] for each; panics, naming
/// the line, when one does not come). The rest of stdout is read and
/// dropped in the background, so the child never blocks on a full pipe.
pub fn spawn_reading_lines(
    cmd: &mut std::process::Command,
    n: usize,
) -> (std::process::Child, Vec<String>) {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the program");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let lines = (0..n)
        .map(|i| {
            rx.recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("{cmd:?}: stdout line {} never came", i + 1))
        })
        .collect();
    (child, lines)
}

/// One HTTP/1.1 GET on a fresh connection (`Connection: close`): the
/// status line, the headers (lower-cased), the body.
pub fn http_get(addr: SocketAddr, path: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a whole response");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_lowercase(), body.to_string())
}

/// An echo server of one shard on `endpoint` (e.g. [`LOOPBACK`] or a
/// [`Certs::endpoint`]), for client tests.
pub fn one_shard_echo(endpoint: &str) -> torsion::ServerHandle {
    torsion::Server::builder()
        .listen_on(endpoint)
        .unwrap()
        .shards(1)
        .serve(|_| torsion_protocols::EchoFactory)
        .unwrap()
}
