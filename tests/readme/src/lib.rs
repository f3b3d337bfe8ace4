//! The README's Rust blocks, compiled by `cargo test` as doctests.
//!
//! Every ```` ```rust ```` block of the README is a doctest of this crate:
//! a block that stops compiling fails `cargo test --workspace` (and CI). A
//! block marked `no_run` (a server that runs until Ctrl-C, a `main` that
//! parses the command line) is compiled only; the others also run, and
//! their `assert!`s are checked. Blocks are written to compile as pasted
//! into a user's crate: each one imports what it uses. This crate has no
//! code of its own.

#![doc = include_str!("../../../README.md")]
