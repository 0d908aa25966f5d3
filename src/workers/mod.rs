//! Background workers of the daemon: the life-cycle driver runner, the host monitor and the
//! scheduler. Each reads the core's state and reports results through core operations.

pub mod changes;
pub mod copies;
pub mod dhcp;
pub mod lcm;
pub mod monitor;
pub mod poll;
pub mod reconcile;
pub mod storage;
pub mod vmlog;

use std::time::Duration;

/// How often the workers look for work besides reacting to change events.
pub const TICK: Duration = Duration::from_millis(200);
