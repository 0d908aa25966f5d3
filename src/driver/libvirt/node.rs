//! Simulated hosts: node descriptions for libvirt's in-process test driver.
//!
//! `test:///ABSOLUTE/PATH/node.xml` starts a test-driver host from the file: its CPUs, clock and
//! memory, and no domains. Each *connection* opened on such a URI parses the file again and gets a
//! host of its own, so one [`super::LibvirtHost`] per simulated host is exactly one host (two
//! `open`s of the same file are two unrelated hosts, unlike `test:///default`, whose state every
//! connection of the process shares).

use std::io;
use std::path::{Path, PathBuf};

use super::xml::escape_text;

/// Clock rate every simulated host declares.
pub const TEST_NODE_MHZ: u32 = 2400;
/// CPU model every simulated host declares; libvirt reports the machine architecture here for
/// real Linux hosts.
pub const TEST_NODE_CPU_MODEL: &str = "x86_64";

/// A test-driver node description with `cpus` CPUs (one NUMA node, one socket, one thread per
/// core), `memory_kib` KiB of memory and no domains. `name` is only recorded in a comment, to tell
/// the files of several hosts apart; characters that could end the comment are replaced.
pub fn test_node_xml(name: &str, cpus: u32, memory_kib: u64) -> String {
    test_node_xml_with_domains(name, cpus, memory_kib, &[])
}

/// [`test_node_xml`] with domains: the test driver starts each domain description file of
/// `domain_files` (running) when a connection opens the node. Simulated hosts keep their
/// domains this way across connections and daemon restarts, as a real hypervisor would.
pub fn test_node_xml_with_domains(
    name: &str,
    cpus: u32,
    memory_kib: u64,
    domain_files: &[PathBuf],
) -> String {
    let comment_safe_name: String = name
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || "._:@".contains(character) {
                character
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "<node>\n\
         \t<!-- simulated host {comment_safe_name} -->\n\
         \t<cpu>\n\
         \t\t<nodes>1</nodes>\n\
         \t\t<sockets>1</sockets>\n\
         \t\t<cores>{cpus}</cores>\n\
         \t\t<threads>1</threads>\n\
         \t\t<active>{cpus}</active>\n\
         \t\t<mhz>{TEST_NODE_MHZ}</mhz>\n\
         \t\t<model>{model}</model>\n\
         \t</cpu>\n\
         \t<memory>{memory_kib}</memory>\n\
         {domains}\
         </node>\n",
        model = escape_text(TEST_NODE_CPU_MODEL),
        domains = domain_files
            .iter()
            .map(|f| format!(
                "\t<domain file=\"{}\"/>\n",
                escape_text(&f.to_string_lossy()).replace('"', "&quot;")
            ))
            .collect::<String>(),
    )
}

/// Writes `<dir>/<name>.xml` with [`test_node_xml`] and returns the `test:///…` URI that opens
/// it. `dir` must be absolute (the URI carries an absolute path) and `name` a plain file name.
pub fn write_test_node(
    dir: &Path,
    name: &str,
    cpus: u32,
    memory_kib: u64,
) -> io::Result<(PathBuf, String)> {
    write_test_node_with_domains(dir, name, cpus, memory_kib, &[])
}

/// [`write_test_node`] with the domain description files the host starts with (see
/// [`test_node_xml_with_domains`]); the paths must be absolute.
pub fn write_test_node_with_domains(
    dir: &Path,
    name: &str,
    cpus: u32,
    memory_kib: u64,
    domain_files: &[PathBuf],
) -> io::Result<(PathBuf, String)> {
    if !dir.is_absolute() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("test node directory {} is not absolute", dir.display()),
        ));
    }
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("test node name {name:?} is not a plain file name"),
        ));
    }
    let path = dir.join(format!("{name}.xml"));
    let xml = test_node_xml_with_domains(name, cpus, memory_kib, domain_files);
    // Other threads may be opening the same node file: replace it atomically, and only when
    // its content changes.
    if std::fs::read_to_string(&path).ok().as_deref() != Some(xml.as_str()) {
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.xml.{}.{n:08x}.tmp", std::process::id()));
        std::fs::write(&tmp, &xml)?;
        std::fs::rename(&tmp, &path)?;
    }
    let uri = format!("test://{}", path.display());
    Ok((path, uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_xml_declares_cpus_memory_and_no_domains() {
        let xml = test_node_xml("node01.example.org", 8, 16_433_004);
        assert!(xml.contains("<active>8</active>"));
        assert!(xml.contains("<cores>8</cores>"));
        assert!(xml.contains("<memory>16433004</memory>"));
        assert!(xml.contains("<!-- simulated host node01.example.org -->"));
        assert!(!xml.contains("<domain"));
    }

    #[test]
    fn hostile_name_cannot_leave_the_comment() {
        let xml = test_node_xml("a-->b<domain/>", 1, 1024);
        assert!(xml.contains("<!-- simulated host a___b_domain__ -->"));
        assert_eq!(xml.matches("-->").count(), 1);
    }

    #[test]
    fn write_test_node_refuses_relative_dirs_and_path_names() {
        assert!(write_test_node(Path::new("relative"), "h", 1, 1024).is_err());
        assert!(write_test_node(Path::new("/tmp"), "../h", 1, 1024).is_err());
    }

    #[test]
    fn domains_listed_in_the_node_file_run_when_the_host_opens() {
        let dir =
            std::env::temp_dir().join(format!("stratusd-node-domains-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let domain = dir.join("one-5.xml");
        std::fs::write(
            &domain,
            "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\
             <name>one-5</name><memory>131072</memory><vcpu>1</vcpu>\
             <os><type>hvm</type></os><test:transient/></domain>",
        )
        .unwrap();
        let (_, uri) =
            write_test_node_with_domains(&dir, "h", 2, 1024 * 1024, std::slice::from_ref(&domain))
                .unwrap();
        let host = super::super::LibvirtHost::open(&uri).unwrap();
        assert_eq!(host.list_domains().unwrap(), vec!["one-5".to_string()]);
        let status = host.domain_status("one-5").unwrap().unwrap();
        assert_eq!(status.state, super::super::DomainState::Running);
        // Marked transient: once stopped it is gone, not left defined.
        host.destroy("one-5").unwrap();
        assert_eq!(host.domain_status("one-5").unwrap(), None);
        drop(host);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
