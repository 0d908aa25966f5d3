//! chown/chmod of templates and images (the recorded sessions cover VMs and networks): owner,
//! group, names in the document, permission bits, and the authorization rules.

mod common;
use common::*;

fn ok_int(answer: &str) -> bool {
    answer.contains("<boolean>1</boolean>")
}

#[test]
fn template_and_image_chown_chmod() {
    let d = Daemon::start("chown", &[]);
    let mut c = d.client();
    assert!(ok_int(&c.call(
        "one.user.allocate",
        &[s(ADMIN), s("carl"), s("pw"), s("core")]
    )));
    assert!(ok_int(&c.call(
        "one.template.allocate",
        &[s(ADMIN), s("NAME=t1\nCPU=1")]
    )));
    let a = c.call("one.template.chown", &[s(ADMIN), i(0), i(2), i(1)]);
    assert!(ok_int(&a), "{a}");
    let doc = unescape(&c.call("one.template.info", &[s(ADMIN), i(0)]));
    assert_eq!(field(&doc, "UID").as_deref(), Some("2"));
    assert_eq!(field(&doc, "UNAME").as_deref(), Some("carl"));
    assert_eq!(field(&doc, "GNAME").as_deref(), Some("users"));
    // Missing user and group are lookup errors.
    let a = c.call("one.template.chown", &[s(ADMIN), i(0), i(77), i(-1)]);
    assert!(
        a.contains("[TemplateChown] Error getting user [77]."),
        "{a}"
    );
    let a = c.call("one.template.chown", &[s(ADMIN), i(0), i(-1), i(55)]);
    assert!(
        a.contains("[TemplateChown] Error getting group [55]."),
        "{a}"
    );
    // The new owner may now read it; changing the owner needs MANAGE on the new owner too.
    assert!(ok_int(&c.call("one.template.info", &[s("carl:pw"), i(0)])));
    let a = c.call("one.template.chown", &[s("carl:pw"), i(0), i(0), i(-1)]);
    assert!(
        a.contains("[TemplateChown] User [2] : Not authorized to perform MANAGE USER [0]."),
        "{a}"
    );

    // Images: registered from the site's import directory.
    std::fs::create_dir_all("/srv/cloud/images").unwrap();
    if !std::path::Path::new("/srv/cloud/images/ttylinux.img").exists() {
        std::fs::write("/srv/cloud/images/ttylinux.img", vec![0u8; 65536]).unwrap();
    }
    assert!(ok_int(&c.call(
        "one.image.allocate",
        &[s(ADMIN), s("NAME=i1\nPATH=/srv/cloud/images/ttylinux.img")]
    )));
    let a = c.call("one.image.chown", &[s(ADMIN), i(0), i(2), i(-1)]);
    assert!(ok_int(&a), "{a}");
    let a = c.call(
        "one.image.chmod",
        &[
            s("carl:pw"),
            i(0),
            i(-1),
            i(-1),
            i(-1),
            i(1),
            i(-1),
            i(-1),
            i(1),
            i(-1),
            i(-1),
        ],
    );
    assert!(ok_int(&a), "{a}");
    let doc = unescape(&c.call("one.image.info", &[s(ADMIN), i(0)]));
    assert_eq!(field(&doc, "UNAME").as_deref(), Some("carl"));
    assert_eq!(field(&doc, "GROUP_U").as_deref(), Some("1"));
    assert_eq!(field(&doc, "OTHER_U").as_deref(), Some("1"));
    assert_eq!(field(&doc, "OWNER_A").as_deref(), Some("0"));
    // Changing an ADMIN bit needs ADMIN, which the owner does not have by default.
    let a = c.call(
        "one.image.chmod",
        &[
            s("carl:pw"),
            i(0),
            i(-1),
            i(-1),
            i(1),
            i(-1),
            i(-1),
            i(-1),
            i(-1),
            i(-1),
            i(-1),
        ],
    );
    assert!(
        a.contains("[ImageChmod] User [2] : Not authorized to perform ADMIN IMAGE [0]."),
        "{a}"
    );
    let a = c.call(
        "one.image.chmod",
        &[
            s(ADMIN),
            i(42),
            i(-1),
            i(-1),
            i(1),
            i(-1),
            i(-1),
            i(-1),
            i(-1),
            i(-1),
            i(-1),
        ],
    );
    assert!(a.contains("[ImageChmod] Error getting image [42]."), "{a}");
}
