//! What the drivers report to the core from monitoring: a host's attributes, a VM's poll.
//! Shared by the drivers (which produce them) and the core (which records them), so that
//! neither imports the other's types: drivers never depend on the core.

/// What one monitoring pass of a host found.
#[derive(Debug, Clone)]
pub enum MonitorResult {
    /// Monitoring attributes (TOTALCPU, FREEMEMORY, HYPERVISOR, ...) as the IM driver printed them.
    Ok(Vec<(String, String)>),
    /// The driver could not monitor the host.
    Failed(String),
}

/// What a poll of a running VM found (3.2 monitoring: `a`, `p`, `e`, `d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollResult {
    Running {
        cpu: i64,
        memory_kib: i64,
        net_tx: i64,
        net_rx: i64,
    },
    Paused,
    Crashed,
    /// The domain is not there any more (the guest powered itself off, or it was destroyed
    /// behind oned's back).
    Gone,
    /// The hypervisor could not be asked.
    Error(String),
    /// The host did not answer in time (link cut, node down): the host's other VMs are not
    /// asked in this pass, since each question would wait as long.
    Unreachable(String),
}
