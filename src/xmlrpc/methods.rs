//! The method registry of oned 3.2: xmlrpc-c's `system.*` methods followed
//! by the 59 `one.*` methods, in the order `system.listMethods` answers
//! (recorded, e08 seq 5).
//!
//! The `registry!` table at the end of this file is the only place a method is named: its
//! XML-RPC name, the C++ request class of oned's messages (`[<Class>]`), its signature and
//! help text. Each `one.*` method also gets a variant of [`OnedMethod`], which the API layer
//! maps to its handler in an exhaustive `match` (`api::dispatch::handler`): the codec never
//! imports the handlers, and a method added here without a handler does not compile.
//!
//! stratusd's own methods (`stratusd.*`, docs/compatibility.md) are in the same table, in its
//! `stratusd` section: they get variants and handlers the same way and are answered by
//! [`lookup_any`], but they are not part of 3.2's registry ([`METHODS`], [`lookup`]), so
//! `system.listMethods`, `methodExist`, `methodHelp` and `methodSignature` answer as 3.2 did.

/// One registered method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodInfo {
    /// The XML-RPC method name.
    pub name: &'static str,
    /// xmlrpc-c's own method, or one of oned's.
    pub kind: MethodKind,
    /// The xmlrpc-c signature string, e.g. `A:si` (result type, colon,
    /// parameter types; informational, not enforced).
    pub signature: &'static str,
    /// The `system.methodHelp` text.
    pub help: &'static str,
}

/// Who answers a registered method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// One of xmlrpc-c's built-in `system.*` methods ([`super::system`]).
    System,
    /// One of oned's methods, with the C++ request class that prefixes its messages.
    Oned {
        method: OnedMethod,
        class: &'static str,
    },
}

impl MethodInfo {
    /// Whether this is one of xmlrpc-c's built-in methods.
    pub fn is_system(&self) -> bool {
        self.kind == MethodKind::System
    }

    /// The oned method; `None` for xmlrpc-c's own `system.*` methods.
    pub fn oned(&self) -> Option<OnedMethod> {
        match self.kind {
            MethodKind::System => None,
            MethodKind::Oned { method, .. } => Some(method),
        }
    }

    /// The C++ request class (`[<Class>]` prefix of oned's error messages);
    /// `None` for xmlrpc-c's own `system.*` methods.
    pub fn class(&self) -> Option<&'static str> {
        match self.kind {
            MethodKind::System => None,
            MethodKind::Oned { class, .. } => Some(class),
        }
    }

    /// The signatures as `system.methodSignature` lists them: per
    /// signature, the result type followed by the parameter types, in
    /// xmlrpc-c's type names. `None` when the method has no signature
    /// (`?`), which `system.methodSignature` answers with `undef`.
    pub fn signature_types(&self) -> Option<Vec<Vec<&'static str>>> {
        if self.signature == "?" || self.signature.is_empty() {
            return None;
        }
        let signatures = self
            .signature
            .split(',')
            .map(|sig| {
                sig.chars()
                    .filter(|&c| c != ':')
                    .filter_map(type_name)
                    .collect()
            })
            .collect();
        Some(signatures)
    }
}

/// xmlrpc-c's names for the signature letters.
fn type_name(letter: char) -> Option<&'static str> {
    Some(match letter {
        'i' => "int",
        'b' => "boolean",
        'd' => "double",
        's' => "string",
        '8' => "dateTime.iso8601",
        '6' => "base64",
        'S' => "struct",
        'A' => "array",
        'n' => "nil",
        'I' => "i8",
        _ => return None,
    })
}

impl OnedMethod {
    /// Its entry in [`METHODS`] (or in [`STRATUSD_METHODS`] for stratusd's own).
    pub fn info(self) -> &'static MethodInfo {
        // `registry!` declares the variants in the order of their entries: oned's, which
        // follow the system methods in `METHODS`, then stratusd's.
        let index = self as usize;
        match index.checked_sub(ONED_METHOD_COUNT) {
            None => &METHODS[SYSTEM_METHOD_COUNT + index],
            Some(own) => &STRATUSD_METHODS[own],
        }
    }

    /// The XML-RPC method name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The C++ request class that prefixes its messages (`[VirtualMachineAllocate] ...`).
    pub fn class(self) -> &'static str {
        self.info().class().unwrap_or_default()
    }
}

