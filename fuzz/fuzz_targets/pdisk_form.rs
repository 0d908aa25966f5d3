//! The pdisk service's form bodies (`POST /disks/`, `PUT /disks/<uuid>`, mounts): any body is
//! decoded and read or refused; what it sets (tag, owner, identifier, quarantine) comes back in
//! pdisk's JSON answers as exactly the same strings, so no value can add or change a field the
//! client reads.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stratusd::core::volumes::VolumeForm;
use stratusd::model::volume::{Backing, Visibility, Volume, VolumeState, VolumeType};
use stratusd::pdisk::{json, parse_form};

fuzz_target!(|data: &[u8]| {
    let form = parse_form(data);
    let Ok(parsed) = VolumeForm::parse(&form) else {
        return;
    };
    let volume = Volume {
        uuid: "48ac4190-9a11-4a06-8bef-03fd97080eba".into(),
        owner: parsed.owner.clone().unwrap_or_default(),
        tag: parsed.tag.clone().unwrap_or_default(),
        size: parsed.size.unwrap_or(1),
        kind: parsed.kind.unwrap_or(VolumeType::DataImageRawReadWrite),
        visibility: parsed.visibility.unwrap_or(Visibility::Private),
        identifier: parsed.identifier.clone().unwrap_or_default(),
        quarantine: parsed.quarantine.clone().unwrap_or_default(),
        quarantined_at: None,
        seed: parsed.seed,
        base: None,
        created: 0,
        backing: Backing::File {
            path: "/v/x".into(),
            format: "raw".into(),
        },
        state: VolumeState::Ready,
        mounts: Vec::new(),
        cached: false,
    };
    let text = json::disk(&volume, 3);
    let answer: serde_json::Value = serde_json::from_str(&text).expect("the answer is JSON");
    let fields = answer.as_object().expect("one object");
    assert_eq!(fields["tag"], volume.tag.as_str());
    assert_eq!(fields["owner"], volume.owner.as_str());
    assert_eq!(fields["identifier"], volume.identifier.as_str());
    assert_eq!(fields["count"], "3");
    let expected_keys = if volume.in_quarantine() { 9 } else { 8 };
    assert_eq!(fields.len(), expected_keys, "{text}");
    let listing = json::disks(&[(volume.clone(), 0)]);
    let listed: serde_json::Value = serde_json::from_str(&listing).expect("the listing is JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listing}");
    assert_eq!(listed[0]["tag"], volume.tag.as_str());
});
