//! one.vm.allocate / info / pool / chown / chmod: building a VM from its template as 3.2's
//! `VirtualMachine::insert` does (ids, leases, disks, context, graphics port).

use super::auth::Caller;
use super::authz::AuthItem;
use super::command::Answer;
use super::messages::{AllocDetail, Denial, Refusal};
use super::owned::{self, get_authorized, Owned};
use super::{Change, Command, Core, Error, Result, Shared, State, Tx};
use crate::model::acl::Op;
use crate::model::image::{ImageState, ImageType};
use crate::model::vm::{LcmState, VmState};
use crate::model::vnet::{ip_to_string, parse_ip};
use crate::model::{now, Image, Kind, Oid, Permissions, VNet, Vm, VmTemplate};
use crate::template::vars::{substitute, VarResolver};
use crate::template::{self, Attribute, Template};
use crate::xmlrpc::{EscapedFragment, EscapedText};
use base64::Engine;
use std::sync::LazyLock;

static POOL_OPEN: LazyLock<EscapedFragment> =
    LazyLock::new(|| EscapedFragment::escape("<VM_POOL>"));
static POOL_CLOSE: LazyLock<EscapedFragment> =
    LazyLock::new(|| EscapedFragment::escape("</VM_POOL>"));

fn vector_value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn set_pair(pairs: &mut Vec<(String, String)>, key: &str, value: impl Into<String>) {
    let value = value.into();
    if let Some(p) = pairs.iter_mut().find(|(k, _)| k == key) {
        p.1 = value;
    } else {
        pairs.push((key.to_string(), value));
    }
}

/// The network a NIC names, resolved as 3.2 does (`NETWORK_ID`, or `NETWORK` owned by
/// `NETWORK_UID`/`NETWORK_UNAME`, by default by the VM's owner).
fn nic_network<'a>(
    state: &'a State,
    nic: &[(String, String)],
    owner: Oid,
) -> Option<Option<&'a VNet>> {
    if let Some(id) = vector_value(nic, "NETWORK_ID") {
        return Some(
            id.trim()
                .parse::<Oid>()
                .ok()
                .and_then(|id| state.vnets.get(&id)),
        );
    }
    let name = vector_value(nic, "NETWORK")?;
    let uid = if let Some(uid) = vector_value(nic, "NETWORK_UID") {
        uid.trim().parse::<Oid>().ok()
    } else if let Some(uname) = vector_value(nic, "NETWORK_UNAME") {
        state.user_by_name(uname).map(|u| u.id)
    } else {
        Some(owner)
    };
    Some(uid.and_then(|uid| {
        state
            .vnets
            .values()
            .find(|n| n.name == name && n.uid == uid)
    }))
}

fn disk_image<'a>(
    state: &'a State,
    disk: &[(String, String)],
    owner: Oid,
) -> Option<Option<&'a Image>> {
    if let Some(id) = vector_value(disk, "IMAGE_ID") {
        return Some(
            id.trim()
                .parse::<Oid>()
                .ok()
                .and_then(|id| state.images.get(&id)),
        );
    }
    let name = vector_value(disk, "IMAGE")?;
    let uid = if let Some(uid) = vector_value(disk, "IMAGE_UID") {
        uid.trim().parse::<Oid>().ok()
    } else if let Some(uname) = vector_value(disk, "IMAGE_UNAME") {
        state.user_by_name(uname).map(|u| u.id)
    } else {
        Some(owner)
    };
    Some(uid.and_then(|uid| {
        state
            .images
            .values()
            .find(|i| i.name == name && i.uid == uid)
    }))
}

/// Variables of CONTEXT and REQUIREMENTS, resolved against the VM being built.
struct VmVars<'a> {
    state: &'a State,
    vm: &'a Vm,
    /// Networks as changed by this allocation (with its leases), shadowing the stored ones.
    nets: &'a [VNet],
    /// Set when a `$NETWORK`/`$IMAGE`/`$USER` attribute was not found: 3.2 then leaves the
    /// CONTEXT key out altogether (an unmatched `$NIC[...]` only leaves it empty).
    object_attr_missing: std::cell::Cell<bool>,
}

impl VmVars<'_> {
    fn net(&self, id: Oid) -> Option<&VNet> {
        self.nets
            .iter()
            .find(|n| n.id == id)
            .or_else(|| self.state.vnets.get(&id))
    }
}

