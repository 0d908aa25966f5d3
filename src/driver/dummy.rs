//! oned's dummy drivers: every operation succeeds at once; monitoring reports fixed values.
//! (Named as such: this is what the recorded oned ran with for its simulated hosts.)

use super::{DriverError, Im, Tm, TmOp, Vmm, VmmOp, VmmResult};
use crate::core::hosts::MonitorResult;
use crate::model::{Host, Vm};

pub struct Dummy;

impl Vmm for Dummy {
    fn execute(&self, op: VmmOp, vm: &Vm, host: &Host) -> VmmResult {
        Ok(match op {
            VmmOp::Deploy | VmmOp::Restore => Some(format!("{}:{}:dummy", host.name, vm.name)),
            _ => None,
        })
    }
}

impl Im for Dummy {
    fn monitor(&self, host: &Host) -> MonitorResult {
        let v = |k: &str, val: &str| (k.to_string(), val.to_string());
        MonitorResult::Ok(vec![
            v("HYPERVISOR", "dummy"),
            v("HOSTNAME", &host.name),
            v("TOTALCPU", "800"),
            v("CPUSPEED", "2.2GHz"),
            v("TOTALMEMORY", "16777216"),
            v("FREEMEMORY", "16777216"),
            v("USEDCPU", "0"),
            v("USEDMEMORY", "0"),
            v("FREECPU", "800"),
        ])
    }
}

impl Tm for Dummy {
    fn execute(&self, _op: TmOp, _vm: &Vm, _host: &Host) -> Result<(), DriverError> {
        Ok(())
    }
}
