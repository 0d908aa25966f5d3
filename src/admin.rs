//! Administrator subcommands that work on the data directory directly (the daemon may run at
//! the same time: purging tolerates what the daemon removed meanwhile).

use crate::cli::{QuarantineAction, QuarantineArgs};
use crate::storage::quarantine::Quarantine;

fn age(secs: i64) -> String {
    let secs = secs.max(0);
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// `stratusd quarantine list|purge [--all]`.
pub fn quarantine(args: &QuarantineArgs) -> Result<(), String> {
    let settings = args.settings().map_err(|e| e.to_string())?;
    let q = Quarantine::new(
        settings.quarantine_dir(),
        settings.storage.quarantine_period,
        settings.storage.volume_quarantine_period,
    );
    let now = crate::model::now();
    match args.action {
        QuarantineAction::List => {
            println!("VID\tAGE\tBYTES\tDISKS\tQUARANTINED\tPATH");
            for e in q.entries() {
                let disks = if e.marker.volumes_purged || e.marker.volumes.is_empty() {
                    "purged".to_string()
                } else {
                    format!("{} kept", e.marker.volumes.len())
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    e.marker.vid,
                    age(now - e.marker.quarantined_at),
                    e.bytes,
                    disks,
                    crate::core::lifecycle::ctime(e.marker.quarantined_at),
                    e.path.display()
                );
            }
        }
        QuarantineAction::Purge { all } => {
            // Disks kept on nodes without the shared VM directory are purged there over SSH.
            let nodes = crate::storage::node::Nodes::new(crate::storage::ssh::SshClient::new(
                &settings.nodes.ssh_command,
                settings.nodes.ssh_connect_timeout,
                std::time::Duration::from_secs_f64(settings.nodes.command_timeout.max(1.0)),
            ));
            let r = q.purge(now, all, &|copy| nodes.purge(&copy.target, &copy.path));
            println!(
                "purged {} director{}, {} disk snapshot{}",
                r.directories,
                if r.directories == 1 { "y" } else { "ies" },
                r.volumes,
                if r.volumes == 1 { "" } else { "s" }
            );
        }
    }
    Ok(())
}
