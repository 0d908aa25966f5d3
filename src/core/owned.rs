//! What the four owned object types (VM, VMTEMPLATE, VNET, IMAGE) share: an owner, a group,
//! permission bits, and the chown/chmod operations 3.2 defines for all of them alike.

use super::auth::Caller;
use super::authz::{AuthItem, ObjRef};
use super::command::Answer;
use super::messages::Refusal;
use super::{Change, Command, Error, Result, Shared, State, Tx};
use crate::model::acl::Op;
use crate::model::{Image, Kind, Oid, Permissions, VNet, Vm, VmTemplate};
use std::collections::BTreeMap;

pub trait Owned: Clone + 'static {
    const KIND: Kind;
    fn id(&self) -> Oid;
    fn owner(&self) -> (Oid, Oid);
    fn perms(&self) -> Permissions;
    fn perms_mut(&mut self) -> &mut Permissions;
    fn set_owner(&mut self, uid: Oid, uname: String, gid: Oid, gname: String);
    fn owner_names(&self) -> (String, String);
    fn into_change(self) -> Change;
    fn pool(state: &State) -> &BTreeMap<Oid, Self>;

    fn obj_ref(&self) -> ObjRef {
        let (uid, gid) = self.owner();
        ObjRef {
            oid: self.id(),
            uid,
            gid,
            perms: self.perms(),
        }
    }
}

macro_rules! owned {
    ($t:ty, $kind:expr, $variant:ident, $pool:ident) => {
        impl Owned for $t {
            const KIND: Kind = $kind;
            fn id(&self) -> Oid {
                self.id
            }
            fn owner(&self) -> (Oid, Oid) {
                (self.uid, self.gid)
            }
            fn perms(&self) -> Permissions {
                self.perms
            }
            fn perms_mut(&mut self) -> &mut Permissions {
                &mut self.perms
            }
            fn set_owner(&mut self, uid: Oid, uname: String, gid: Oid, gname: String) {
                self.uid = uid;
                self.uname = uname;
                self.gid = gid;
                self.gname = gname;
            }
            fn owner_names(&self) -> (String, String) {
                (self.uname.clone(), self.gname.clone())
            }
            fn into_change(self) -> Change {
                Change::$variant(self)
            }
            fn pool(state: &State) -> &BTreeMap<Oid, Self> {
                &state.$pool
            }
        }
    };
}

owned!(Vm, Kind::Vm, Vm, vms);
owned!(VmTemplate, Kind::Template, Template, templates);
owned!(VNet, Kind::Net, VNet, vnets);
owned!(Image, Kind::Image, Image, images);

/// Looks an object up, or the 3.2 `Error getting <object> [<id>].`
pub fn get<T: Owned>(state: &State, id: Oid) -> Result<&T> {
    T::pool(state)
        .get(&id)
        .ok_or(Error::NoExists { kind: T::KIND, id })
}

/// Looks up and authorizes `op` on the object.
pub fn get_authorized<'a, T: Owned>(
    state: &'a State,
    caller: &Caller,
    id: Oid,
    op: Op,
) -> Result<&'a T> {
    let obj = get::<T>(state, id)?;
    state.authorize(caller, &[AuthItem::on(T::KIND, op, obj.obj_ref())])?;
    Ok(obj)
}