/// Declares [`OnedMethod`], [`METHODS`], [`STRATUSD_METHODS`], [`lookup`] and [`lookup_any`]
/// from one list, so that each method is named once.
macro_rules! registry {
    (
        system { $( ($sname:literal, $ssig:literal, $shelp:literal $(,)?) ),* $(,)? }
        oned { $( $variant:ident => ($name:literal, $class:literal, $sig:literal, $help:literal) ),* $(,)? }
        stratusd { $( $xvariant:ident => ($xname:literal, $xclass:literal, $xsig:literal, $xhelp:literal) ),* $(,)? }
    ) => {
        /// The methods the daemon answers besides xmlrpc-c's: oned's `one.*` methods in
        /// registration order, then stratusd's own.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum OnedMethod {
            $( $variant, )*
            $( $xvariant, )*
        }

        const SYSTEM_METHOD_COUNT: usize = [$( $sname ),*].len();
        const ONED_METHOD_COUNT: usize = [$( $name ),*].len();

        /// stratusd's own methods: answered like oned's, absent from 3.2's registry.
        pub static STRATUSD_METHODS: &[MethodInfo] = &[
            $( MethodInfo {
                name: $xname,
                kind: MethodKind::Oned { method: OnedMethod::$xvariant, class: $xclass },
                signature: $xsig,
                help: $xhelp,
            }, )*
        ];

        /// All methods, in registration order.
        pub static METHODS: &[MethodInfo] = &[
            $( MethodInfo {
                name: $sname,
                kind: MethodKind::System,
                signature: $ssig,
                help: $shelp,
            }, )*
            $( MethodInfo {
                name: $name,
                kind: MethodKind::Oned { method: OnedMethod::$variant, class: $class },
                signature: $sig,
                help: $help,
            }, )*
        ];

        /// The registered method of that exact (case-sensitive) name.
        pub fn lookup(name: &str) -> Option<&'static MethodInfo> {
            match name {
                $( $name => Some(OnedMethod::$variant.info()), )*
                _ => METHODS[..SYSTEM_METHOD_COUNT].iter().find(|m| m.name == name),
            }
        }

        /// The method of that exact name the daemon answers: 3.2's registry, then stratusd's
        /// own methods.
        pub fn lookup_any(name: &str) -> Option<&'static MethodInfo> {
            match name {
                $( $xname => Some(OnedMethod::$xvariant.info()), )*
                _ => lookup(name),
            }
        }
    };
}

