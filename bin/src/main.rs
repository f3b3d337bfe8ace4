//! The `torsion` command: `serve` (and, as they land, `load` and `bench`).

mod cli;
mod serve;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Serve(args) => serve::run(args),
    };
    if let Err(err) = result {
        eprintln!("torsion: error: {err:#}");
        std::process::exit(2);
    }
}
