//! Asks the line service one question and prints the answer:
//! `ask 127.0.0.1:7100 INCR visits`.
use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use torsion::client::Connector;
use torsion_protocols::codec::LineCodec;

/// Connects, asks, awaits the answer.
async fn ask(server: SocketAddr, question: String) -> Result<String, Box<dyn Error>> {
    let conn = Connector::new(server)
        .timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let mut lines = conn.framed(LineCodec::lf_or_crlf());
    lines.send(question.as_bytes()).await?;
    match lines.next().await {
        Some(answer) => Ok(String::from_utf8_lossy(&answer?).into_owned()),
        None => Err("the server closed the connection".into()),
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let server = args
        .next()
        .ok_or("usage: ask HOST:PORT QUESTION…")?
        .parse()?;
    let question = args.collect::<Vec<_>>().join(" ");
    // A client program's async main: one executor on this thread.
    let answer = torsion::block_on(ask(server, question))??;
    println!("{answer}");
    Ok(())
}
