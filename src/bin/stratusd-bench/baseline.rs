//! The oned 3.2 figures each row is compared with: medians of the StratusLab oned baseline
//! (shared/perf/oned-3.2-baseline.md, §2). `None` where oned was not measured that way.

/// The calls measured with wrk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    VmInfoAdmin,
    UserInfoAdmin,
    VmInfoUser,
    VmPoolAll,
}

impl Call {
    pub fn label(self) -> &'static str {
        match self {
            Call::VmInfoAdmin => "one.vm.info(0)",
            Call::UserInfoAdmin => "one.user.info(0)",
            Call::VmInfoUser => "one.vm.info(own VM) as alice",
            Call::VmPoolAll => "one.vmpool.info(-2,-1,-1,-1)",
        }
    }

    /// The request body file under `bench/bodies/`.
    pub fn body_file(self) -> &'static str {
        match self {
            Call::VmInfoAdmin => "vm.info-0.xml",
            Call::UserInfoAdmin => "user.info-0.xml",
            Call::VmInfoUser => "vm.info-alice.xml",
            Call::VmPoolAll => "vmpool.info-all.xml",
        }
    }
}

/// oned's req/s median for `call` over a pool of `vms` at `connections`.
pub fn oned_rps(call: Call, vms: usize, connections: u32) -> Option<f64> {
    let by_conc: [f64; 4] = match (call, vms) {
        (Call::VmInfoAdmin, 1000) => [3930.0, 6812.0, 7065.0, 126.0],
        (Call::UserInfoAdmin, 1000) => [3998.0, 7102.0, 7357.0, 126.0],
        (Call::VmPoolAll, 1000) => [113.0, 196.0, 211.0, 125.0],
        (Call::VmInfoUser, 1001) => [2.2, 4.0, 3.0, 3.0],
        (Call::VmPoolAll, 10000) => [12.0, 23.0, 22.0, 22.0],
        _ => return None,
    };
    match connections {
        1 => Some(by_conc[0]),
        4 => Some(by_conc[1]),
        8 => Some(by_conc[2]),
        16 => Some(by_conc[3]),
        _ => None,
    }
}

/// oned's resident memory (KiB) at the moments the benchmark also measures.
pub const ONED_RSS_IDLE_KIB: u64 = 12_208;
pub const ONED_RSS_1000_VMS_KIB: u64 = 16_464;
pub const ONED_RSS_10000_VMS_KIB: u64 = 44_988;
/// VmHWM after oned's 10,000-VM listing runs (up to 16 concurrent).
pub const ONED_PEAK_10000_LISTINGS_KIB: u64 = 218_680;

/// Sequential one.vm.allocate (Python client, one connection), VMs/s.
pub const ONED_ALLOCATE_0_1000: f64 = 194.0;
pub const ONED_ALLOCATE_1000_10000: f64 = 229.0;
/// Sequential one.vm.action("hold"), VMs/s.
pub const ONED_HOLD_0_1000: f64 = 245.0;
pub const ONED_HOLD_1000_10000: f64 = 297.0;
