//! oned's dummy transfer driver: every operation succeeds at once and touches no disk (the
//! recorded sessions' hosts used `tm_dummy`). Simulated hypervisors live in `hypervisor`.

use super::{DriverError, Tm, TmOp};
use crate::model::{Host, Vm};

pub struct Dummy;

impl Tm for Dummy {
    fn execute(
        &self,
        _op: TmOp,
        _vm: &Vm,
        _host: &Host,
        _prev: Option<&Host>,
    ) -> Result<(), DriverError> {
        Ok(())
    }
}
