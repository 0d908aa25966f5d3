//! The StratusLab Marketplace as the transfer manager uses it: `GET <mp>/metadata/<id>`
//! (an RDF manifest, possibly several endorsements under one root), the image download, and the
//! upload of a saved image's manifest (`POST <mp>/metadata`). Manifest fields follow the
//! client's `ManifestInfo`; the served format is the one of the recorded test Marketplace.

use super::StorageError;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use std::io::Read;
use std::time::Duration;

pub const NS_RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
pub const NS_DCTERMS: &str = "http://purl.org/dc/terms/";
pub const NS_SLREQ: &str = "http://mp.stratuslab.eu/slreq#";
pub const NS_SLTERMS: &str = "http://mp.stratuslab.eu/slterms#";

/// Largest manifest accepted (real ones are about 2 KB).
const MANIFEST_LIMIT: u64 = 1024 * 1024;

/// One endorsement of an image: the fields of one `rdf:RDF` element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestEntry {
    pub identifier: String,
    pub bytes: String,
    pub sha1: String,
    pub endorser_email: String,
    pub endorser_subject: String,
    pub endorser_issuer: String,
    pub created: String,
    pub valid: String,
    pub kind_type: String,
    pub title: String,
    pub description: String,
    pub compression: String,
    pub format: String,
    pub creator: String,
    pub publisher: String,
    pub alternative: String,
    pub os: String,
    pub os_version: String,
    pub os_arch: String,
    pub version: String,
    pub kind: String,
    pub hypervisor: String,
    pub disks_bus: String,
    pub locations: Vec<String>,
    pub inbound_ports: Vec<String>,
}

impl ManifestEntry {
    /// The uncompressed image size in bytes.
    pub fn size(&self) -> Option<u64> {
        self.bytes.trim().parse().ok()
    }

    /// The disk format the image is in (`raw` unless the manifest says otherwise).
    pub fn disk_format(&self) -> String {
        let f = self.format.trim().to_ascii_lowercase();
        if f.is_empty() {
            "raw".into()
        } else {
            f
        }
    }

    /// `ManifestInfo`'s checks of the elements the hooks need.
    pub fn validate(&self, requested_id: &str) -> Result<(), StorageError> {
        if self.identifier != requested_id {
            return Err(StorageError::IdMismatch {
                given: requested_id.to_string(),
                found: self.identifier.clone(),
            });
        }
        let required: [(&str, &str, &str); 10] = [
            ("bytes", NS_SLREQ, &self.bytes),
            ("type", NS_DCTERMS, &self.kind_type),
            ("created", NS_DCTERMS, &self.created),
            ("valid", NS_DCTERMS, &self.valid),
            ("description", NS_DCTERMS, &self.description),
            ("compression", NS_DCTERMS, &self.compression),
            ("os", NS_SLTERMS, &self.os),
            ("os-arch", NS_SLTERMS, &self.os_arch),
            ("os-version", NS_SLTERMS, &self.os_version),
            ("version", NS_SLTERMS, &self.version),
        ];
        for (name, ns, value) in required {
            if value.is_empty() {
                return Err(StorageError::ManifestMissing {
                    element: name.to_string(),
                    namespace: ns.to_string(),
                });
            }
        }
        if self.locations.is_empty() {
            return Err(StorageError::NoLocation {
                id: requested_id.to_string(),
            });
        }
        Ok(())
    }
}

/// Every endorsement a Marketplace returned for one id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub entries: Vec<ManifestEntry>,
}

fn ns_of<'a>(r: &'a ResolveResult<'a>) -> &'a [u8] {
    match r {
        ResolveResult::Bound(ns) => ns.as_ref(),
        _ => b"",
    }
}

