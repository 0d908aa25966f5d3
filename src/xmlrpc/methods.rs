//! The method registry of oned 3.2: xmlrpc-c's `system.*` methods followed
//! by the 59 `one.*` methods, in the order `system.listMethods` answers
//! (recorded, e08 seq 5).

/// One registered method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodInfo {
    /// The XML-RPC method name.
    pub name: &'static str,
    /// The C++ request class (`[<M>]` prefix of oned's error messages);
    /// `None` for xmlrpc-c's own `system.*` methods.
    pub message: Option<&'static str>,
    /// The xmlrpc-c signature string, e.g. `A:si` (result type, colon,
    /// parameter types; informational, not enforced).
    pub signature: &'static str,
    /// The `system.methodHelp` text.
    pub help: &'static str,
}

impl MethodInfo {
    /// Whether this is one of xmlrpc-c's built-in methods.
    pub fn is_system(&self) -> bool {
        self.message.is_none()
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

const fn system(name: &'static str, signature: &'static str, help: &'static str) -> MethodInfo {
    MethodInfo {
        name,
        message: None,
        signature,
        help,
    }
}

const fn one(
    name: &'static str,
    message: &'static str,
    signature: &'static str,
    help: &'static str,
) -> MethodInfo {
    MethodInfo {
        name,
        message: Some(message),
        signature,
        help,
    }
}

/// All methods, in registration order.
pub static METHODS: [MethodInfo; 67] = [
    system(
        "system.listMethods",
        "A:",
        "Return an array of all available XML-RPC methods on this server.",
    ),
    system(
        "system.methodExist",
        // Sic: xmlrpc-c registers result and parameter the wrong way round.
        "s:b",
        "Tell whether a method by a specified name exists on this server",
    ),
    system(
        "system.methodHelp",
        "s:s",
        "Given the name of a method, return a help string.",
    ),
    system(
        "system.methodSignature",
        "s:s",
        "Given the name of a method, return an array of legal signatures. Each signature is \
         an array of strings.  The first item of each signature is the return type, and any \
         others items are parameter types.",
    ),
    system(
        "system.multicall",
        "A:A",
        "Process an array of calls, and return an array of results.  Calls should be structs \
         of the form {'methodName': string, 'params': array}. Each result will either be a \
         single-item array containg the result value, or a struct of the form {'faultCode': \
         int, 'faultString': string}.  This is useful when you need to make lots of small \
         calls without lots of round trips.",
    ),
    system(
        "system.shutdown",
        "i:s",
        "Shut down the server.  Return code is always zero.",
    ),
    system(
        "system.capabilities",
        "S:",
        "Return the capabilities of XML-RPC server.  This includes the version number of \
         the XML-RPC For C/C++ software",
    ),
    system(
        "system.getCapabilities",
        "S:",
        "Return the list of standard capabilities of XML-RPC server.  See \
         http://tech.groups.yahoo.com/group/xml-rpc/message/2897",
    ),
    one(
        "one.vm.deploy",
        "VirtualMachineDeploy",
        "A:sii",
        "Deploys a virtual machine",
    ),
    one(
        "one.vm.action",
        "VirtualMachineAction",
        "A:ssi",
        "Performs an action on a virtual machine",
    ),
    one(
        "one.vm.migrate",
        "VirtualMachineMigrate",
        "A:siib",
        "Migrates a virtual machine",
    ),
    one(
        "one.vm.savedisk",
        "VirtualMachineSaveDisk",
        "A:siiss",
        "Saves a disk from virtual machine as a new image",
    ),
    one(
        "one.vm.allocate",
        "VirtualMachineAllocate",
        "A:ss",
        "Allocates a new virtual machine",
    ),
    one(
        "one.vm.info",
        "VirtualMachineInfo",
        "A:si",
        "Returns virtual machine instance information",
    ),
    one(
        "one.vm.chown",
        "VirtualMachineChown",
        "A:siii",
        "Changes ownership of a virtual machine",
    ),
    one(
        "one.vm.chmod",
        "VirtualMachineChmod",
        "A:siiiiiiiiii",
        "Changes permission bits of a virtual machine",
    ),
    one(
        "one.vmpool.info",
        "VirtualMachinePoolInfo",
        "A:siiii",
        "Returns the virtual machine instances pool",
    ),
    one(
        "one.template.update",
        "TemplateUpdateTemplate",
        "A:sis",
        "Updates a virtual machine template",
    ),
    one(
        "one.template.instantiate",
        "TemplateInstantiate",
        "A:sis",
        "Instantiates a new virtual machine using a template",
    ),
    one(
        "one.template.allocate",
        "TemplateAllocate",
        "A:ss",
        "Allocates a new virtual machine template",
    ),
    one(
        "one.template.delete",
        "TemplateDelete",
        "A:si",
        "Deletes a virtual machine template",
    ),
    one(
        "one.template.info",
        "TemplateInfo",
        "A:si",
        "Returns virtual machine template information",
    ),
    one(
        "one.template.chown",
        "TemplateChown",
        "A:siii",
        "Changes ownership of a virtual machine template",
    ),
    one(
        "one.template.chmod",
        "TemplateChmod",
        "A:siiiiiiiiii",
        "Changes permission bits of a virtual machine template",
    ),
    one(
        "one.templatepool.info",
        "TemplatePoolInfo",
        "A:siii",
        "Returns the virtual machine template pool",
    ),
    one(
        "one.host.enable",
        "HostEnable",
        "A:sib",
        "Enables or disables a host",
    ),
    one(
        "one.host.update",
        "HostUpdateTemplate",
        "A:sis",
        "Updates a host template",
    ),
    one(
        "one.host.allocate",
        "HostAllocate",
        "A:ssssss",
        "Allocates a new host",
    ),
    one("one.host.delete", "HostDelete", "A:si", "Deletes a host"),
    one(
        "one.host.info",
        "HostInfo",
        "A:si",
        "Returns host information",
    ),
    one(
        "one.hostpool.info",
        "HostPoolInfo",
        "A:s",
        "Returns the host pool",
    ),
    one(
        "one.group.allocate",
        "GroupAllocate",
        "A:ss",
        "Allocates a new group",
    ),
    one("one.group.delete", "GroupDelete", "A:si", "Deletes a group"),
    one(
        "one.group.info",
        "GroupInfo",
        "A:si",
        "Returns group information",
    ),
    one(
        "one.grouppool.info",
        "GroupPoolInfo",
        "A:s",
        "Returns the group pool",
    ),
    one(
        "one.vn.addleases",
        "VirtualNetworkAddLeases",
        "A:sis",
        "Adds leases to a virtual network",
    ),
    one(
        "one.vn.rmleases",
        "VirtualNetworkRemoveLeases",
        "A:sis",
        "Removes leases from a virtual network",
    ),
    one(
        "one.vn.hold",
        "VirtualNetworkHold",
        "A:sis",
        "Holds a virtual network lease as used",
    ),
    one(
        "one.vn.release",
        "VirtualNetworkRelease",
        "A:sis",
        "Releases a virtual network lease on hold",
    ),
    one(
        "one.vn.allocate",
        "VirtualNetworkAllocate",
        "A:ss",
        "Allocates a new virtual network",
    ),
    one(
        "one.vn.update",
        "VirtualNetworkUpdateTemplate",
        "A:sis",
        "Updates a virtual network template",
    ),
    one(
        "one.vn.delete",
        "VirtualNetworkDelete",
        "A:si",
        "Deletes a virtual network",
    ),
    one(
        "one.vn.info",
        "VirtualNetworkInfo",
        "A:si",
        "Returns virtual network information",
    ),
    one(
        "one.vn.chown",
        "VirtualNetworkChown",
        "A:siii",
        "Changes ownership of a virtual network",
    ),
    one(
        "one.vn.chmod",
        "VirtualNetworkChmod",
        "A:siiiiiiiiii",
        "Changes permission bits of a virtual network",
    ),
    one(
        "one.vnpool.info",
        "VirtualNetworkPoolInfo",
        "A:siii",
        "Returns the virtual network pool",
    ),
    one(
        "one.user.allocate",
        "UserAllocate",
        "A:ssss",
        "Allocates a new user",
    ),
    one(
        "one.user.update",
        "UserUpdateTemplate",
        "A:sis",
        "Updates a user template",
    ),
    one("one.user.delete", "UserDelete", "A:si", "Deletes a user"),
    one(
        "one.user.info",
        "UserInfo",
        "A:si",
        "Returns user information",
    ),
    one(
        "one.user.passwd",
        "UserChangePassword",
        "A:sis",
        "Changes the password of a user",
    ),
    one(
        "one.user.chgrp",
        "UserChown",
        "A:sii",
        "Changes the group of a user",
    ),
    one(
        "one.user.chauth",
        "UserChangeAuth",
        "A:siss",
        "Changes the authentication driver and the password of a user",
    ),
    one(
        "one.userpool.info",
        "UserPoolInfo",
        "A:s",
        "Returns the user pool",
    ),
    one(
        "one.image.persistent",
        "ImagePersistent",
        "A:sib",
        "Makes an image persistent or non-persistent",
    ),
    one(
        "one.image.enable",
        "ImageEnable",
        "A:sib",
        "Enables or disables an image",
    ),
    one(
        "one.image.update",
        "ImageUpdateTemplate",
        "A:sis",
        "Updates an image template",
    ),
    one(
        "one.image.allocate",
        "ImageAllocate",
        "A:ss",
        "Allocates a new image",
    ),
    one(
        "one.image.delete",
        "ImageDelete",
        "A:si",
        "Deletes an image",
    ),
    one(
        "one.image.info",
        "ImageInfo",
        "A:si",
        "Returns image information",
    ),
    one(
        "one.image.chown",
        "ImageChown",
        "A:siii",
        "Changes ownership of an image",
    ),
    one(
        "one.image.chmod",
        "ImageChmod",
        "A:siiiiiiiiii",
        "Changes permission bits of an image",
    ),
    one(
        "one.image.chtype",
        "ImageChangeType",
        "A:sis",
        "Changes the type of an image",
    ),
    one(
        "one.imagepool.info",
        "ImagePoolInfo",
        "A:siii",
        "Returns the image pool",
    ),
    one(
        "one.acl.addrule",
        "AclAddRule",
        "A:ssss",
        "Adds a new ACL rule",
    ),
    one(
        "one.acl.delrule",
        "AclDelRule",
        "A:si",
        "Deletes an existing ACL rule",
    ),
    one("one.acl.info", "AclInfo", "A:s", "Returns the ACL rule set"),
];

/// The registered method of that exact (case-sensitive) name.
pub fn lookup(name: &str) -> Option<&'static MethodInfo> {
    METHODS.iter().find(|m| m.name == name)
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

    #[test]
    fn every_signature_uses_known_letters() {
        for m in &METHODS {
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

    #[test]
    fn lookup_is_exact() {
        let info = lookup("one.vm.allocate").expect("registered");
        assert_eq!(info.message, Some("VirtualMachineAllocate"));
        assert_eq!(info.signature, "A:ss");
        assert!(lookup("ONE.VM.INFO").is_none());
        assert!(lookup("one.vm.delete").is_none());
    }
}
