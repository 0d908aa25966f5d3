//! Pieces of the compatibility replay harness (see `compat-tests/README.md`).

pub mod catalog;
pub mod compare;
pub mod daemon;
pub mod http;
pub mod json;
pub mod selftest;
pub mod session;
pub mod xmlrpc;
pub mod xmltree;
