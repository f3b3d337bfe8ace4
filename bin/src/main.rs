//! The `torsion` command: `serve`, `load` and `bench`.

use std::io::IsTerminal;

use clap::Parser;
use torsion_cli::{bench, cert, cli, load_cmd, serve};
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = cli::Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        cli::LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        cli::LogFormat::Json => logs.json().init(),
    }

    let result = match cli.command {
        cli::Command::Serve(args) => serve::run(args).map(|_| 0),
        cli::Command::Load(args) => load_cmd::run(args),
        cli::Command::Bench(args) => bench::run(args),
        cli::Command::Cert(args) => cert::run(args).map(|_| 0),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("torsion: error: {err:#}");
            std::process::exit(2);
        }
    }
}
