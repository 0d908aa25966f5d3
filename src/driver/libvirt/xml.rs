//! Small XML helpers: escaping for the documents this module writes, and a scanner for the few
//! values it reads back from documents libvirt itself produced (a domain's live description, the
//! description inside a saved image). libvirt's output is regular (elements on their own lines,
//! attributes in single quotes, entities escaped), so a scanner is enough and keeps the module free
//! of an XML dependency; it must never be pointed at template data.

/// Escapes a value for use inside a single- or double-quoted attribute. Tab, newline and carriage
/// return become character references because an XML parser would otherwise normalise them to
/// spaces (a path with a newline must reach libvirt unchanged, or be refused by it).
pub(crate) fn escape_attr(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '\'' => escaped.push_str("&apos;"),
            '"' => escaped.push_str("&quot;"),
            '\t' => escaped.push_str("&#9;"),
            '\n' => escaped.push_str("&#10;"),
            '\r' => escaped.push_str("&#13;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Escapes a value for use as element text.
pub(crate) fn escape_text(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '\r' => escaped.push_str("&#13;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Resolves the five predefined entities and numeric character references. Anything it does not
/// recognise is kept as written.
pub(crate) fn unescape(value: &str) -> String {
    let mut plain = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        plain.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let Some(semicolon) = after.find(';') else {
            plain.push_str(after);
            return plain;
        };
        let entity = &after[1..semicolon];
        let resolved = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            "quot" => Some('"'),
            _ => entity
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match resolved {
            Some(character) => {
                plain.push(character);
                rest = &after[semicolon + 1..];
            }
            None => {
                plain.push('&');
                rest = &after[1..];
            }
        }
    }
    plain.push_str(rest);
    plain
}

/// Text of the first `<element>…</element>` (written without attributes, as libvirt writes
/// `<name>`), unescaped.
pub(crate) fn first_element_text(xml: &str, element: &str) -> Option<String> {
    let open = format!("<{element}>");
    let close = format!("</{element}>");
    let start = xml.find(&open)? + open.len();
    let length = xml[start..].find(&close)?;
    Some(unescape(xml[start..start + length].trim()))
}

/// Value of attribute `name` in the first tag of `fragment` that starts with `tag_start`
/// (for example `<target `).
fn attribute_of_tag(fragment: &str, tag_start: &str, name: &str) -> Option<String> {
    let tag_begin = fragment.find(tag_start)?;
    let tag = &fragment[tag_begin..];
    let tag = &tag[..tag.find('>')?];
    let needle = format!(" {name}=");
    let value_start = tag.find(&needle)? + needle.len();
    let quote = tag[value_start..].chars().next()?;
    if quote != '\'' && quote != '"' {
        return None;
    }
    let value = &tag[value_start + 1..];
    let value_end = value.find(quote)?;
    Some(unescape(&value[..value_end]))
}

/// One key per `<interface>` of a live domain description for `virDomainInterfaceStats`: the
/// host-side device name (`<target dev=…>`) when libvirt assigned one, else the MAC address, which
/// the call also accepts.
pub(crate) fn interface_stat_keys(domain_xml: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut rest = domain_xml;
    while let Some(start) = rest.find("<interface ") {
        let block_and_after = &rest[start..];
        let block_end = block_and_after
            .find("</interface>")
            .unwrap_or(block_and_after.len());
        let block = &block_and_after[..block_end];
        if let Some(key) = attribute_of_tag(block, "<target ", "dev")
            .or_else(|| attribute_of_tag(block, "<mac ", "address"))
        {
            keys.push(key);
        }
        rest = &block_and_after[block_end..];
    }
    keys
}

/// `(target dev, source file or dev)` of every `<disk>` of a live domain description.
pub fn disk_targets(domain_xml: &str) -> Vec<(String, Option<String>)> {
    let mut disks = Vec::new();
    let mut rest = domain_xml;
    while let Some(start) = rest.find("<disk ") {
        let block_and_after = &rest[start..];
        let block_end = block_and_after
            .find("</disk>")
            .unwrap_or(block_and_after.len());
        let block = &block_and_after[..block_end];
        if let Some(target) = attribute_of_tag(block, "<target ", "dev") {
            let source = attribute_of_tag(block, "<source ", "file")
                .or_else(|| attribute_of_tag(block, "<source ", "dev"));
            disks.push((target, source));
        }
        rest = &block_and_after[block_end..];
    }
    disks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_escaping_covers_quotes_markup_and_whitespace() {
        assert_eq!(
            escape_attr("a&b<c>d'e\"f\tg\nh\ri"),
            "a&amp;b&lt;c&gt;d&apos;e&quot;f&#9;g&#10;h&#13;i"
        );
    }

    #[test]
    fn text_escaping_covers_markup() {
        assert_eq!(
            escape_text("root=/dev/sda <x> & y"),
            "root=/dev/sda &lt;x&gt; &amp; y"
        );
    }

    #[test]
    fn unescape_reverses_escape_attr() {
        let hostile = "'/><evil/>&\"\t\n\r&unknown; & tail";
        assert_eq!(unescape(&escape_attr(hostile)), hostile);
        assert_eq!(unescape("&#x41;&#66;&bogus;"), "AB&bogus;");
        assert_eq!(unescape("dangling &amp"), "dangling &amp");
    }

    #[test]
    fn first_element_text_reads_and_unescapes() {
        let xml = "<domain type='test'>\n  <name>one-&lt;7&gt;</name>\n  <name>later</name>\n";
        assert_eq!(first_element_text(xml, "name").as_deref(), Some("one-<7>"));
        assert_eq!(first_element_text(xml, "uuid"), None);
    }

    #[test]
    fn disk_targets_with_their_sources() {
        let xml = "<devices>\n\
            <disk type='file' device='disk'>\n  <driver name='qemu' type='raw'/>\n  <source file='/d/7/images/disk.0' index='2'/>\n  <target dev='vda' bus='virtio'/>\n</disk>\n\
            <disk type='block' device='disk'>\n  <source dev='/d/7/images/x&amp;y'/>\n  <target dev='vdz' bus='virtio'/>\n</disk>\n\
            <disk type='file' device='cdrom'>\n  <target dev='hdd' bus='ide'/>\n</disk>\n\
            </devices>";
        assert_eq!(
            disk_targets(xml),
            vec![
                ("vda".to_string(), Some("/d/7/images/disk.0".to_string())),
                ("vdz".to_string(), Some("/d/7/images/x&y".to_string())),
                ("hdd".to_string(), None),
            ]
        );
    }

    #[test]
    fn interface_keys_prefer_target_then_mac() {
        let xml = "<devices>\n\
            <interface type='bridge'>\n  <mac address='02:00:00:00:00:01'/>\n  <source bridge='br0'/>\n  <target dev='vnet0'/>\n</interface>\n\
            <interface type='ethernet'>\n  <mac address='02:00:00:00:00:02'/>\n</interface>\n\
            <interface type='bridge'>\n  <source bridge='br1'/>\n</interface>\n\
            </devices>";
        assert_eq!(
            interface_stat_keys(xml),
            vec!["vnet0".to_string(), "02:00:00:00:00:02".to_string()]
        );
    }
}
