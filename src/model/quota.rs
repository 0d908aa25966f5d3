//! A user's own limits in StratusLab's quota driver (3.2's `quotas` table, set with
//! `onequota set`); users without one get the site's limits (`[quota]` in the configuration).

use super::Oid;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UserQuota {
    pub uid: Oid,
    /// `None`: no limit (an empty column in 3.2's table).
    pub cpu: Option<f64>,
    /// MiB, compared with the sum of the VMs' MEMORY (the unit 3.2's driver compared).
    pub memory: Option<i64>,
    pub num_vms: Option<i64>,
    /// MiB of images; carried for a way back to oned, not enforced by stratusd.
    pub storage: Option<i64>,
}
