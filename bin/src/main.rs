//! The `torsion` command: `serve` (the app runner with the built-in echo,
//! chat and http apps), `load`, `bench` and `cert`.

use clap::{CommandFactory, FromArgMatches};
use torsion_app::init_logging;
use torsion_cli::{apps, bench, cert, cli, load_cmd};

fn main() {
    let runner = apps::builtin_runner();
    let matches = cli::Cli::command()
        .subcommand(runner.serve_command().display_order(0))
        .get_matches();
    init_logging(&matches);
    let result = match matches.subcommand() {
        Some(("serve", serve)) => runner.serve(serve).map(|_| 0),
        _ => match cli::Cli::from_arg_matches(&matches) {
            Ok(cli) => match cli.command {
                cli::Command::Load(args) => load_cmd::run(args),
                cli::Command::Bench(args) => bench::run(args),
                cli::Command::Cert(args) => cert::run(args).map(|_| 0),
            },
            Err(e) => e.exit(),
        },
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("torsion: error: {err:#}");
            std::process::exit(2);
        }
    }
}
