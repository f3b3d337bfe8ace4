//! The `torsion` command: `serve`, `load` and `bench`.

use clap::Parser;
use torsion_cli::{bench, cli, load_cmd, serve};
use tracing_subscriber::EnvFilter;

fn main() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Serve(args) => serve::run(args).map(|_| 0),
        cli::Command::Load(args) => load_cmd::run(args),
        cli::Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("torsion: error: {err:#}");
            std::process::exit(2);
        }
    }
}
