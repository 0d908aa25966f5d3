//! The administrator's command line: `stratusd vm|host|net|user|image|template ...`, what
//! OpenNebula 3.2's `onevm`, `onehost`, `onevnet`, `oneuser`, `oneimage` and `onetemplate` did,
//! as an XML-RPC client of the running daemon (`crate::oneclient`: `ONE_XMLRPC`, `ONE_AUTH`).
//!
//! `list` prints 3.2's tables (same columns, sizes and state abbreviations), `--xml` the
//! documents as the daemon wrote them (one object per line), `--json` the same documents as
//! JSON. Pools that take an id range (VMs, networks, images, templates) are listed a page at a
//! time (`one.*pool.info` start/end ids), each page printed before the next is asked for, so
//! 10,000 VMs are never held in memory at once.
//!
//! Errors print the daemon's message and exit with 255, as 3.2's commands did (`exit -1`).

pub mod doc;
pub mod families;
pub mod table;

use crate::oneclient::{OneClient, Param, RpcError};
use clap::Subcommand;
pub use families::{Family, ShowOptions};
use std::io::Write;

/// The user agent of these commands in the daemon's logs.
const USER_AGENT: &str = concat!("stratusd-cli/", env!("CARGO_PKG_VERSION"));
/// Ids asked for per `one.*pool.info` call of a paged listing.
const DEFAULT_PAGE: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Doc(#[from] doc::DocError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
    /// Failures already printed one by one (a list of ids where some failed).
    #[error("some operations failed")]
    Reported,
}

impl CliError {
    /// The daemon's message, as 3.2's commands printed it.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Format {
    /// The documents as the daemon sent them (`-x` of 3.2's commands).
    #[arg(short = 'x', long)]
    pub xml: bool,
    /// The documents as JSON.
    #[arg(short = 'j', long, conflicts_with = "xml")]
    pub json: bool,
    /// User and group ids instead of names.
    #[arg(short = 'n', long)]
    pub numeric: bool,
    /// Memory in KiB.
    #[arg(short = 'k', long)]
    pub kilobytes: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// a|all (default), m|mine, g|group, or a user's id or name.
    pub filter: Option<String>,
    #[command(flatten)]
    pub format: Format,
    /// VMs only: a state name (pending, hold, active, stopped, suspended, done, failed), its
    /// number, or `any`; default all but DONE, as 3.2's `onevm list`.
    #[arg(long)]
    pub state: Option<String>,
    /// Ids asked for per call.
    #[arg(long, default_value_t = DEFAULT_PAGE, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub page_size: i64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    /// Id or name.
    pub id: String,
    #[command(flatten)]
    pub format: Format,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Ids {
    /// Ids or names, comma-separated; `A..B` for a range of ids.
    pub ids: String,
    /// Say what was done to each.
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct IdsHost {
    /// VM ids or names, comma-separated; `A..B` for a range.
    pub ids: String,
    /// The host's id or name.
    pub host: String,
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum VmCommand {
    /// List VMs (all but DONE unless --state).
    List(ListArgs),
    /// One VM, with its template and history.
    Show(ShowArgs),
    /// Shut the VMs down (ACPI).
    Shutdown(Ids),
    /// Reboot the VMs.
    Reboot(Ids),
    /// Destroy the VMs' domains at once, keeping their disks' fate as a shutdown.
    Cancel(Ids),
    /// Keep pending VMs from being placed.
    Hold(Ids),
    /// Release held VMs.
    Release(Ids),
    /// Stop the VMs (saved and moved off their hosts).
    Stop(Ids),
    /// Suspend the VMs (saved on their hosts).
    Suspend(Ids),
    /// Resume stopped or suspended VMs.
    Resume(Ids),
    /// Finalize the VMs (DONE), whatever their state (3.2's `onevm delete`).
    Delete(Ids),
    /// Boot again VMs in UNKNOWN or BOOT.
    Restart(Ids),
    /// Resubmit the VMs (back to PENDING).
    Resubmit(Ids),
    /// Place pending VMs on a host.
    Deploy(IdsHost),
    /// Move the VMs to another host (saved and restored).
    Migrate(IdsHost),
    /// Move the running VMs to another host without stopping them.
    Livemigrate(IdsHost),
}

#[derive(Debug, Clone, Subcommand)]
pub enum HostCommand {
    /// List hosts.
    List(ListArgs),
    /// One host, with its monitoring information.
    Show(ShowArgs),
    /// Enable the hosts (monitored, used by the scheduler).
    Enable(Ids),
    /// Disable the hosts (neither monitored nor used).
    Disable(Ids),
}

/// `net`, `user`, `image`, `template`: list and show.
#[derive(Debug, Clone, Subcommand)]
pub enum PoolCommand {
    /// List the objects (for users: all of them).
    List(ListArgs),
    /// One object.
    Show(ShowArgs),
}

/// Runs one command; the process's exit code.
pub fn main(family: Family, command: Command) -> std::process::ExitCode {
    let result = OneClient::from_env(USER_AGENT)
        .map_err(CliError::from)
        .and_then(|client| run(&client, family, command));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::ExitCode::SUCCESS
        }
        Err(CliError::Reported) => std::process::ExitCode::from(255),
        Err(e) => {
            eprintln!("{}", e.message());
            std::process::ExitCode::from(255)
        }
    }
}

/// A command of any family.
#[derive(Debug, Clone)]
pub enum Command {
    Vm(VmCommand),
    Host(HostCommand),
    Pool(PoolCommand),
}

pub fn run(client: &OneClient, family: Family, command: Command) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let now = crate::model::now();
    match command {
        Command::Vm(VmCommand::List(a))
        | Command::Host(HostCommand::List(a))
        | Command::Pool(PoolCommand::List(a)) => list(client, family, &a, now, &mut out)?,
        Command::Vm(VmCommand::Show(a))
        | Command::Host(HostCommand::Show(a))
        | Command::Pool(PoolCommand::Show(a)) => show(client, family, &a, now, &mut out)?,
        Command::Vm(c) => vm_action(client, c, &mut out)?,
        Command::Host(HostCommand::Enable(ids)) => host_enable(client, &ids, true, &mut out)?,
        Command::Host(HostCommand::Disable(ids)) => host_enable(client, &ids, false, &mut out)?,
    }
    out.flush().map_err(CliError::Output)
}

