//! Asks the line service one question and prints the answer:
//! `ask 127.0.0.1:7100 INCR visits`.
use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use torsion::client::Connector;
use torsion_protocols::codec::LineCodec;

/// Connects, asks, awaits the answer.
async fn ask(server: SocketAddr, question: String) -> Result<String, Box<dyn Error>> {
    let conn = Connector::new(server)
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {server}: {e}"))?;
    let mut lines = conn.framed(LineCodec::lf_or_crlf());
    lines.send(question.as_bytes()).await?;
    match lines.next().await {
        Some(answer) => Ok(String::from_utf8_lossy(&answer?).into_owned()),
        None => Err("the server closed the connection".into()),
    }
}

fn run() -> Result<String, Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let server = args.next().ok_or("usage: ask HOST:PORT QUESTION…")?;
    let server: SocketAddr = server
        .parse()
        .map_err(|e| format!("{server:?} is not HOST:PORT: {e}"))?;
    let question = args.collect::<Vec<_>>().join(" ");
    // A client program's async main: one executor on this thread.
    torsion::block_on(ask(server, question))?
}

fn main() -> ExitCode {
    match run() {
        Ok(answer) => {
            println!("{answer}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ask: {e}");
            ExitCode::FAILURE
        }
    }
}
