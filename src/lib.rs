//! stratusd: a replacement for OpenNebula 3.2's `oned` for StratusLab clouds.
//!
//! Data flows one way: `server` (HTTP/XML-RPC) → `api` (handlers per object family) →
//! `core` (authentication, authorization, life cycle, the pools) → `store` (SQLite) and, through
//! the `workers`, the `driver`s. Nothing below calls back up.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod accounting;
pub mod admin;
pub mod adminctl;
pub mod api;
pub mod cli;
pub mod config;
pub mod core;
pub mod daemon;
pub mod dashboard;
pub mod driver;
pub mod exporter;
pub mod frontdoor;
pub mod hooks;
pub mod memory;
pub mod metrics;
pub mod migrate;
pub mod model;
pub mod net;
pub mod oneclient;
pub mod pdisk;
pub mod sched;
pub mod server;
pub mod site;
pub mod storage;
pub mod store;
pub mod template;
pub mod timefmt;
pub mod trust;
pub mod vmlog;
pub mod workers;
pub mod workpool;
pub mod xmlrpc;
