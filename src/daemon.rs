//! Start-up and shutdown of the daemon: settings, database, oneadmin's password, workers,
//! listener, and a clean exit on SIGTERM/SIGINT.

use crate::cli::ServeArgs;
use crate::core::Core;
use crate::driver::Drivers;
use crate::net::dhcp::DhcpHostsFile;
use crate::server::guard::{Guard, Limits};
use crate::store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read or write the oneadmin credentials file {path}: {source}")]
    OneAuth {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the oneadmin credentials file {0} must hold `oneadmin:PASSWORD`")]
    OneAuthFormat(PathBuf),
    #[error("{0} is in use by another stratusd (or an import)")]
    InUse(PathBuf),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Core(#[from] crate::core::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
    #[error("front door: {0}")]
    FrontDoor(#[from] crate::frontdoor::FrontDoorError),
    #[error("volumes: {0}")]
    Volumes(String),
}

/// oneadmin's password: the first line of `$ONE_AUTH` (`oneadmin:PASSWORD`), or of
/// `DATA_DIR/one_auth`; when the file does not exist a random password is generated and
/// written there (mode 0600), as the StratusLab installer did.
fn oneadmin_password(data_dir: &Path) -> Result<String, StartError> {
    let path = std::env::var_os("ONE_AUTH")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.join("one_auth"));
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let line = text.lines().next().unwrap_or("").trim_end();
            match line.split_once(':') {
                Some((_, pass)) if !pass.is_empty() => Ok(pass.to_string()),
                _ => Err(StartError::OneAuthFormat(path)),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes: [u8; 12] = rand::random();
            let pass: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            write_private(&path, &format!("oneadmin:{pass}\n")).map_err(|source| {
                StartError::OneAuth {
                    path: path.clone(),
                    source,
                }
            })?;
            tracing::info!(file = %path.display(), "generated oneadmin's password");
            Ok(pass)
        }
        Err(source) => Err(StartError::OneAuth { path, source }),
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Colour codes only for a terminal: redirected to a file (systemd, init scripts, the
    // tests) the log stays plain text that grep and log rotation handle.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A log on a full disk: tracing's fallback report is an eprintln!, which panics when
        // stderr cannot be written, taking down whichever request or worker was logging.
        .log_internal_errors(false)
        .try_init();
}

/// How long a start waits for the database's lock before refusing: a daemon restarted right
/// after a crash (kill -9) can find it still held for a moment by a child the dead daemon was
/// starting (a hook between its fork and its exec shares the locked descriptor until the exec
/// closes it). Seen in the kill -9 campaign and the hook burst test under load.
const DATABASE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn take_database_lock(database: &Path) -> Result<crate::store::DatabaseLock, StartError> {
    let deadline = std::time::Instant::now() + DATABASE_LOCK_WAIT;
    let mut waited = false;
    loop {
        let taken = crate::store::DatabaseLock::try_take(database).map_err(|source| {
            StartError::DataDir {
                path: database.to_path_buf(),
                source,
            }
        })?;
        match taken {
            Some(lock) => {
                if waited {
                    tracing::info!("the database lock is free: starting");
                }
                return Ok(lock);
            }
            None if std::time::Instant::now() < deadline => {
                if !waited {
                    tracing::info!(wait = ?DATABASE_LOCK_WAIT, "the database is locked: waiting in case its holder is a child of a daemon that just died");
                    waited = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            None => return Err(StartError::InUse(database.to_path_buf())),
        }
    }
}

pub fn serve(args: &ServeArgs) -> Result<(), StartError> {
    // Before any thread starts, so that every thread's heap obeys it.
    crate::memory::limit_arenas();
    let settings = args.settings()?;
    init_logging(&settings.log_level);
    std::fs::create_dir_all(&settings.data_dir).map_err(|source| StartError::DataDir {
        path: settings.data_dir.clone(),
        source,
    })?;
    // One daemon (or import) per database at a time.
    let _lock = take_database_lock(&settings.database_path())?;
    let store = Store::open(&settings.database_path())?;
    // Only a fresh database takes the password; later starts keep the stored one, as oned.
    let fresh = store.is_empty()?;
    let password = if fresh {
        oneadmin_password(&settings.data_dir)?
    } else {
        String::new()
    };
    let listen = settings.listen;
    let default_host = settings.default_host.clone();
    // Built before anything runs: a bad certificate, key or file stops the start. The
    // persistent disk service uses the front door's TLS and authentication too.
    let gate = if settings.frontdoor.listen.is_some() || settings.volumes.listen.is_some() {
        Some(Arc::new(crate::frontdoor::FrontDoor::build(
            &settings.frontdoor,
        )?))
    } else {
        None
    };
    let front_door = gate.clone().filter(|g| g.listen_addr().is_some());
    let volume_backend =
        crate::pdisk::backend_from_settings(&settings).map_err(StartError::Volumes)?;
    if front_door.is_some() && settings.auth != crate::config::AuthMode::Stratuslab {
        tracing::warn!("the front door forwards one-proxy sessions, which only --auth stratuslab accepts for users other than oneadmin");
    }
    let dhcp_hosts = settings
        .dhcp_hosts_file
        .clone()
        .map(|path| Arc::new(DhcpHostsFile::new(path, settings.dhcp_format)));
    let mut core = Core::open(store, settings, &password)?;
    let hooks_dir = core
        .settings
        .hooks_dir
        .clone()
        .unwrap_or_else(|| core.settings.data_dir.join("remotes/hooks"));
    let hooks = crate::hooks::load(&core.settings.vm_hook, &hooks_dir);
    // What the hook and VM log workers below carry out, the core records in its outbox.
    core.set_effects(crate::core::outbox::Effects {
        hook_points: hooks.iter().map(|h| h.on).collect(),
        vm_log: true,
        dhcp: dhcp_hosts.is_some(),
        steps: true,
    });
    // The pools' metrics are rendered as commits change them, from the start.
    let pool_metrics = core
        .settings
        .metrics_listen
        .map(|_| crate::exporter::attach(&mut core, &crate::exporter::server_name()));
    let core = Arc::new(core);
    // Leases may have changed while we were down (or the file was lost): start in step, and
    // with it carry out the DHCP intents a crash left.
    let dhcp_worker = dhcp_hosts.as_ref().map(|file| {
        (
            Arc::clone(file),
            crate::workers::dhcp::write_at_start(&core, file),
        )
    });
    // Saved disks a crash left unmoved, before reconciliation cleans finished VMs' directories.
    let carried = core.carry_out_disk_intents();
    if carried > 0 {
        tracing::info!(entries = carried, "saved disks of before the restart moved");
    }
    // Image copies a crash cut short left their temporary files; their intents run again.
    let removed = core.remove_copy_temporaries();
    if removed > 0 {
        tracing::info!(
            files = removed,
            "temporary files of interrupted image copies removed"
        );
    }
    if let (true, Some(name)) = (fresh, default_host) {
        let admin = crate::core::auth::Caller::oneadmin();
        let id = core.host_allocate(&admin, &name, "im_dummy", "vmm_dummy", "dummy", "tm_dummy")?;
        tracing::info!(host = %name, id, "registered the default simulated host");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: listen,
                source,
            })?;
        let front_listener = match front_door
            .as_ref()
            .and_then(|f| Some((f, f.listen_addr()?)))
        {
            Some((front, addr)) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Listen { addr, source })?;
                Some((l, Arc::clone(front), addr))
            }
            None => None,
        };
        let metrics_listener = match core.settings.metrics_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Listen { addr, source })?,
            ),
            None => None,
        };
        let pdisk_listener = match (core.settings.volumes.listen, &gate) {
            (Some(addr), Some(gate)) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Listen { addr, source })?;
                Some((l, Arc::clone(gate), addr))
            }
            _ => None,
        };
        let drivers = Arc::new(Drivers::new(&core.settings));
        let volumes = Arc::new(crate::pdisk::VolumeService::new(
            Arc::clone(&core),
            Arc::clone(&drivers),
            volume_backend,
        ));
        if let (Some(_), Some(gate)) = (core.settings.volumes.listen, &gate) {
            gate.dashboard().set_volumes(Arc::clone(&volumes) as _);
        }
        drivers
            .storage()
            .set_volume_broker(Arc::new(crate::pdisk::Broker {
                core: Arc::clone(&core),
            }));
        {
            let (c, d) = (Arc::clone(&core), Arc::clone(&drivers));
            if let Err(e) =
                tokio::task::spawn_blocking(move || crate::workers::reconcile::reconcile(&c, &d))
                    .await
            {
                tracing::error!(error = %e, "start-up reconciliation panicked");
            }
            let v = Arc::clone(&volumes);
            if let Err(e) = tokio::task::spawn_blocking(move || v.reconcile()).await {
                tracing::error!(error = %e, "start-up reconciliation of volumes panicked");
            }
        }
        crate::hooks::spawn(Arc::clone(&core), hooks);
        if let Some((file, unwritten)) = dhcp_worker {
            crate::workers::dhcp::spawn(Arc::clone(&core), file, unwritten);
        }
        crate::workers::poll::spawn(Arc::clone(&core), Arc::clone(&drivers));
        crate::workers::lcm::spawn(Arc::clone(&core), Arc::clone(&drivers));
        crate::workers::monitor::spawn(Arc::clone(&core), Arc::clone(&drivers));
        crate::workers::vmlog::spawn(Arc::clone(&core), drivers.storage().log.clone());
        crate::workers::copies::spawn(Arc::clone(&core));
        crate::workers::storage::spawn(Arc::clone(&core), Arc::clone(&drivers));
        crate::sched::spawn(Arc::clone(&core));
        crate::pdisk::spawn_purge(Arc::clone(&volumes));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            let _ = stop_tx.send(true);
        });
        let mut pdisk_guard = None;
        let pdisk_task = pdisk_listener.map(|(l, gate, addr)| {
            tracing::info!(listen = %addr, "persistent disk service (HTTPS) ready");
            let server = Arc::new(crate::pdisk::PdiskServer::new(
                gate,
                Arc::clone(&volumes),
                core.settings.volumes.upload_max_bytes,
            ));
            let guard = Guard::new("pdisk", crate::pdisk::limits(&core.settings));
            pdisk_guard = Some(guard.clone());
            tokio::spawn(crate::pdisk::serve(l, server, guard, stop_rx.clone()))
        });
        let mut front_guard = None;
        let front_task = front_listener.map(|(l, front, addr)| {
            tracing::info!(listen = %addr, "front door (HTTPS) ready");
            let guard = front.guard(Limits::for_listener(&core.settings));
            front_guard = Some(guard.clone());
            tokio::spawn(crate::frontdoor::serve(
                l,
                guard,
                front,
                Arc::clone(&core),
                stop_rx.clone(),
            ))
        });
        let guard = Guard::new("xmlrpc", Limits::for_listener(&core.settings));
        let metrics_task = metrics_listener.zip(pool_metrics).map(|(l, pools)| {
            if let Ok(addr) = l.local_addr() {
                tracing::info!(listen = %addr, "metrics (GET /metrics) ready");
            }
            let own = Guard::new("metrics", crate::exporter::limits(&core.settings));
            let mut listeners = vec![guard.clone(), own.clone()];
            listeners.extend(front_guard.clone());
            listeners.extend(pdisk_guard.clone());
            tokio::spawn(crate::exporter::serve(
                l,
                own,
                pools,
                listeners,
                stop_rx.clone(),
            ))
        });
        tracing::info!(%listen, max_connections = guard.limits().max_connections, "stratusd ready");
        crate::server::serve(listener, guard, core, stop_rx).await;
        if let Some(task) = front_task {
            let _ = task.await;
        }
        if let Some(task) = metrics_task {
            let _ = task.await;
        }
        if let Some(task) = pdisk_task {
            let _ = task.await;
        }
        Ok(())
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