fn write_line(out: &mut impl Write, text: &str) -> Result<(), CliError> {
    writeln!(out, "{text}").map_err(CliError::Output)
}

/// A pool listing as it is printed: the table, the XML or the JSON, object by object.
struct Printer<'a, W: Write> {
    out: &'a mut W,
    family: Family,
    format: Format,
    options: ShowOptions,
    count: usize,
}

impl<W: Write> Printer<'_, W> {
    fn begin(&mut self) -> Result<(), CliError> {
        let text = if self.format.xml {
            format!("<{}>", self.family.pool_element())
        } else if self.format.json {
            format!(
                "{{\"{}\":{{\"{}\":[",
                self.family.pool_element(),
                self.family.element()
            )
        } else {
            table::header(self.family.columns())
        };
        write_line(self.out, &text)
    }

    fn object(&mut self, raw: &str) -> Result<(), CliError> {
        let text = if self.format.xml {
            raw.to_string()
        } else {
            let node = doc::parse(raw)?;
            if self.format.json {
                let json = node.to_json().to_string();
                if self.count == 0 {
                    json
                } else {
                    format!(",{json}")
                }
            } else {
                table::row(
                    self.family.columns(),
                    &self.family.row(&node, &self.options),
                )
            }
        };
        self.count += 1;
        write_line(self.out, &text)
    }

    fn end(&mut self) -> Result<(), CliError> {
        if self.format.xml {
            write_line(self.out, &format!("</{}>", self.family.pool_element()))
        } else if self.format.json {
            write_line(self.out, "]}}")
        } else {
            Ok(())
        }
    }
}

/// `a|all`, `m|mine`, `g|group`, a user id or a user name → oned's filter flag.
fn filter_flag(client: &OneClient, filter: Option<&str>) -> Result<i32, CliError> {
    Ok(match filter {
        None | Some("a") | Some("all") => -2,
        Some("m") | Some("mine") => -3,
        Some("g") | Some("group") => -1,
        Some(user) => resolve(client, Family::User, user)?,
    })
}

