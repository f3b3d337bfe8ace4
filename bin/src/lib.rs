//! # torsion-cli
//!
//! The `torsion` command as a library, so tests and benchmarks can drive it.
//! The app runner it serves with is the `torsion-app` crate.
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the command line (clap) |
//! | [`apps`] | the built-in apps: echo, chat, http |
//! | [`http_site`] | what `serve http` answers: the TechEmpower plaintext and JSON routes |
//! | [`load`] | the latency load generator |
//! | [`load_cmd`] | `torsion load echo|chat` |
//! | [`bench`](mod@bench) | `torsion bench`: servers and load in one process |
//! | [`cert`] | `torsion cert`: a self-signed certificate and key that TLS accepts |

pub mod apps;
pub mod bench;
pub mod cert;
pub mod cli;
pub mod http_site;
pub mod load;
pub mod load_cmd;
