//! HTML output: escaping of everything that is not a literal of this module, the page frame
//! (header, navigation, main region, sign-out form) and the small widgets the pages share.
//!
//! Pages are written with `write!` into a `String`; every value that comes from the state or
//! the request goes through [`Esc`] (text and quoted attribute values) or [`Url`] (query
//! strings), never in raw.

use super::viewer::Viewer;
use std::fmt::{self, Write};

/// Text made safe for element content and for double- or single-quoted attribute values.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'', '\0']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#39;",
                _ => "\u{FFFD}",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// A dashboard path with a query string built from pairs (each value percent-encoded), written
/// escaped for an attribute.
pub struct Url<'a> {
    pub path: &'a str,
    pub query: Vec<(&'a str, String)>,
}

impl<'a> Url<'a> {
    pub fn new(path: &'a str) -> Self {
        Url {
            path,
            query: Vec::new(),
        }
    }

    /// Adds `key=value` unless `value` is empty.
    pub fn with(mut self, key: &'a str, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.query.push((key, value));
        }
        self
    }
}

impl Url<'_> {
    /// The URL as text, not escaped for HTML (for a `Location` header).
    pub fn raw(&self) -> String {
        let mut s = String::from(self.path);
        if !self.query.is_empty() {
            s.push('?');
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &self.query {
                q.append_pair(k, v);
            }
            s.push_str(&q.finish());
        }
        s
    }
}

impl fmt::Display for Url<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Esc(&self.raw()))
    }
}

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Vms,
    Hosts,
    Networks,
    Images,
    Templates,
    Volumes,
    Users,
    Groups,
    None,
}

/// How a page follows the server's change events (`data-live` on `<main>`, read by the script).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// Nothing to follow.
    Off,
    /// VM rows (`data-vm`) get their state cells updated in place.
    Rows,
    /// The main region is fetched again after a change (debounced).
    Reload,
}

/// A notice shown at the top of the main region.
pub enum Notice {
    Info(String),
    Error(String),
}

/// A rendered page: the frame around `body`.
pub struct Page {
    pub status: hyper::StatusCode,
    pub title: String,
    pub section: Section,
    pub live: Live,
    /// For Live::Reload pages about one VM: only its events reload the page.
    pub live_vm: Option<i32>,
    pub notices: Vec<Notice>,
    pub body: String,
    /// Answer a refused HTTP Basic request with the realm's challenge, as `/pswd` does.
    pub basic_challenge: bool,
}

impl Page {
    pub fn new(title: impl Into<String>, section: Section) -> Page {
        Page {
            status: hyper::StatusCode::OK,
            title: title.into(),
            section,
            live: Live::Off,
            live_vm: None,
            notices: Vec::new(),
            body: String::with_capacity(16 * 1024),
            basic_challenge: false,
        }
    }

    pub fn render(&self, viewer: Option<&Viewer>) -> String {
        let mut out = String::with_capacity(self.body.len() + 4096);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{} · stratusd</title>\
             <link rel=\"icon\" href=\"{icon}\" type=\"image/svg+xml\">\
             <link rel=\"stylesheet\" href=\"{css}\">\
             <script src=\"{js}\" defer></script></head>",
            Esc(&self.title),
            icon = super::assets::ICON.path(),
            css = super::assets::CSS.path(),
            js = super::assets::JS.path(),
        );
        out.push_str("<body><a class=\"skip\" href=\"#main\">Skip to content</a>");
        out.push_str("<header class=\"top\"><a class=\"brand\" href=\"/dashboard/\"><img src=\"");
        out.push_str(&super::assets::ICON.path());
        out.push_str("\" alt=\"\" width=\"28\" height=\"28\"><span>stratusd</span></a>");
        if let Some(v) = viewer {
            self.nav(&mut out, v);
            let _ = write!(
                out,
                "<div class=\"who\"><span class=\"user\" title=\"{name}\">{role}{name}</span>\
                 <form method=\"post\" action=\"/dashboard/logout\">{csrf}\
                 <button type=\"submit\" class=\"link\">Sign out</button></form></div>",
                name = Esc(&v.display_name),
                role = if v.caller.is_privileged() {
                    "<span class=\"badge admin\">admin</span> "
                } else {
                    ""
                },
                csrf = csrf_field(v),
            );
        }
        out.push_str("</header>");
        let live = match self.live {
            Live::Off => "",
            Live::Rows => " data-live=\"rows\"",
            Live::Reload => " data-live=\"reload\"",
        };
        let _ = write!(out, "<main id=\"main\" tabindex=\"-1\"{live}");
        if let Some(id) = self.live_vm {
            let _ = write!(out, " data-vm-id=\"{id}\"");
        }
        out.push('>');
        for n in &self.notices {
            match n {
                Notice::Info(text) => {
                    let _ = write!(
                        out,
                        "<p class=\"notice info\" role=\"status\">{}</p>",
                        Esc(text)
                    );
                }
                Notice::Error(text) => {
                    let _ = write!(
                        out,
                        "<p class=\"notice error\" role=\"alert\">{}</p>",
                        Esc(text)
                    );
                }
            }
        }
        out.push_str(&self.body);
        out.push_str(
            "</main><div id=\"announce\" class=\"visually-hidden\" aria-live=\"polite\"></div>",
        );
        out.push_str("<footer>stratusd ");
        out.push_str(env!("CARGO_PKG_VERSION"));
        out.push_str(" · OpenNebula 3.2 compatible</footer></body></html>\n");
        out
    }

    fn nav(&self, out: &mut String, v: &Viewer) {
        let mut items: Vec<(Section, &str, &str)> = vec![
            (Section::Overview, "/dashboard/", "Overview"),
            (Section::Vms, "/dashboard/vms", "Virtual machines"),
        ];
        if v.sees_hosts {
            items.push((Section::Hosts, "/dashboard/hosts", "Hosts"));
        }
        items.push((Section::Networks, "/dashboard/networks", "Networks"));
        items.push((Section::Images, "/dashboard/images", "Images"));
        items.push((Section::Templates, "/dashboard/templates", "Templates"));
        if v.volumes {
            items.push((Section::Volumes, "/dashboard/volumes", "Volumes"));
        }
        if v.caller.is_privileged() {
            items.push((Section::Users, "/dashboard/users", "Users"));
            items.push((Section::Groups, "/dashboard/groups", "Groups"));
        }
        out.push_str("<nav aria-label=\"Main\"><ul>");
        for (section, href, label) in items {
            let current = if section == self.section {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(out, "<li><a href=\"{href}\"{current}>{label}</a></li>");
        }
        out.push_str("</ul></nav>");
    }
}