fn vm_state_filter(state: Option<&str>) -> Result<i32, CliError> {
    let Some(s) = state else { return Ok(-1) };
    if s.eq_ignore_ascii_case("any") || s.eq_ignore_ascii_case("all") {
        return Ok(-2);
    }
    if let Ok(n) = s.parse::<i32>() {
        if (-2..=7).contains(&n) {
            return Ok(n);
        }
    }
    families::VM_STATES
        .iter()
        .position(|name| name.eq_ignore_ascii_case(s))
        .map(|i| i as i32)
        .ok_or_else(|| CliError::Usage(format!("unknown VM state {s:?}")))
}

/// The pool's objects, page by page (for families with id ranges) or at once; `each` gets the
/// raw text of each object.
pub fn for_each_object(
    client: &OneClient,
    family: Family,
    flag: i32,
    vm_state: i32,
    page: i64,
    mut each: impl FnMut(&str) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let method = family.pool_method();
    if !family.filtered() {
        let text = client.call(method, &[])?.into_text();
        for raw in doc::raw_children(&text)? {
            each(raw)?;
        }
        return Ok(());
    }
    let max = i64::from(i32::MAX);
    let mut start: i64 = 0;
    let mut window = page;
    while start <= max {
        let end = (start + window - 1).min(max);
        let mut params = vec![
            Param::Int(flag),
            Param::Int(start as i32),
            Param::Int(end as i32),
        ];
        if family == Family::Vm {
            params.push(Param::Int(vm_state));
        }
        let text = client.call(method, &params)?.into_text();
        let objects = doc::raw_children(&text)?;
        // Past a gap in the ids (or the last id), the window doubles: the end of the pool is
        // reached in about 20 calls, and gaps are crossed quickly.
        window = if objects.is_empty() {
            (window * 2).min(max)
        } else {
            page
        };
        for raw in objects {
            each(raw)?;
        }
        start = end + 1;
    }
    Ok(())
}

fn list(
    client: &OneClient,
    family: Family,
    a: &ListArgs,
    now: i64,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let flag = if family.filtered() {
        filter_flag(client, a.filter.as_deref())?
    } else {
        -2
    };
    let state = vm_state_filter(a.state.as_deref())?;
    let mut p = Printer {
        out,
        family,
        format: a.format,
        options: ShowOptions {
            numeric: a.format.numeric,
            kilobytes: a.format.kilobytes,
            now,
        },
        count: 0,
    };
    p.begin()?;
    for_each_object(client, family, flag, state, a.page_size, |raw| {
        p.object(raw)
    })?;
    p.end()
}

/// An id, or the id of the only object of that name (3.2's `to_id`).
pub fn resolve(client: &OneClient, family: Family, text: &str) -> Result<i32, CliError> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| CliError::Usage(format!("id {text} is out of range")));
    }
    let mut found = Vec::new();
    for_each_object(client, family, -2, -1, DEFAULT_PAGE, |raw| {
        let node = doc::parse(raw)?;
        if node.get("NAME") == text {
            found.push(node.int("ID"));
        }
        Ok(())
    })?;
    match found.as_slice() {
        [one] => i32::try_from(*one).map_err(|_| CliError::Usage(format!("id {one}"))),
        [] => Err(CliError::Usage(format!(
            "{} named {text} not found.",
            family.rname()
        ))),
        _ => Err(CliError::Usage(format!(
            "There are multiple {}s with name {text}.",
            family.rname()
        ))),
    }
}

/// `1,3,web,5..8` → ids.
fn resolve_list(client: &OneClient, family: Family, list: &str) -> Result<Vec<i32>, CliError> {
    let mut ids = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some((a, b)) = item.split_once("..") {
            let parse = |t: &str| {
                t.trim()
                    .parse::<i32>()
                    .map_err(|_| CliError::Usage(format!("bad range {item:?}")))
            };
            let (a, b) = (parse(a)?, parse(b)?);
            if b < a || i64::from(b) - i64::from(a) > 100_000 {
                return Err(CliError::Usage(format!("bad range {item:?}")));
            }
            ids.extend(a..=b);
        } else {
            ids.push(resolve(client, family, item)?);
        }
    }
    if ids.is_empty() {
        return Err(CliError::Usage("no id given".into()));
    }
    Ok(ids)
}

