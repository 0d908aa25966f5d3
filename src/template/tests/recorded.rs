//! The recorded oned 3.2 sessions: every template oned accepted parses, every one it refused
//! fails with its message, and the `<TEMPLATE>` documents oned returned are reproduced once the
//! daemon's own additions and removals (listed per case) are applied.

use super::recorded_data::*;
use super::{parsed, refused};
use crate::template::{vector_set, Template};

#[test]
fn every_template_oned_did_not_refuse_parses() {
    for (source, text) in ACCEPTED {
        if let Err(error) = Template::parse(text) {
            panic!("{source}: {error}");
        }
    }
}

#[test]
fn every_template_oned_refused_fails_with_the_recorded_message() {
    for (source, text, message) in REJECTED {
        assert_eq!(refused(text), *message, "{source}");
    }
}

/// Parses the request's template, lets `adjust` do what oned did to it, and compares the XML.
fn check_document(case: (&str, &str), adjust: impl FnOnce(&mut Template)) {
    let (request, document) = case;
    let mut template = parsed(request);
    adjust(&mut template);
    assert_eq!(template.to_xml(), document);
}

#[test]
fn template_allocate_document() {
    check_document(TEMPLATE_ALLOCATE, |t| t.set_single("TEMPLATE_ID", "0"));
}

#[test]
fn template_update_document() {
    check_document(TEMPLATE_UPDATE, |_| {});
}

#[test]
fn vn_update_document() {
    check_document(VN_UPDATE, |_| {});
}

#[test]
fn host_update_document() {
    check_document(HOST_UPDATE, |_| {});
}

#[test]
fn user_update_document() {
    check_document(USER_UPDATE, |_| {});
}

#[test]
fn image_update_document() {
    check_document(IMAGE_UPDATE, |_| {});
}

/// What `one.vn.allocate` consumes from the template.
fn remove_network_attributes(template: &mut Template) {
    for name in [
        "NAME",
        "TYPE",
        "BRIDGE",
        "NETWORK_ADDRESS",
        "NETWORK_SIZE",
        "LEASES",
    ] {
        template.remove(name);
    }
}

#[test]
fn vn_allocate_documents() {
    check_document(VN_ALLOCATE_RANGED, |t| {
        remove_network_attributes(t);
        t.set_single("NETWORK_MASK", "255.255.255.0");
    });
    check_document(VN_ALLOCATE_RANGED_SMALL, |t| {
        remove_network_attributes(t);
        t.set_single("NETWORK_MASK", "255.255.255.240");
    });
    check_document(VN_ALLOCATE_FIXED, remove_network_attributes);
}

#[test]
fn image_allocate_document() {
    check_document(IMAGE_ALLOCATE, |t| {
        for name in ["NAME", "PATH", "TYPE"] {
            t.remove(name);
        }
        t.set_single("DEV_PREFIX", "hd");
    });
}

#[test]
fn vm_documents_of_the_malformed_template_session() {
    check_document(VM_EMPTY, |t| {
        t.set_single("NAME", "one-0");
        t.set_single("VMID", "0");
    });
    check_document(VM_UNCLOSED_QUOTE, |t| t.set_single("VMID", "1"));
}

#[test]
fn vm_document_of_a_stratuslab_client_template() {
    check_document(VM_STRATUSLAB_V14, |t| {
        for (disk_id, disk) in t.vectors_mut("DISK").enumerate() {
            vector_set(disk, "DISK_ID", disk_id.to_string());
        }
        if let Some(nic) = t.get_vector_mut("NIC") {
            for (key, value) in [
                ("BRIDGE", "br0"),
                ("IP", "192.168.1.1"),
                ("MAC", "00:16:3e:d9:78:b1"),
                ("NETWORK_ID", "0"),
                ("VLAN", "NO"),
            ] {
                vector_set(nic, key, value);
            }
        }
        t.set_single("NAME", "one-0");
        t.set_single("VMID", "0");
    });
}

#[test]
fn stratuslab_values_keep_their_case_newlines_and_empty_quotes() {
    let (request, _) = VM_STRATUSLAB_V14;
    let template = parsed(request);
    let context = template.get_vector("CONTEXT").unwrap_or_default();
    let key = crate::template::vector_get(context, "PUBLIC_KEY").unwrap_or_default();
    assert!(key.ends_with("tester@stratuslab-client\n"), "{key:?}");
    let (tmpl, _) = TEMPLATE_ALLOCATE;
    let context = parsed(tmpl);
    let files = context
        .get_vector("CONTEXT")
        .and_then(|c| crate::template::vector_get(c, "FILES"));
    assert_eq!(files, Some("\"\""));
}