/// `one.<x>.chown`: -1 keeps the current owner or group.
pub fn chown<T: Owned>(
    state: &State,
    caller: &Caller,
    id: Oid,
    new_uid: Oid,
    new_gid: Oid,
) -> Result<T> {
    let obj = get::<T>(state, id)?;
    let mut items = vec![AuthItem::on(T::KIND, Op::Manage, obj.obj_ref())];
    let (cur_uid, cur_gid) = obj.owner();
    let (mut uid, mut gid) = (cur_uid, cur_gid);
    let mut uname = None;
    let mut gname = None;
    if new_uid > -1 {
        let user = state.users.get(&new_uid).ok_or(Error::NoExists {
            kind: Kind::User,
            id: new_uid,
        })?;
        items.push(AuthItem::on(
            Kind::User,
            Op::Manage,
            super::users::user_ref(user),
        ));
        uid = new_uid;
        uname = Some(user.name.clone());
    }
    if new_gid > -1 {
        let group = state.groups.get(&new_gid).ok_or(Error::NoExists {
            kind: Kind::Group,
            id: new_gid,
        })?;
        items.push(AuthItem::on(
            Kind::Group,
            Op::Use,
            super::groups::group_ref(group.id),
        ));
        gid = new_gid;
        gname = Some(group.name.clone());
    }
    state.authorize(caller, &items)?;
    let mut changed = obj.clone();
    let uname = uname.unwrap_or_else(|| {
        state
            .users
            .get(&cur_uid)
            .map(|u| u.name.clone())
            .unwrap_or_default()
    });
    let gname = gname.unwrap_or_else(|| state.group_name(cur_gid));
    // Keep the stored names when the ids are kept (the owner may have been renamed/deleted).
    let (old_uname, old_gname) = changed.owner_names();
    let uname = if uid == cur_uid && new_uid <= -1 {
        old_uname
    } else {
        uname
    };
    let gname = if gid == cur_gid && new_gid <= -1 {
        old_gname
    } else {
        gname
    };
    changed.set_owner(uid, uname, gid, gname);
    Ok(changed)
}

/// `one.<x>.chmod` with the nine bits in parameter order (-1 = keep), as 3.2's
/// RequestManagerChmod decides it. oneadmin and its group apply the bits as given. Anyone else
/// first has OWNER_A, GROUP_A and the three OTHER bits compared with the object's: an equal
/// value keeps the bit. Only an ADMIN bit that really changes needs ADMIN on the object
/// (MANAGE is enough otherwise), and only an OTHER bit that really changes meets
/// ENABLE_OTHER_PERMISSIONS. So the full nine-value mask a client sends (the CLI's octal form)
/// works for an owner with MANAGE as long as it repeats the ADMIN and OTHER bits it has.
pub fn chmod<T: Owned>(
    state: &State,
    caller: &Caller,
    id: Oid,
    requested: [i32; 9],
    enable_other: bool,
) -> Result<T> {
    const OWNER_A: usize = 2;
    const GROUP_U: usize = 3;
    const GROUP_A: usize = 5;
    const OTHER_U: usize = 6;
    const OTHER_M: usize = 7;
    const OTHER_A: usize = 8;
    let obj = get::<T>(state, id)?;
    let current = obj.perms().as_array();
    let mut bits = requested;
    if !caller.is_privileged() {
        for k in [OWNER_A, GROUP_A, OTHER_U, OTHER_M, OTHER_A] {
            if bits[k] == i32::from(current[k]) {
                bits[k] = -1;
            }
        }
        // A -1 is never a change; any other value that differs is (even an invalid one).
        let changes = |ks: &[usize]| ks.iter().any(|k| bits[*k] != -1);
        if !enable_other && changes(&[OTHER_U, OTHER_M, OTHER_A]) {
            return Err(Error::Unprefixed {
                message: Refusal::OtherPermissionsDisabled,
                code: super::error::CODE_AUTHORIZATION,
            });
        }
        let op = if changes(&[OWNER_A, GROUP_A, OTHER_A]) {
            Op::Admin
        } else {
            Op::Manage
        };
        state.authorize(caller, &[AuthItem::on(T::KIND, op, obj.obj_ref())])?;
    }
    let image = (obj as &dyn std::any::Any).downcast_ref::<Image>();
    if image.is_some_and(|img| img.persistent)
        && (requested[GROUP_U] == 1 || requested[OTHER_U] == 1)
    {
        return Err(Error::request(Refusal::ChmodPublicPersistent));
    }
    if bits.iter().any(|b| !(-1..=1).contains(b)) {
        return Err(Error::request(Refusal::ChmodRange));
    }
    let mut changed = obj.clone();
    let mut now = current;
    for (slot, bit) in now.iter_mut().zip(bits.iter()) {
        if *bit != -1 {
            *slot = *bit == 1;
        }
    }
    *changed.perms_mut() = Permissions::from_array(now);
    Ok(changed)
}