fn show(
    client: &OneClient,
    family: Family,
    a: &ShowArgs,
    now: i64,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let id = resolve(client, family, &a.id)?;
    let text = client
        .call(family.info_method(), &[Param::Int(id)])?
        .into_text();
    if a.format.xml {
        return write_line(out, &text);
    }
    let node = doc::parse(&text)?;
    if a.format.json {
        let pretty = serde_json::to_string_pretty(&node.to_json_document())
            .map_err(|e| CliError::Usage(e.to_string()))?;
        return write_line(out, &pretty);
    }
    let options = ShowOptions {
        numeric: a.format.numeric,
        kilobytes: a.format.kilobytes,
        now,
    };
    write_line(out, &family.show(&node, &options))
}

/// Runs `call` on each id; as 3.2's `perform_actions`, a failure is printed and the others
/// still run; the exit code says whether one failed.
fn each_id(
    ids: &[i32],
    verbose: bool,
    what: &str,
    rname: &str,
    out: &mut impl Write,
    mut call: impl FnMut(i32) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut last_error = None;
    for id in ids {
        match call(*id) {
            Ok(()) => {
                if verbose {
                    write_line(out, &format!("{rname} {id}: {what}"))?;
                }
            }
            Err(e) => {
                eprintln!("{}", e.message());
                last_error = Some(e);
            }
        }
    }
    match last_error {
        // Already printed: only the exit code is left to give.
        Some(_) => Err(CliError::Reported),
        None => Ok(()),
    }
}

fn vm_action(client: &OneClient, c: VmCommand, out: &mut impl Write) -> Result<(), CliError> {
    let simple = |action: &'static str, ids: Ids| (action, ids);
    let (action, ids) = match c {
        VmCommand::Shutdown(i) => simple("shutdown", i),
        VmCommand::Reboot(i) => simple("reboot", i),
        VmCommand::Cancel(i) => simple("cancel", i),
        VmCommand::Hold(i) => simple("hold", i),
        VmCommand::Release(i) => simple("release", i),
        VmCommand::Stop(i) => simple("stop", i),
        VmCommand::Suspend(i) => simple("suspend", i),
        VmCommand::Resume(i) => simple("resume", i),
        VmCommand::Delete(i) => simple("finalize", i),
        VmCommand::Restart(i) => simple("restart", i),
        VmCommand::Resubmit(i) => simple("resubmit", i),
        VmCommand::Deploy(a) => return vm_place(client, "deploy", a, out),
        VmCommand::Migrate(a) => return vm_place(client, "migrate", a, out),
        VmCommand::Livemigrate(a) => return vm_place(client, "livemigrate", a, out),
        VmCommand::List(_) | VmCommand::Show(_) => return Ok(()),
    };
    let list = resolve_list(client, Family::Vm, &ids.ids)?;
    let done = match action {
        "finalize" => "deleted".to_string(),
        other => format!("{other}ing"),
    };
    each_id(&list, ids.verbose, &done, "VM", out, |id| {
        client.call(
            "one.vm.action",
            &[Param::Str(action.to_string()), Param::Int(id)],
        )?;
        Ok(())
    })
}

fn vm_place(
    client: &OneClient,
    how: &str,
    a: IdsHost,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let list = resolve_list(client, Family::Vm, &a.ids)?;
    let host = resolve(client, Family::Host, &a.host)?;
    each_id(
        &list,
        a.verbose,
        &format!("{how} to host {host}"),
        "VM",
        out,
        |id| {
            match how {
                "deploy" => client.call("one.vm.deploy", &[Param::Int(id), Param::Int(host)])?,
                live => client.call(
                    "one.vm.migrate",
                    &[
                        Param::Int(id),
                        Param::Int(host),
                        Param::Bool(live == "livemigrate"),
                    ],
                )?,
            };
            Ok(())
        },
    )
}

fn host_enable(
    client: &OneClient,
    ids: &Ids,
    enable: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let list = resolve_list(client, Family::Host, &ids.ids)?;
    let what = if enable { "enabled" } else { "disabled" };
    each_id(&list, ids.verbose, what, "HOST", out, |id| {
        client.call("one.host.enable", &[Param::Int(id), Param::Bool(enable)])?;
        Ok(())
    })
}