impl VarResolver for VmVars<'_> {
    fn single(&self, name: &str) -> Option<String> {
        match name {
            "UID" => Some(self.vm.uid.to_string()),
            "TEMPLATE" => {
                let mut doc = String::new();
                self.vm.write_xml(&mut doc, true);
                Some(base64::engine::general_purpose::STANDARD.encode(doc))
            }
            _ => self.vm.template.get(name).map(str::to_string),
        }
    }

    fn vector_attr(
        &self,
        vector: &str,
        attr: &str,
        filter: Option<(&str, &str)>,
    ) -> Option<String> {
        let found = self.lookup_vector_attr(vector, attr, filter);
        if found.is_none() && matches!(vector, "NETWORK" | "IMAGE" | "USER") {
            self.object_attr_missing.set(true);
        }
        found
    }
}

impl VmVars<'_> {
    fn lookup_vector_attr(
        &self,
        vector: &str,
        attr: &str,
        filter: Option<(&str, &str)>,
    ) -> Option<String> {
        match vector {
            "NETWORK" => {
                let net = self.vm.template.vectors("NIC").find_map(|nic| {
                    let id = vector_value(nic, "NETWORK_ID")?.parse::<Oid>().ok()?;
                    let net = self.net(id)?;
                    let ok = match filter {
                        Some(("NETWORK", v)) => net.name == v,
                        Some(("NETWORK_ID", v)) => v.trim().parse::<Oid>().ok() == Some(net.id),
                        Some(_) => false,
                        None => true,
                    };
                    ok.then_some(net)
                })?;
                if attr == "TEMPLATE" {
                    let mut doc = String::new();
                    net.write_xml(&mut doc, false);
                    return Some(base64::engine::general_purpose::STANDARD.encode(doc));
                }
                net.template.get(attr).map(str::to_string)
            }
            "IMAGE" => {
                let img = self.vm.template.vectors("DISK").find_map(|d| {
                    let id = vector_value(d, "IMAGE_ID")?.parse::<Oid>().ok()?;
                    let img = self.state.images.get(&id)?;
                    let ok = match filter {
                        Some(("IMAGE", v)) => img.name == v,
                        Some(("IMAGE_ID", v)) => v.trim().parse::<Oid>().ok() == Some(img.id),
                        Some(_) => false,
                        None => true,
                    };
                    ok.then_some(img)
                })?;
                if attr == "TEMPLATE" {
                    let mut doc = String::new();
                    img.write_xml(&mut doc);
                    return Some(base64::engine::general_purpose::STANDARD.encode(doc));
                }
                img.template.get(attr).map(str::to_string)
            }
            "USER" => {
                let user = self.state.users.get(&self.vm.uid)?;
                if attr == "TEMPLATE" {
                    let mut doc = String::new();
                    user.write_xml(&mut doc);
                    return Some(base64::engine::general_purpose::STANDARD.encode(doc));
                }
                user.template.get(attr).map(str::to_string)
            }
            _ => self.vm.template.vectors(vector).find_map(|pairs| {
                if let Some((k, v)) = filter {
                    if vector_value(pairs, k) != Some(v) {
                        return None;
                    }
                }
                vector_value(pairs, attr).map(str::to_string)
            }),
        }
    }
}

/// What counts against a user's quota: the CPU, MEMORY (MiB) and number of its VMs that are
/// not DONE.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QuotaUse {
    pub cpu: f64,
    pub memory: i64,
    pub vms: i64,
}

pub fn quota_use(state: &State, uid: Oid) -> QuotaUse {
    let mut used = QuotaUse::default();
    for vm in state
        .vms
        .values()
        .filter(|v| v.uid == uid && v.state != VmState::Done)
    {
        used.cpu += vm.template_cpu();
        used.memory += vm.template_memory();
        used.vms += 1;
    }
    used
}

/// [`quota_use`] of every user with a VM that is not DONE, in one pass over the VMs.
pub fn quota_use_by_user(state: &State) -> std::collections::HashMap<Oid, QuotaUse> {
    let mut by_user: std::collections::HashMap<Oid, QuotaUse> = Default::default();
    for vm in state.vms.values().filter(|v| v.state != VmState::Done) {
        let used = by_user.entry(vm.uid).or_default();
        used.cpu += vm.template_cpu();
        used.memory += vm.template_memory();
        used.vms += 1;
    }
    by_user
}

