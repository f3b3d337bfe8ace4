//! Interoperability with Twisted itself: Twisted's own `LineReceiver`,
//! `NetstringReceiver` and `Int8/16/32StringReceiver` clients against
//! `torsion serve echo --framing …`.
//!
//! Needs `python3` with pip: the pinned Twisted is installed on first use
//! (`torsion_tests::ensure_twisted`), unless `TORSION_SKIP_TWISTED=1` says
//! to skip.

use std::process::{Command, Stdio};
use std::time::Duration;

use torsion_tests::{ensure_twisted, read_listening_line};

/// Starts `torsion serve ARGS… --listen tcp:0:…`; returns it and its address.
fn start_server(args: &[&str]) -> (std::process::Child, String) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_torsion"))
        .args(args)
        .args(["--listen", "tcp:0:interface=127.0.0.1"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, _) = read_listening_line(server.stdout.take().unwrap());
    (server, addr.to_string())
}

/// Runs a Python script (bounded) and returns its stdout, asserting success.
fn run_script(script: &str, args: &[&str]) -> String {
    let mut client = Command::new("python3")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The script bounds itself at 30 s; this bounds the bound.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = client.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = client.kill();
            panic!("the Twisted client {script} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = client.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    assert!(
        status.success(),
        "Twisted client {script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn run_client_against(framing: &str) {
    let (mut server, addr) = start_server(&["serve", "echo", "--framing", framing]);
    let (host, port) = addr.rsplit_once(':').unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/interop/twisted_framing_client.py"
    );
    let stdout = run_script(script, &[host, port, framing]);
    let _ = server.kill();
    let _ = server.wait();
    let echoed = stdout
        .lines()
        .filter(|l| l.contains("echoed intact"))
        .count();
    assert_eq!(
        echoed, 4,
        "frames of 0, 1, 100 and MAX_LENGTH bytes: {stdout}"
    );
    if matches!(framing, "line" | "netstring" | "int32") {
        assert!(
            stdout.contains("server closed the connection after an over-long frame"),
            "{stdout}"
        );
    }
}

/// One test per framing: Twisted's own receiver for it, against
/// `torsion serve echo --framing NAME`.
macro_rules! twisted_receiver_tests {
    ($($test:ident => $framing:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                if ensure_twisted() {
                    run_client_against($framing);
                }
            }
        )*
    };
}

twisted_receiver_tests! {
    twisted_line_receiver_talks_to_torsion => "line",
    twisted_netstring_receiver_talks_to_torsion => "netstring",
    twisted_int8_string_receiver_talks_to_torsion => "int8",
    twisted_int16_string_receiver_talks_to_torsion => "int16",
    twisted_int32_string_receiver_talks_to_torsion => "int32",
}

#[test]
fn twisted_line_receivers_chat_through_torsion() {
    if !ensure_twisted() {
        return;
    }
    let (mut server, addr) = start_server(&["serve", "chat"]);
    let (host, port) = addr.rsplit_once(':').unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/interop/twisted_chat_client.py"
    );
    let stdout = run_script(script, &[host, port]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        stdout.contains("bob: got '<alice> hello from Twisted, ünïcode'"),
        "{stdout}"
    );
    assert!(
        stdout.contains("alice: connection closed after /quit"),
        "{stdout}"
    );
}
