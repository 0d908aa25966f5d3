//! The 3.2 template language: any text parses or gets a parse error; a parsed template renders
//! as XML, and its template text (when the language can express it) parses back to it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stratusd::template::Template;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = Template::parse(text) else {
        return;
    };
    let _ = template.to_xml();
    let _ = template.to_str();
    if let Some(again) = template.to_template_text() {
        let reparsed = Template::parse(&again).expect("template text parses");
        assert_eq!(reparsed, template, "text: {again:?}");
    }
});