/// Parses a manifest document; elements are found anywhere below each `rdf:RDF` (or the root
/// when there is none), as the client's `.//` lookups did.
pub fn parse_manifest(xml: &str) -> Result<Manifest, String> {
    let mut reader = quick_xml::NsReader::from_str(xml);
    // (namespace, local name) of the open elements.
    let mut stack: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut entries: Vec<ManifestEntry> = Vec::new();
    let mut current: Option<(usize, ManifestEntry)> = None;
    let mut loose = ManifestEntry::default();
    let mut checksum = (String::new(), String::new());
    loop {
        let position = reader.buffer_position();
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("{e} after position {position}"))?;
        match event {
            Event::Start(e) => {
                let name = (ns_of(&ns).to_vec(), e.local_name().as_ref().to_vec());
                if name.0 == NS_RDF.as_bytes() && name.1 == b"RDF" {
                    current = Some((stack.len(), ManifestEntry::default()));
                }
                if name.0 == NS_SLREQ.as_bytes() && name.1 == b"checksum" {
                    checksum = (String::new(), String::new());
                }
                stack.push(name);
            }
            Event::End(_) => {
                let Some((ns, local)) = stack.pop() else {
                    return Err("unbalanced document".into());
                };
                if ns == NS_SLREQ.as_bytes() && local == b"checksum" {
                    let algorithm = checksum.0.to_ascii_lowercase().replace('-', "");
                    let entry = match &mut current {
                        Some((_, e)) => e,
                        None => &mut loose,
                    };
                    if algorithm == "sha1" && entry.sha1.is_empty() {
                        entry.sha1 = checksum.1.trim().to_ascii_lowercase();
                    }
                }
                if let Some((depth, _)) = &current {
                    if *depth == stack.len() {
                        if let Some((_, entry)) = current.take() {
                            entries.push(entry);
                        }
                    }
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| e.to_string())?.trim().to_string();
                if text.is_empty() {
                    continue;
                }
                let Some((ns, local)) = stack.last() else {
                    continue;
                };
                let parent = stack.len().checked_sub(2).and_then(|i| stack.get(i));
                let in_endorser = parent.is_some_and(|(pns, pl)| {
                    pns == NS_SLREQ.as_bytes() && pl.as_slice() == b"endorser"
                });
                let entry = match &mut current {
                    Some((_, e)) => e,
                    None => &mut loose,
                };
                set_field(entry, &mut checksum, ns, local, in_endorser, text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if entries.is_empty() {
        entries.push(loose);
    }
    Ok(Manifest { entries })
}

fn set_field(
    entry: &mut ManifestEntry,
    checksum: &mut (String, String),
    ns: &[u8],
    local: &[u8],
    in_endorser: bool,
    text: String,
) {
    let first = |slot: &mut String, text: String| {
        if slot.is_empty() {
            *slot = text;
        }
    };
    if ns == NS_DCTERMS.as_bytes() {
        match local {
            b"identifier" => first(&mut entry.identifier, text),
            b"created" => first(&mut entry.created, text),
            b"valid" => first(&mut entry.valid, text),
            b"type" => first(&mut entry.kind_type, text),
            b"title" => first(&mut entry.title, text),
            b"description" => first(&mut entry.description, text),
            b"compression" => first(&mut entry.compression, text),
            b"format" => first(&mut entry.format, text),
            b"creator" => first(&mut entry.creator, text),
            b"publisher" => first(&mut entry.publisher, text),
            b"alternative" => first(&mut entry.alternative, text),
            _ => {}
        }
    } else if ns == NS_SLREQ.as_bytes() {
        match local {
            b"bytes" => first(&mut entry.bytes, text),
            b"algorithm" => checksum.0 = text,
            b"value" => checksum.1 = text,
            b"email" if in_endorser => first(&mut entry.endorser_email, text),
            b"subject" if in_endorser => first(&mut entry.endorser_subject, text),
            b"issuer" if in_endorser => first(&mut entry.endorser_issuer, text),
            _ => {}
        }
    } else if ns == NS_SLTERMS.as_bytes() {
        match local {
            b"location" => entry.locations.push(text),
            b"inbound-port" => entry.inbound_ports.push(text),
            b"os" => first(&mut entry.os, text),
            b"os-version" => first(&mut entry.os_version, text),
            b"os-arch" => first(&mut entry.os_arch, text),
            b"version" => first(&mut entry.version, text),
            b"kind" => first(&mut entry.kind, text),
            b"hypervisor" => first(&mut entry.hypervisor, text),
            b"disks-bus" => first(&mut entry.disks_bus, text),
            _ => {}
        }
    }
}

/// Escapes text and attribute values alike, quotes included: the identifier also goes into
/// `rdf:about="#…"`, and a `"` in it (a Marketplace's, or a fuzzer's) wrote a manifest that did
/// not read again. quick-xml (already the reader) does it.
fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// Writes an entry as a Marketplace manifest document (the layout Marketplaces serve).
pub fn write_manifest(e: &ManifestEntry) -> String {
    let mut x =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n<metadata>\n");
    x.push_str(&format!(
        "<rdf:RDF xmlns:rdf=\"{NS_RDF}\"\n xmlns:dcterms=\"{NS_DCTERMS}\" xmlns:slreq=\"{NS_SLREQ}\"\n xmlns:slterms=\"{NS_SLTERMS}\" xml:base=\"http://mp.stratuslab.eu/\">\n"
    ));
    x.push_str(&format!(
        " <rdf:Description rdf:about=\"#{}\">\n",
        esc(&e.identifier)
    ));
    let dc = |x: &mut String, name: &str, v: &str| {
        if !v.is_empty() {
            x.push_str(&format!("  <dcterms:{name}>{}</dcterms:{name}>\n", esc(v)));
        }
    };
    let sl = |x: &mut String, name: &str, v: &str| {
        if !v.is_empty() {
            x.push_str(&format!("  <slterms:{name}>{}</slterms:{name}>\n", esc(v)));
        }
    };
    dc(&mut x, "identifier", &e.identifier);
    x.push_str(&format!("  <slreq:bytes>{}</slreq:bytes>\n", esc(&e.bytes)));
    x.push_str(&format!(
        "  <slreq:checksum rdf:parseType=\"Resource\"><slreq:algorithm>SHA-1</slreq:algorithm>\n   <slreq:value>{}</slreq:value></slreq:checksum>\n",
        esc(&e.sha1)
    ));
    x.push_str(&format!(
        "  <slreq:endorsement rdf:parseType=\"Resource\"><dcterms:created>{}</dcterms:created>\n   <slreq:endorser rdf:parseType=\"Resource\"><slreq:email>{}</slreq:email>\n   <slreq:subject>{}</slreq:subject><slreq:issuer>{}</slreq:issuer></slreq:endorser>\n  </slreq:endorsement>\n",
        esc(&e.created),
        esc(&e.endorser_email),
        esc(&e.endorser_subject),
        esc(&e.endorser_issuer)
    ));
    dc(&mut x, "type", &e.kind_type);
    dc(&mut x, "valid", &e.valid);
    dc(&mut x, "title", &e.title);
    dc(&mut x, "description", &e.description);
    dc(&mut x, "compression", &e.compression);
    dc(&mut x, "format", &e.format);
    dc(&mut x, "creator", &e.creator);
    dc(&mut x, "publisher", &e.publisher);
    dc(&mut x, "alternative", &e.alternative);
    for l in &e.locations {
        sl(&mut x, "location", l);
    }
    sl(&mut x, "version", &e.version);
    sl(&mut x, "hypervisor", &e.hypervisor);
    sl(&mut x, "kind", &e.kind);
    sl(&mut x, "disks-bus", &e.disks_bus);
    for p in &e.inbound_ports {
        sl(&mut x, "inbound-port", p);
    }
    sl(&mut x, "os", &e.os);
    sl(&mut x, "os-version", &e.os_version);
    sl(&mut x, "os-arch", &e.os_arch);
    x.push_str(" </rdf:Description>\n</rdf:RDF>\n</metadata>\n");
    x
}

/// `<endpoint>/metadata/<id>` with exactly one `/` between the parts.
pub fn metadata_url(endpoint: &str, id: &str) -> String {
    format!("{}/metadata/{id}", endpoint.trim_end_matches('/'))
}

/// HTTP(S) access to Marketplaces, from blocking driver threads.
pub struct MarketplaceClient {
    agent: ureq::Agent,
}

fn is_http(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

impl MarketplaceClient {
    pub fn new(timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            // A stalled transfer fails; a long one does not.
            .timeout_per_read(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("stratusd/", env!("CARGO_PKG_VERSION")))
            .build();
        MarketplaceClient {
            agent: config.into(),
        }
    }

    /// `GET <endpoint>/metadata/<id>` → the parsed manifest and its text.
    pub fn fetch_manifest(
        &self,
        endpoint: &str,
        id: &str,
    ) -> Result<(Manifest, String), StorageError> {
        let url = metadata_url(endpoint, id);
        if !is_http(&url) {
            return Err(StorageError::ManifestNotFound { url });
        }
        let mut resp = self
            .agent
            .get(&url)
            .header("Accept", "application/xml")
            .call()
            .map_err(|e| StorageError::MarketplaceUnreachable {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        if resp.status().as_u16() != 200 {
            return Err(StorageError::ManifestNotFound { url });
        }
        let text = resp
            .body_mut()
            .with_config()
            .limit(MANIFEST_LIMIT)
            .read_to_string()
            .map_err(|e| StorageError::MarketplaceUnreachable {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let manifest = parse_manifest(&text).map_err(|detail| StorageError::ManifestParse {
            url: url.clone(),
            detail,
        })?;
        Ok((manifest, text))
    }

    /// Opens an image location for streaming; only `http`/`https` locations are followed (a
    /// `file:` location would read the front-end's own files).
    pub fn open_image(&self, url: &str) -> Result<Box<dyn Read + Send>, String> {
        if !is_http(url) {
            return Err(format!("unsupported image location {url}"));
        }
        let resp = self
            .agent
            .get(url)
            .header("Accept", "application/x-gzip")
            .call()
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(format!("HTTP status {status}"));
        }
        Ok(Box::new(resp.into_body().into_reader()))
    }

    /// `POST <endpoint>/metadata` with a manifest; returns the HTTP status.
    pub fn upload_manifest(&self, endpoint: &str, xml: &str) -> Result<u16, String> {
        let url = format!("{}/metadata", endpoint.trim_end_matches('/'));
        if !is_http(&url) {
            return Err(format!("unsupported Marketplace {endpoint}"));
        }
        let resp = self
            .agent
            .post(&url)
            .header("Content-Type", "application/xml")
            .send(xml.as_bytes())
            .map_err(|e| e.to_string())?;
        Ok(resp.status().as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The manifest the recorded test Marketplace served (stratuslab-client.md §8).
    pub const RECORDED: &str = r##"<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<metadata>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns:dcterms="http://purl.org/dc/terms/" xmlns:slreq="http://mp.stratuslab.eu/slreq#"
 xmlns:slterms="http://mp.stratuslab.eu/slterms#" xml:base="http://mp.stratuslab.eu/">
 <rdf:Description rdf:about="#BN1EEkPiBx87_uLj2-sdybSI-Xb">
  <dcterms:identifier>BN1EEkPiBx87_uLj2-sdybSI-Xb</dcterms:identifier>
  <slreq:bytes>104857600</slreq:bytes>
  <slreq:checksum rdf:parseType="Resource"><slreq:algorithm>SHA-1</slreq:algorithm>
   <slreq:value>c319bbd5afc0a22ba3eaed0507c39383ec28eeff</slreq:value></slreq:checksum>
  <slreq:endorsement rdf:parseType="Resource"><dcterms:created>2013-01-24T09:59:42Z</dcterms:created>
   <slreq:endorser rdf:parseType="Resource"><slreq:email>images@stratuslab.eu</slreq:email>
   <slreq:subject>CN=Jane Tester</slreq:subject><slreq:issuer>CN=Jane Tester</slreq:issuer></slreq:endorser>
  </slreq:endorsement>
  <dcterms:type>machine</dcterms:type><dcterms:valid>2030-07-23T10:59:42Z</dcterms:valid>
  <dcterms:title>ttylinux</dcterms:title><dcterms:description>test image</dcterms:description>
  <dcterms:compression>gz</dcterms:compression><dcterms:format>raw</dcterms:format>
  <slterms:location>http://127.0.0.1:26340/images/ttylinux.img.gz</slterms:location>
  <slterms:version>1.0</slterms:version><slterms:hypervisor>kvm</slterms:hypervisor>
  <slterms:disks-bus>virtio</slterms:disks-bus>
  <slterms:inbound-port>22</slterms:inbound-port><slterms:inbound-port>443</slterms:inbound-port>
  <slterms:os>ttylinux</slterms:os><slterms:os-version>9.7</slterms:os-version><slterms:os-arch>i486</slterms:os-arch>
 </rdf:Description>
</rdf:RDF>
</metadata>
"##;

    #[test]
    fn parses_the_recorded_manifest() {
        let m = parse_manifest(RECORDED).unwrap();
        assert_eq!(m.entries.len(), 1);
        let e = &m.entries[0];
        assert_eq!(e.identifier, "BN1EEkPiBx87_uLj2-sdybSI-Xb");
        assert_eq!(e.size(), Some(104_857_600));
        assert_eq!(e.sha1, "c319bbd5afc0a22ba3eaed0507c39383ec28eeff");
        assert_eq!(e.endorser_email, "images@stratuslab.eu");
        assert_eq!(e.created, "2013-01-24T09:59:42Z");
        assert_eq!(
            e.locations,
            vec!["http://127.0.0.1:26340/images/ttylinux.img.gz"]
        );
        assert_eq!(e.inbound_ports, vec!["22", "443"]);
        assert_eq!(e.disk_format(), "raw");
        assert_eq!(e.os_arch, "i486");
        e.validate("BN1EEkPiBx87_uLj2-sdybSI-Xb").unwrap();
        assert!(matches!(
            e.validate("MMZu9WvwKIro-rtBQfDk4PsKO7_"),
            Err(StorageError::IdMismatch { .. })
        ));
    }

    #[test]
    fn written_manifests_parse_back() {
        let e = parse_manifest(RECORDED).unwrap().entries.remove(0);
        let again = parse_manifest(&write_manifest(&e))
            .unwrap()
            .entries
            .remove(0);
        assert_eq!(e, again);
    }

    /// The fuzz target's crash of 2026-12-07 (fuzz/artifacts, not kept): an identifier holding
    /// quotes and markup went into `rdf:about` unescaped.
    #[test]
    fn identifiers_with_quotes_and_markup_are_written_escaped() {
        let mut e = parse_manifest(RECORDED).unwrap().entries.remove(0);
        e.identifier = "BN1\" xmlns:x=\"y\" a='b'>\n<dcterms:title>&amp;".to_string();
        e.title = "it's \"quoted\" <b>".to_string();
        let written = write_manifest(&e);
        assert!(!written.contains("xmlns:x=\"y\""), "{written}");
        let again = parse_manifest(&written).unwrap().entries.remove(0);
        assert_eq!(e, again);
    }

    #[test]
    fn several_endorsements() {
        let body = RECORDED
            .split("<rdf:RDF")
            .nth(1)
            .and_then(|s| s.split("</rdf:RDF>").next())
            .unwrap();
        let second = body.replace("images@stratuslab.eu", "other@example.org");
        let doc =
            format!("<metadata><rdf:RDF{body}</rdf:RDF><rdf:RDF{second}</rdf:RDF></metadata>");
        let m = parse_manifest(&doc).unwrap();
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[1].endorser_email, "other@example.org");
    }

    #[test]
    fn missing_elements_are_named() {
        let doc = RECORDED.replace("<slterms:os-arch>i486</slterms:os-arch>", "");
        let e = parse_manifest(&doc).unwrap().entries.remove(0);
        let err = e.validate(&e.identifier).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Missing element 'os-arch' in namespace 'http://mp.stratuslab.eu/slterms#'"
        );
        let doc = RECORDED.replace(
            "<slterms:location>http://127.0.0.1:26340/images/ttylinux.img.gz</slterms:location>",
            "",
        );
        let e = parse_manifest(&doc).unwrap().entries.remove(0);
        assert_eq!(
            e.validate(&e.identifier).unwrap_err().to_string(),
            "Image location(s) are not set in manifest for the image with ID BN1EEkPiBx87_uLj2-sdybSI-Xb"
        );
    }
}