/// The quota a user is held to; `None` limits are unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QuotaLimits {
    pub cpu: Option<f64>,
    /// MiB.
    pub memory: Option<i64>,
    pub num_vms: Option<i64>,
}

/// The limits that apply to `uid`: its own (3.2's `quotas` row), which replace the site's as
/// a whole, or the site's; `None` when quotas are off, and for oneadmin.
pub fn quota_limits(
    site: &crate::config::QuotaSettings,
    state: &State,
    uid: Oid,
) -> Option<QuotaLimits> {
    if !site.enabled || uid == 0 {
        return None;
    }
    Some(match state.user_quotas.get(&uid) {
        Some(own) => QuotaLimits {
            cpu: own.cpu,
            memory: own.memory,
            num_vms: own.num_vms,
        },
        None => QuotaLimits {
            cpu: site.cpu,
            memory: site.memory,
            num_vms: site.num_vms,
        },
    })
}

/// StratusLab's quota driver: CPU and MEMORY of the user's live VMs plus the new one.
fn check_quota(core: &Shared, state: &State, caller: &Caller, tmpl: &Template) -> Result<()> {
    let Some(QuotaLimits {
        cpu: cpu_limit,
        memory: memory_limit,
        num_vms: num_vms_limit,
    }) = quota_limits(&core.settings.quota, state, caller.uid)
    else {
        return Ok(());
    };
    let QuotaUse {
        cpu: used_cpu,
        memory: used_mem,
        vms: used_vms,
    } = quota_use(state, caller.uid);
    let num = |name: &str| {
        tmpl.get(name)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // The driver converted the requested values to integers (0.5 CPU requests 0).
    let req_cpu = num("CPU").trunc();
    let req_mem = num("MEMORY").trunc() as i64;
    let mut errors = Vec::new();
    if let Some(limit) = cpu_limit {
        if used_cpu + req_cpu > limit {
            errors.push(Denial::quota("CPU", limit, used_cpu, req_cpu));
        }
    }
    if let Some(limit) = memory_limit {
        if used_mem + req_mem > limit {
            errors.push(Denial::quota(
                "MEMORY",
                limit as f64,
                used_mem as f64,
                req_mem as f64,
            ));
        }
    }
    if let Some(limit) = num_vms_limit {
        if used_vms + 1 > limit {
            errors.push(Denial::quota("NUM_VMS", limit as f64, used_vms as f64, 1.0));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Authorization {
            uid: caller.uid,
            reasons: errors,
        })
    }
}

fn alloc_err(detail: AllocDetail) -> Error {
    Error::alloc(Kind::Vm, detail)
}

/// USE on every network and image the template's NICs and DISKs name. Names that resolve to
/// nothing are left out (the allocation then fails on them with "Could not get …").
fn referenced_objects(state: &State, tmpl: &Template, owner: Oid) -> Vec<AuthItem> {
    let mut items = Vec::new();
    for nic in tmpl.vectors("NIC") {
        if let Some(Some(net)) = nic_network(state, nic, owner) {
            items.push(AuthItem::on(Kind::Net, Op::Use, net.obj_ref()));
        }
    }
    for disk in tmpl.vectors("DISK") {
        if let Some(Some(img)) = disk_image(state, disk, owner) {
            items.push(AuthItem::on(Kind::Image, Op::Use, img.obj_ref()));
        }
    }
    items
}

/// Attributes only oneadmin and its group may set (checked after authorization, as 3.2 does).
fn check_restricted(caller: &Caller, tmpl: &Template) -> Result<()> {
    // 3.2's check (StratusLab's patch left only NIC/VLAN_ID of 3.2's list): stratusd restricts
    // every attribute through which a template could run a program or reach a node's files
    // (src/trust.rs, docs/security.md).
    if caller.is_privileged() {
        return Ok(());
    }
    for (name, key) in crate::trust::vm_restricted() {
        let present = if key.is_empty() {
            tmpl.attributes().iter().any(|a| a.name() == name)
        } else {
            tmpl.vectors(name).any(|p| vector_value(p, key).is_some())
        };
        if present {
            let shown = if key.is_empty() {
                name.to_string()
            } else {
                format!("{name}/{key}")
            };
            return Err(alloc_err(AllocDetail::RestrictedVmAttribute(shown)));
        }
    }
    Ok(())
}

impl Command {
    /// `one.vm.allocate` of a template text: a text that does not parse is refused here, as
    /// 3.2 refused it before anything else.
    pub fn vm_allocate(caller: &Caller, text: &str) -> Result<Command> {
        let tmpl = template::parse(text).map_err(|e| Error::AllocateParse {
            kind: Kind::Vm,
            message: e.message,
        })?;
        Ok(Command::VmAllocate {
            caller: caller.clone(),
            template: tmpl,
        })
    }
}

/// The id [`Command::VmAllocate`] answered, logged.
pub fn vm_allocated(caller: &Caller, answer: Answer) -> Result<Oid> {
    let id = answer.id()?;
    tracing::info!(vm = id, user = %caller.name, "VM allocated");
    Ok(id)
}

/// The id [`Command::TemplateInstantiate`] answered, logged.
pub fn template_instantiated(caller: &Caller, template: Oid, answer: Answer) -> Result<Oid> {
    let vid = answer.id()?;
    tracing::info!(vm = vid, template, user = %caller.name, "VM instantiated");
    Ok(vid)
}

impl Core {
    pub fn vm_allocate(&self, caller: &Caller, text: &str) -> Result<Oid> {
        vm_allocated(caller, self.execute(Command::vm_allocate(caller, text)?)?)
    }

    /// `one.vm.allocate` of a parsed template: CREATE VM, and USE on every network and image it
    /// references.
    pub fn vm_allocate_template(&self, caller: &Caller, tmpl: Template) -> Result<Oid> {
        let answer = self.execute(Command::VmAllocate {
            caller: caller.clone(),
            template: tmpl,
        })?;
        vm_allocated(caller, answer)
    }

    /// `one.template.instantiate` (3.2's TemplateInstantiate): a VM from a registered template,
    /// owned by the caller. The template is looked up first (also for oneadmin); the caller
    /// needs USE on it and on the images and networks it references, but not CREATE VM. Every
    /// NAME of the template is replaced by `name`, even an empty one, which gives `one-<id>`:
    /// the template's own NAME never names the VM.
    pub fn template_instantiate(&self, caller: &Caller, id: Oid, name: &str) -> Result<Oid> {
        let answer = self.execute(Command::TemplateInstantiate {
            caller: caller.clone(),
            template: id,
            name: name.to_string(),
        })?;
        template_instantiated(caller, id, answer)
    }

    /// The VM's document, escaped for the answer (the cached pool entry when it is the same).
    pub fn vm_info(&self, caller: &Caller, id: Oid) -> Result<EscapedText> {
        let state = self.read();
        let vm = get_authorized::<Vm>(&state, caller, id, Op::Use)?;
        let mut doc = EscapedText::with_capacity(1);
        match state.vm_documents().info_document(vm) {
            Some(cached) => doc.push(cached),
            None => {
                let mut out = String::with_capacity(4096);
                vm.write_xml(&mut out, true);
                doc.push_text(&out);
            }
        }
        Ok(doc)
    }

    /// `one.vmpool.info(flag, start, end, state)`; state -2 all, -1 all but DONE, 0..7 exact.
    /// The document is put together from the VMs' cached entries, shared, not copied: the
    /// read lock is held only while they are picked.
    pub fn vmpool_info(
        &self,
        caller: &Caller,
        flag: i32,
        start: i32,
        end: i32,
        vm_state: i32,
    ) -> Result<EscapedText> {
        if !(-2..=7).contains(&vm_state) {
            return Err(Error::BadParameter(Refusal::IncorrectStateFilter));
        }
        let state = self.read();
        let documents = state.vm_documents();
        // The whole pool, any owner, DONE VMs or not: one piece kept joined (small pools).
        let whole = flag == -2 && start == -1 && end == -1 && matches!(vm_state, -1 | -2);
        if whole && owned::sees_all::<Vm>(&state, caller) {
            if let Some(all) = documents.whole_pool(vm_state == -2, state.vms.values()) {
                let mut doc = EscapedText::with_capacity(3);
                doc.push(&POOL_OPEN);
                doc.push(all);
                doc.push(&POOL_CLOSE);
                return Ok(doc);
            }
        }
        let vms = owned::filter::<Vm>(&state, caller, flag, start, end)?;
        let mut doc = EscapedText::with_capacity(2 + state.vms.len());
        doc.push(&POOL_OPEN);
        for vm in vms {
            let keep = match vm_state {
                -2 => true,
                -1 => vm.state != VmState::Done,
                s => vm.state as i32 == s,
            };
            if !keep {
                continue;
            }
            match documents.pool_entry(vm.id) {
                Some(entry) => doc.push(entry),
                // Unreachable while every change goes through `State::apply`; rendering keeps
                // the answer right even so.
                None => doc.push(&super::vm_documents::render_pool_entry(vm)),
            }
        }
        doc.push(&POOL_CLOSE);
        Ok(doc)
    }
}

impl Shared {
    /// [`Command::VmAllocate`]: CREATE VM and USE on what the template references, the
    /// quota, the restricted attributes, then the VM.
    pub(super) fn apply_vm_allocate(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        tmpl: &Template,
    ) -> Result<Oid> {
        let mut items = vec![AuthItem::create(Kind::Vm)];
        items.extend(referenced_objects(state, tmpl, caller.uid));
        state.authorize(caller, &items)?;
        check_quota(self, state, caller, tmpl)?;
        check_restricted(caller, tmpl)?;
        build_vm(self, state, tx, caller, tmpl.clone())
    }

    /// [`Command::TemplateInstantiate`].
    pub(super) fn apply_template_instantiate(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        name: &str,
    ) -> Result<Oid> {
        let registered = owned::get::<VmTemplate>(state, id)?;
        let mut tmpl = registered.template.clone();
        tmpl.remove("NAME");
        tmpl.push(Attribute::single("NAME", name));
        let mut items = vec![AuthItem::on(Kind::Template, Op::Use, registered.obj_ref())];
        items.extend(referenced_objects(state, &tmpl, caller.uid));
        state.authorize(caller, &items)?;
        // The quota module looks at a TEMPLATE USE request only when it carries more than
        // the template itself (3.2: a lone TEMPLATE USE is never quota-checked).
        if items.len() > 1 {
            check_quota(self, state, caller, &tmpl)?;
        }
        check_restricted(caller, &tmpl)?;
        build_vm(self, state, tx, caller, tmpl)
    }
}

/// Fills in the attributes 3.2 adds at allocation and takes the leases, all in `tx`.
fn build_vm(
    core: &Shared,
    state: &State,
    tx: &mut Tx,
    caller: &Caller,
    mut tmpl: Template,
) -> Result<Oid> {
    let s = &core.settings;
    let owner = super::users::get(state, caller.uid)?;
    if tmpl.vectors("CONTEXT").count() > 1 {
        return Err(alloc_err(AllocDetail::OneContext));
    }
    if tmpl.get("CONTEXT").is_some() {
        return Err(alloc_err(AllocDetail::ContextFormat));
    }
    if tmpl
        .attributes()
        .iter()
        .filter(|a| a.name() == "REQUIREMENTS")
        .count()
        > 1
    {
        return Err(alloc_err(AllocDetail::OneRequirements));
    }
    if tmpl.get_vector("REQUIREMENTS").is_some() {
        return Err(alloc_err(AllocDetail::RequirementsFormat));
    }
    let id = tx.alloc_id(state, Kind::Vm);
    // 3.2: the name is the first NAME when that is a non-empty single value, and every NAME
    // stays as written; otherwise `one-<id>`, which replaces every NAME.
    let name = match tmpl.get("NAME") {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => {
            let generated = format!("one-{id}");
            tmpl.set_single("NAME", &generated);
            generated
        }
    };
    if name.len() > 128 {
        return Err(alloc_err(AllocDetail::NameTooLong));
    }
    // Added after a VMID the user wrote, which therefore wins in `$VMID`, as in 3.2.
    tmpl.push(Attribute::single("VMID", id.to_string()));

    // Leases, inside this write: the first one.vm.info already shows IP and MAC.
    let mut nets: Vec<VNet> = Vec::new();
    let mut attrs: Vec<Attribute> = Vec::new();
    for attr in tmpl.attributes().iter().cloned() {
        let Attribute::Vector {
            name: vname,
            mut pairs,
        } = attr
        else {
            attrs.push(attr);
            continue;
        };
        if vname == "NIC" {
            match nic_network(state, &pairs, caller.uid) {
                None => {}
                Some(None) => return Err(alloc_err(AllocDetail::NoVirtualNetwork)),
                Some(Some(net)) => {
                    let idx = match nets.iter().position(|n| n.id == net.id) {
                        Some(i) => i,
                        None => {
                            nets.push(net.clone());
                            nets.len() - 1
                        }
                    };
                    let net = &mut nets[idx];
                    let (ip, mac) = match vector_value(&pairs, "IP") {
                        Some(req) => match parse_ip(req) {
                            Some(ip) if net.is_free(ip) => (ip, net.take(ip, id)),
                            _ => return Err(alloc_err(AllocDetail::NoVirtualNetwork)),
                        },
                        None => net
                            .take_next(id)
                            .ok_or_else(|| alloc_err(AllocDetail::NoVirtualNetwork))?,
                    };
                    set_pair(&mut pairs, "NETWORK", net.name.clone());
                    set_pair(&mut pairs, "NETWORK_ID", net.id.to_string());
                    set_pair(&mut pairs, "BRIDGE", net.bridge.clone());
                    set_pair(&mut pairs, "MAC", mac);
                    set_pair(&mut pairs, "IP", ip_to_string(ip));
                    set_pair(&mut pairs, "VLAN", if net.vlan { "YES" } else { "NO" });
                    if !net.phydev.is_empty() {
                        set_pair(&mut pairs, "PHYDEV", net.phydev.clone());
                    }
                    if !net.vlan_id.is_empty() {
                        set_pair(&mut pairs, "VLAN_ID", net.vlan_id.clone());
                    }
                }
            }
        }
        attrs.push(Attribute::Vector { name: vname, pairs });
    }

    // Disks: DISK_ID in template order, registered images expanded, device targets assigned.
    let mut images: Vec<Image> = Vec::new();
    let mut disk_index = 0;
    let mut datablock_letter = b'e';
    let (mut os_images, mut cdrom_images) = (0, 0);
    for attr in attrs.iter_mut() {
        let Attribute::Vector { name: vname, pairs } = attr else {
            continue;
        };
        if vname != "DISK" {
            continue;
        }
        set_pair(pairs, "DISK_ID", disk_index.to_string());
        disk_index += 1;
        match disk_image(state, pairs, caller.uid) {
            None => {
                let is_swap =
                    vector_value(pairs, "TYPE").is_some_and(|t| t.eq_ignore_ascii_case("swap"));
                if is_swap && vector_value(pairs, "TARGET").is_none() {
                    set_pair(pairs, "TARGET", format!("{}d", s.default_device_prefix));
                }
            }
            Some(None) => return Err(alloc_err(AllocDetail::NoDiskImage)),
            Some(Some(img)) => {
                let img = match images.iter_mut().find(|i| i.id == img.id) {
                    Some(i) => i,
                    None => {
                        images.push(img.clone());
                        images
                            .last_mut()
                            .ok_or_else(|| Error::Internal("image list".into()))?
                    }
                };
                // A non-persistent image may be shared by many VMs; a persistent one by one.
                let usable = img.state == ImageState::Ready
                    || (img.state == ImageState::Used && !img.persistent);
                if !usable {
                    return Err(alloc_err(AllocDetail::NoDiskImage));
                }
                let prefix = img
                    .template
                    .get("DEV_PREFIX")
                    .unwrap_or(&s.default_device_prefix)
                    .to_string();
                let (dtype, letter) = match img.image_type {
                    ImageType::Os => {
                        os_images += 1;
                        ("DISK", b'a')
                    }
                    ImageType::Cdrom => {
                        cdrom_images += 1;
                        ("CDROM", b'c')
                    }
                    ImageType::Datablock => {
                        let l = datablock_letter;
                        datablock_letter += 1;
                        ("DISK", l)
                    }
                };
                if os_images > 1 {
                    return Err(alloc_err(AllocDetail::MoreThanOneOsImage));
                }
                if cdrom_images > 1 {
                    return Err(alloc_err(AllocDetail::MoreThanOneCdrom));
                }
                if datablock_letter > b'e' + 10 {
                    return Err(alloc_err(AllocDetail::TooManyDatablocks));
                }
                set_pair(pairs, "IMAGE", img.name.clone());
                set_pair(pairs, "IMAGE_ID", img.id.to_string());
                set_pair(pairs, "SOURCE", img.source.clone());
                set_pair(pairs, "CLONE", if img.persistent { "NO" } else { "YES" });
                set_pair(pairs, "SAVE", if img.persistent { "YES" } else { "NO" });
                if img.persistent {
                    set_pair(pairs, "PERSISTENT", "YES");
                }
                set_pair(pairs, "TYPE", dtype);
                if vector_value(pairs, "READONLY").is_none() {
                    set_pair(
                        pairs,
                        "READONLY",
                        if img.image_type == ImageType::Cdrom {
                            "YES"
                        } else {
                            "NO"
                        },
                    );
                }
                if vector_value(pairs, "TARGET").is_none() {
                    let target = img
                        .template
                        .get("TARGET")
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("{prefix}{}", letter as char));
                    set_pair(pairs, "TARGET", target);
                }
                for key in ["BUS", "DRIVER"] {
                    if let Some(v) = img.template.get(key) {
                        if vector_value(pairs, key).is_none() {
                            set_pair(pairs, key, v.to_string());
                        }
                    }
                }
                img.running_vms += 1;
                img.state = ImageState::Used;
            }
        }
    }

    // VNC port: VNC_BASE_PORT + id unless the user gave one (StratusLab sends -1 = autoport).
    for attr in attrs.iter_mut() {
        if let Attribute::Vector { name: vname, pairs } = attr {
            if vname == "GRAPHICS" && vector_value(pairs, "PORT").is_none() {
                set_pair(pairs, "PORT", (s.vnc_base_port + id as i64).to_string());
            }
        }
    }
    let mut tmpl = Template::from_attributes(attrs);

    let mut vm = Vm {
        id,
        uid: caller.uid,
        gid: owner.gid,
        uname: owner.name.clone(),
        gname: owner.gname.clone(),
        name,
        perms: Permissions::default(),
        last_poll: 0,
        state: VmState::Pending,
        lcm_state: LcmState::LcmInit,
        stime: now(),
        etime: 0,
        deploy_id: String::new(),
        memory: 0,
        cpu: 0,
        net_tx: 0,
        net_rx: 0,
        template: tmpl.clone(),
        history: Vec::new(),
        reboot_requested: false,
        resubmit_after_cleanup: false,
        boot_restores: false,
        disk_sizes: None,
    };

    // CONTEXT values and REQUIREMENTS get their variables substituted (leases are known now).
    // The substitution reads networks as they are after this VM's leases.
    if let Some(pairs) = tmpl.get_vector("CONTEXT").map(|p| p.to_vec()) {
        let vars = VmVars {
            state,
            vm: &vm,
            nets: &nets,
            object_attr_missing: Default::default(),
        };
        let mut out = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            vars.object_attr_missing.set(false);
            // The variable grammar needs at least one piece of text: empty stays empty.
            let value = if v.is_empty() {
                v
            } else {
                substitute(&v, &vars).map_err(|_| Error::Allocate {
                    kind: Kind::Vm,
                    detail: None,
                })?
            };
            if value.is_empty() && vars.object_attr_missing.get() {
                continue;
            }
            out.push((k, value));
        }
        if vector_value(&out, "TARGET").is_none() {
            out.push(("TARGET".into(), format!("{}b", s.default_device_prefix)));
        }
        if let Some(ctx) = tmpl.get_vector_mut("CONTEXT") {
            *ctx = out;
        }
    }
    if let Some(req) = tmpl
        .get("REQUIREMENTS")
        .filter(|r| !r.is_empty())
        .map(str::to_string)
    {
        let vars = VmVars {
            state,
            vm: &vm,
            nets: &nets,
            object_attr_missing: Default::default(),
        };
        let value = substitute(&req, &vars).map_err(|_| Error::Allocate {
            kind: Kind::Vm,
            detail: None,
        })?;
        tmpl.set_single("REQUIREMENTS", &value);
    }
    vm.template = tmpl;
    // Last, as 3.2's insert: a body that would not be well-formed XML is refused, nothing is
    // kept and the id is not used.
    Error::check_xml(
        Kind::Vm,
        &[&vm.name, &vm.uname, &vm.gname],
        Some(&vm.template),
    )?;

    for net in nets {
        for nic in vm.template.vectors("NIC") {
            if vector_value(nic, "NETWORK_ID") == Some(net.id.to_string().as_str()) {
                if let Some(ip) = vector_value(nic, "IP") {
                    let mac = vector_value(nic, "MAC").unwrap_or("");
                    tracing::info!(vm = id, network = %net.name, "acquired lease (IP={ip}, MAC={mac})");
                }
            }
        }
        tx.put(Change::VNet(net));
    }
    for img in images {
        tx.put(Change::Image(img));
    }
    tx.put(Change::Vm(vm));
    Ok(id)
}