/// A pool answer (`<IMAGE_POOL>…</IMAGE_POOL>` and the like): the objects [`filter`] lets the
/// caller see, each rendered by `render`, between the pool's root tags.
pub fn pool_document<T: Owned>(
    state: &State,
    caller: &Caller,
    (flag, start, end): (i32, i32, i32),
    root: &str,
    render: impl Fn(&T, &mut String),
) -> Result<String> {
    let mut out = format!("<{root}>");
    for obj in filter::<T>(state, caller, flag, start, end)? {
        render(obj, &mut out);
    }
    out.push_str("</");
    out.push_str(root);
    out.push('>');
    Ok(out)
}

/// Whether `caller` may see every object of the pool (flag -2 then filters nothing).
pub fn sees_all<T: Owned>(state: &State, caller: &Caller) -> bool {
    caller.is_privileged() || state.acl_grants_all(caller, T::KIND, Op::Use)
}

/// Objects of a pool the caller may see with a 3.2 pool filter (§3 of the spec):
/// -3 mine, -2 all I may USE, -1 mine and my group's, >= 0 that user's; plus an id range.
pub fn filter<'a, T: Owned>(
    state: &'a State,
    caller: &'a Caller,
    flag: i32,
    start: i32,
    end: i32,
) -> Result<impl Iterator<Item = &'a T> + 'a> {
    if flag < -3 {
        return Err(Error::BadParameter(Refusal::IncorrectFilter));
    }
    let unrestricted = sees_all::<T>(state, caller);
    let range: Box<dyn Iterator<Item = (&Oid, &T)>> = if start != -1 {
        if end != -1 {
            if end < start {
                Box::new(std::iter::empty())
            } else {
                Box::new(T::pool(state).range(start..=end))
            }
        } else {
            Box::new(T::pool(state).range(start..))
        }
    } else {
        Box::new(T::pool(state).iter())
    };
    Ok(range.map(|(_, o)| o).filter(move |o| {
        let (uid, gid) = o.owner();
        match flag {
            -3 => uid == caller.uid,
            -1 => uid == caller.uid || (gid == caller.gid && o.perms().group_u),
            -2 => unrestricted || can_use(state, caller, *o),
            owner => {
                uid == owner && (unrestricted || owner == caller.uid || can_use(state, caller, *o))
            }
        }
    }))
}

fn can_use<T: Owned>(state: &State, caller: &Caller, obj: &T) -> bool {
    state.allows(caller, &AuthItem::on(T::KIND, Op::Use, obj.obj_ref()))
}

impl super::Core {
    /// `one.<x>.chown` for any owned object type.
    pub fn chown<T: Owned>(&self, caller: &Caller, id: Oid, uid: Oid, gid: Oid) -> Result<Oid> {
        self.execute(Command::Chown {
            caller: caller.clone(),
            kind: T::KIND,
            id,
            uid,
            gid,
        })
        .and_then(Answer::id)
    }

    /// `one.<x>.chmod` for any owned object type.
    pub fn chmod<T: Owned>(&self, caller: &Caller, id: Oid, bits: [i32; 9]) -> Result<Oid> {
        self.execute(Command::Chmod {
            caller: caller.clone(),
            kind: T::KIND,
            id,
            bits,
        })
        .and_then(Answer::id)
    }
}

impl Shared {
    /// [`super::Command::Chown`] of a `T`.
    pub(super) fn apply_chown<T: Owned>(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        uid: Oid,
        gid: Oid,
    ) -> Result<Oid> {
        tx.put(chown::<T>(state, caller, id, uid, gid)?.into_change());
        Ok(id)
    }

    /// [`super::Command::Chmod`] of a `T`.
    pub(super) fn apply_chmod<T: Owned>(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        bits: [i32; 9],
    ) -> Result<Oid> {
        let enable_other = self.settings.enable_other_permissions;
        tx.put(chmod::<T>(state, caller, id, bits, enable_other)?.into_change());
        Ok(id)
    }
}