registry! {
    system {
        (
            "system.listMethods",
            "A:",
            "Return an array of all available XML-RPC methods on this server.",
        ),
        (
            "system.methodExist",
            // Sic: xmlrpc-c registers result and parameter the wrong way round.
            "s:b",
            "Tell whether a method by a specified name exists on this server",
        ),
        (
            "system.methodHelp",
            "s:s",
            "Given the name of a method, return a help string.",
        ),
        (
            "system.methodSignature",
            "s:s",
            "Given the name of a method, return an array of legal signatures. Each signature is \
            an array of strings.  The first item of each signature is the return type, and any \
            others items are parameter types.",
        ),
        (
            "system.multicall",
            "A:A",
            "Process an array of calls, and return an array of results.  Calls should be structs \
            of the form {'methodName': string, 'params': array}. Each result will either be a \
            single-item array containg the result value, or a struct of the form {'faultCode': \
            int, 'faultString': string}.  This is useful when you need to make lots of small \
            calls without lots of round trips.",
        ),
        (
            "system.shutdown",
            "i:s",
            "Shut down the server.  Return code is always zero.",
        ),
        (
            "system.capabilities",
            "S:",
            "Return the capabilities of XML-RPC server.  This includes the version number of \
            the XML-RPC For C/C++ software",
        ),
        (
            "system.getCapabilities",
            "S:",
            "Return the list of standard capabilities of XML-RPC server.  See \
            http://tech.groups.yahoo.com/group/xml-rpc/message/2897",
        ),
    }
    oned {
        VmDeploy => ("one.vm.deploy", "VirtualMachineDeploy", "A:sii", "Deploys a virtual machine"),
        VmAction => ("one.vm.action", "VirtualMachineAction", "A:ssi", "Performs an action on a virtual machine"),
        VmMigrate => ("one.vm.migrate", "VirtualMachineMigrate", "A:siib", "Migrates a virtual machine"),
        VmSavedisk => ("one.vm.savedisk", "VirtualMachineSaveDisk", "A:siiss", "Saves a disk from virtual machine as a new image"),
        VmAllocate => ("one.vm.allocate", "VirtualMachineAllocate", "A:ss", "Allocates a new virtual machine"),
        VmInfo => ("one.vm.info", "VirtualMachineInfo", "A:si", "Returns virtual machine instance information"),
        VmChown => ("one.vm.chown", "VirtualMachineChown", "A:siii", "Changes ownership of a virtual machine"),
        VmChmod => ("one.vm.chmod", "VirtualMachineChmod", "A:siiiiiiiiii", "Changes permission bits of a virtual machine"),
        VmpoolInfo => ("one.vmpool.info", "VirtualMachinePoolInfo", "A:siiii", "Returns the virtual machine instances pool"),
        TemplateUpdate => ("one.template.update", "TemplateUpdateTemplate", "A:sis", "Updates a virtual machine template"),
        TemplateInstantiate => ("one.template.instantiate", "TemplateInstantiate", "A:sis", "Instantiates a new virtual machine using a template"),
        TemplateAllocate => ("one.template.allocate", "TemplateAllocate", "A:ss", "Allocates a new virtual machine template"),
        TemplateDelete => ("one.template.delete", "TemplateDelete", "A:si", "Deletes a virtual machine template"),
        TemplateInfo => ("one.template.info", "TemplateInfo", "A:si", "Returns virtual machine template information"),
        TemplateChown => ("one.template.chown", "TemplateChown", "A:siii", "Changes ownership of a virtual machine template"),
        TemplateChmod => ("one.template.chmod", "TemplateChmod", "A:siiiiiiiiii", "Changes permission bits of a virtual machine template"),
        TemplatepoolInfo => ("one.templatepool.info", "TemplatePoolInfo", "A:siii", "Returns the virtual machine template pool"),
        HostEnable => ("one.host.enable", "HostEnable", "A:sib", "Enables or disables a host"),
        HostUpdate => ("one.host.update", "HostUpdateTemplate", "A:sis", "Updates a host template"),
        HostAllocate => ("one.host.allocate", "HostAllocate", "A:ssssss", "Allocates a new host"),
        HostDelete => ("one.host.delete", "HostDelete", "A:si", "Deletes a host"),
        HostInfo => ("one.host.info", "HostInfo", "A:si", "Returns host information"),
        HostpoolInfo => ("one.hostpool.info", "HostPoolInfo", "A:s", "Returns the host pool"),
        GroupAllocate => ("one.group.allocate", "GroupAllocate", "A:ss", "Allocates a new group"),
        GroupDelete => ("one.group.delete", "GroupDelete", "A:si", "Deletes a group"),
        GroupInfo => ("one.group.info", "GroupInfo", "A:si", "Returns group information"),
        GrouppoolInfo => ("one.grouppool.info", "GroupPoolInfo", "A:s", "Returns the group pool"),
        VnAddleases => ("one.vn.addleases", "VirtualNetworkAddLeases", "A:sis", "Adds leases to a virtual network"),
        VnRmleases => ("one.vn.rmleases", "VirtualNetworkRemoveLeases", "A:sis", "Removes leases from a virtual network"),
        VnHold => ("one.vn.hold", "VirtualNetworkHold", "A:sis", "Holds a virtual network lease as used"),
        VnRelease => ("one.vn.release", "VirtualNetworkRelease", "A:sis", "Releases a virtual network lease on hold"),
        VnAllocate => ("one.vn.allocate", "VirtualNetworkAllocate", "A:ss", "Allocates a new virtual network"),
        VnUpdate => ("one.vn.update", "VirtualNetworkUpdateTemplate", "A:sis", "Updates a virtual network template"),
        VnDelete => ("one.vn.delete", "VirtualNetworkDelete", "A:si", "Deletes a virtual network"),
        VnInfo => ("one.vn.info", "VirtualNetworkInfo", "A:si", "Returns virtual network information"),
        VnChown => ("one.vn.chown", "VirtualNetworkChown", "A:siii", "Changes ownership of a virtual network"),
        VnChmod => ("one.vn.chmod", "VirtualNetworkChmod", "A:siiiiiiiiii", "Changes permission bits of a virtual network"),
        VnpoolInfo => ("one.vnpool.info", "VirtualNetworkPoolInfo", "A:siii", "Returns the virtual network pool"),
        UserAllocate => ("one.user.allocate", "UserAllocate", "A:ssss", "Allocates a new user"),
        UserUpdate => ("one.user.update", "UserUpdateTemplate", "A:sis", "Updates a user template"),
        UserDelete => ("one.user.delete", "UserDelete", "A:si", "Deletes a user"),
        UserInfo => ("one.user.info", "UserInfo", "A:si", "Returns user information"),
        UserPasswd => ("one.user.passwd", "UserChangePassword", "A:sis", "Changes the password of a user"),
        UserChgrp => ("one.user.chgrp", "UserChown", "A:sii", "Changes the group of a user"),
        UserChauth => ("one.user.chauth", "UserChangeAuth", "A:siss", "Changes the authentication driver and the password of a user"),
        UserpoolInfo => ("one.userpool.info", "UserPoolInfo", "A:s", "Returns the user pool"),
        ImagePersistent => ("one.image.persistent", "ImagePersistent", "A:sib", "Makes an image persistent or non-persistent"),
        ImageEnable => ("one.image.enable", "ImageEnable", "A:sib", "Enables or disables an image"),
        ImageUpdate => ("one.image.update", "ImageUpdateTemplate", "A:sis", "Updates an image template"),
        ImageAllocate => ("one.image.allocate", "ImageAllocate", "A:ss", "Allocates a new image"),
        ImageDelete => ("one.image.delete", "ImageDelete", "A:si", "Deletes an image"),
        ImageInfo => ("one.image.info", "ImageInfo", "A:si", "Returns image information"),
        ImageChown => ("one.image.chown", "ImageChown", "A:siii", "Changes ownership of an image"),
        ImageChmod => ("one.image.chmod", "ImageChmod", "A:siiiiiiiiii", "Changes permission bits of an image"),
        ImageChtype => ("one.image.chtype", "ImageChangeType", "A:sis", "Changes the type of an image"),
        ImagepoolInfo => ("one.imagepool.info", "ImagePoolInfo", "A:siii", "Returns the image pool"),
        AclAddrule => ("one.acl.addrule", "AclAddRule", "A:ssss", "Adds a new ACL rule"),
        AclDelrule => ("one.acl.delrule", "AclDelRule", "A:si", "Deletes an existing ACL rule"),
        AclInfo => ("one.acl.info", "AclInfo", "A:s", "Returns the ACL rule set"),
    }
    stratusd {
        // The disk sizes the VMs' prologs recorded, for `stratusd accounting`.
        VmpoolDisks => ("stratusd.vmpool.disks", "VirtualMachinePoolDisks", "A:siii", "Returns the recorded disk sizes of the VM pool"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_nine_one_methods_after_eight_system_methods() {
        assert!(METHODS[..8].iter().all(MethodInfo::is_system));
        assert!(METHODS[8..]
            .iter()
            .all(|m| !m.is_system() && m.name.starts_with("one.")));
        let mut names: Vec<_> = METHODS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 67);
    }

    /// Each entry is found by its name, and each oned method's variant leads back to its entry.
    #[test]
    fn every_entry_is_found_by_name_and_by_variant() {
        for m in METHODS {
            assert_eq!(lookup(m.name), Some(m), "{}", m.name);
            if let Some(method) = m.oned() {
                assert_eq!(method.info(), m, "{}", m.name);
                assert_eq!(method.name(), m.name);
                assert_eq!(Some(method.class()), m.class());
            }
        }
    }

    #[test]
    fn every_signature_uses_known_letters() {
        for m in METHODS {
            let letters = m
                .signature
                .chars()
                .filter(|&c| c != ':' && c != ',')
                .count();
            let types: usize = m
                .signature_types()
                .map_or(0, |sigs| sigs.iter().map(Vec::len).sum());
            assert_eq!(letters, types, "{}", m.name);
        }
    }

    /// stratusd's own methods are answered (found by name and variant) but are not in 3.2's
    /// registry.
    #[test]
    fn stratusd_methods_are_found_but_not_registered() {
        for m in STRATUSD_METHODS {
            assert!(lookup(m.name).is_none(), "{}", m.name);
            assert!(!METHODS.contains(m), "{}", m.name);
            assert_eq!(lookup_any(m.name), Some(m), "{}", m.name);
            let method = m.oned().expect("a handled method");
            assert_eq!(method.info(), m);
        }
        for m in METHODS {
            assert_eq!(lookup_any(m.name), Some(m), "{}", m.name);
        }
    }

    #[test]
    fn lookup_is_exact() {
        let info = lookup("one.vm.allocate").expect("registered");
        assert_eq!(info.class(), Some("VirtualMachineAllocate"));
        assert_eq!(info.oned(), Some(OnedMethod::VmAllocate));
        assert_eq!(info.signature, "A:ss");
        assert!(lookup("ONE.VM.INFO").is_none());
        assert!(lookup("one.vm.delete").is_none());
    }
}