/// The hidden form field every action form carries.
pub fn csrf_field(v: &Viewer) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        Esc(&v.csrf)
    )
}

/// `1.5 GiB`-style size from bytes.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A date and time in UTC from a Unix time; `-` for 0.
pub fn time(epoch: i64) -> String {
    if epoch <= 0 {
        return "-".into();
    }
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// `<time>` element with the UTC date and time.
pub fn time_element(epoch: i64) -> String {
    if epoch <= 0 {
        return "-".into();
    }
    let t = time(epoch);
    format!("<time datetime=\"{}Z\">{t}</time>", t.replacen(' ', "T", 1))
}

use crate::timefmt::civil_from_days;

/// A length of time, `3d 4h`, `5m 10s`.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (
        secs / 86_400,
        (secs % 86_400) / 3600,
        (secs % 3600) / 60,
        secs % 60,
    );
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// A usage bar: `used` of `total`, labelled with `text` (already plain text, escaped here).
pub fn meter(used: f64, total: f64, text: &str) -> String {
    let pct = if total > 0.0 {
        (used / total * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    };
    let level = if pct >= 90.0 {
        "high"
    } else if pct >= 70.0 {
        "mid"
    } else {
        "low"
    };
    // Widths come from classes in 5% steps: the style sheet policy allows no inline styles.
    let step = ((pct / 5.0).round() as u32) * 5;
    format!(
        "<div class=\"meter {level}\"><span class=\"bar w{step}\" aria-hidden=\"true\"></span>\
         <span class=\"label\">{}</span></div>",
        Esc(text)
    )
}

/// Links to the pages of a paged list: `page` counts from 1.
pub fn pager(out: &mut String, base: &Url, page: usize, pages: usize, label: &str) {
    if pages <= 1 {
        return;
    }
    let link = |p: usize| {
        let mut u = Url {
            path: base.path,
            query: base.query.clone(),
        };
        u.query.push(("page", p.to_string()));
        u.to_string()
    };
    let _ = write!(
        out,
        "<nav class=\"pager\" aria-label=\"{}\"><ul>",
        Esc(label)
    );
    if page > 1 {
        let _ = write!(
            out,
            "<li><a href=\"{}\" rel=\"prev\">‹ Previous</a></li>",
            link(page - 1)
        );
    }
    let mut shown: Vec<usize> = vec![1, pages];
    for p in page.saturating_sub(2)..=(page + 2) {
        if p >= 1 && p <= pages {
            shown.push(p);
        }
    }
    shown.sort_unstable();
    shown.dedup();
    let mut last = 0;
    for p in shown {
        if p > last + 1 {
            out.push_str("<li class=\"gap\" aria-hidden=\"true\">…</li>");
        }
        if p == page {
            let _ = write!(
                out,
                "<li><a aria-current=\"page\" href=\"{}\">{p}</a></li>",
                link(p)
            );
        } else {
            let _ = write!(out, "<li><a href=\"{}\">{p}</a></li>", link(p));
        }
        last = p;
    }
    if page < pages {
        let _ = write!(
            out,
            "<li><a href=\"{}\" rel=\"next\">Next ›</a></li>",
            link(page + 1)
        );
    }
    out.push_str("</ul></nav>");
}

/// A badge for a state name; `kind` is one of the CSS state classes.
pub fn badge(kind: &str, text: &str) -> String {
    format!("<span class=\"badge {}\">{}</span>", Esc(kind), Esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            Esc("<img src=x onerror='a(1)'>&\"\0").to_string(),
            "&lt;img src=x onerror=&#39;a(1)&#39;&gt;&amp;&quot;\u{FFFD}"
        );
        assert_eq!(Esc("plain ümlaut").to_string(), "plain ümlaut");
    }

    #[test]
    fn urls_encode_then_escape() {
        let u = Url::new("/dashboard/vms")
            .with("owner", "a&b \"c\"<")
            .with("host", "");
        assert_eq!(u.to_string(), "/dashboard/vms?owner=a%26b+%22c%22%3C");
    }

    #[test]
    fn sizes_and_times() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(300 * 1024 * 1024), "300 MiB");
        assert_eq!(time(0), "-");
        assert_eq!(time(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(duration(3725), "1h 2m");
        assert_eq!(duration(90_000), "1d 1h");
    }
}
