//! The built-in persistent disk service end to end: a real stratusd serving pdisk's REST API
//! over HTTPS (`--pdisk-listen`) with the front door's certificate and authentication (a
//! password file, certificates of a PKI made with `openssl`), file volumes in its data
//! directory, VMs on simulated hosts (`tm_stratuslab`), and LVM volumes in a real volume group
//! on a loop device (`lvm.rs`); clones of cached Marketplace images (`cached.rs`). The daemon
//! and the API client are `tests/common/pdisk.rs`. The real StratusLab clients are run by
//! `compat-tests/client/volumes.rs`, a real guest by `tests/qemu_volumes.rs`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../frontdoor/pki.rs"]
#[allow(dead_code)]
mod pki;

#[path = "../common/pdisk.rs"]
#[allow(dead_code)]
mod pdisk;

mod accounting;
mod api;
mod cached;
mod hostile;
mod lvm;
mod restart;
mod vms;

use common::*;
use pdisk::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
