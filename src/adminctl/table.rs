//! 3.2's command-line tables (`CLIHelper::ShowTable`): each column `%{-}{size}.{size}s` (cut to
//! its size, right-aligned unless it is a left column), columns joined by one blank, the header
//! bold and underlined on a terminal; and the helpers its columns use (`unit_to_str`,
//! `time_to_str`, the `dd hh:mm:ss` durations).

use std::io::IsTerminal;

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub size: usize,
    pub left: bool,
}

pub const fn col(name: &'static str, size: usize) -> Column {
    Column {
        name,
        size,
        left: false,
    }
}

pub const fn left(name: &'static str, size: usize) -> Column {
    Column {
        name,
        size,
        left: true,
    }
}

fn cell(c: &Column, text: &str) -> String {
    let cut: String = text.chars().take(c.size).collect();
    if c.left {
        format!("{cut:<w$}", w = c.size)
    } else {
        format!("{cut:>w$}", w = c.size)
    }
}

/// One row of cells.
pub fn row(columns: &[Column], values: &[String]) -> String {
    columns
        .iter()
        .zip(values)
        .map(|(c, v)| cell(c, v))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The header line: the column names, bold and underlined when stdout is a terminal (3.2
/// always wrote the escape codes; in a pipe or a file they are noise).
pub fn header(columns: &[Column]) -> String {
    let names: Vec<String> = columns.iter().map(|c| c.name.to_string()).collect();
    let line = row(columns, &names);
    bold_underlined(&line, true)
}

/// A section header (`VIRTUAL MACHINE 5 INFORMATION`, `%-80s`).
pub fn section(title: &str, underline: bool) -> String {
    bold_underlined(&format!("{title:<80}"), underline)
}

fn bold_underlined(text: &str, underline: bool) -> String {
    if std::io::stdout().is_terminal() {
        format!(
            "\x1b[1m{}{text}\x1b[0m",
            if underline { "\x1b[4m" } else { "" }
        )
    } else {
        text.to_string()
    }
}

/// 3.2's `unit_to_str`: `value` in `unit` (K or M) scaled to the largest unit it exceeds
/// 1024 of, with one decimal (none when it is whole): `512M`, `1.5G`. With `kilobytes`, the
/// number as it is.
pub fn unit_to_str(value: i64, kilobytes: bool, unit: char) -> String {
    if kilobytes {
        return value.to_string();
    }
    const SUFFIX: [char; 4] = ['K', 'M', 'G', 'T'];
    let mut i = SUFFIX.iter().position(|c| *c == unit).unwrap_or(0);
    let mut v = value as f64;
    while v > 1024.0 && i < 3 {
        v /= 1024.0;
        i += 1;
    }
    let v = (v * 10.0).round() / 10.0;
    if v.fract() == 0.0 {
        format!("{}{}", v as i64, SUFFIX[i])
    } else {
        format!("{v}{}", SUFFIX[i])
    }
}

/// Local broken-down time of an epoch second.
pub fn local_time(epoch: i64) -> Option<libc::tm> {
    let t: libc::time_t = epoch;
    // SAFETY: localtime_r writes only into the tm we own; all-zero is a valid tm.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    ok.then_some(tm)
}

/// 3.2's `time_to_str`: `-` for 0, else `%m/%d %H:%M:%S` in local time.
pub fn time_to_str(epoch: i64) -> String {
    if epoch == 0 {
        return "-".into();
    }
    match local_time(epoch) {
        Some(tm) => format!(
            "{:02}/{:02} {:02}:{:02}:{:02}",
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        ),
        None => epoch.to_string(),
    }
}

/// `dd hh:mm:ss` of a number of seconds (3.2's TIME columns).
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    format!(
        "{:02} {:02}:{:02}:{:02}",
        s / 86_400,
        (s % 86_400) / 3600,
        (s % 3600) / 60,
        s % 60
    )
}

/// 3.2's `boolean_to_str`.
pub fn yes_no(value: &str) -> &'static str {
    if value.trim().parse::<i64>().unwrap_or(0) == 1 {
        "Yes"
    } else {
        "No"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_cut_and_aligned_like_ruby_format() {
        let cols = [col("ID", 4), left("NAME", 6), col("STAT", 4)];
        assert_eq!(
            row(&cols, &["7".into(), "a-long-name".into(), "runn".into()]),
            "   7 a-long runn"
        );
    }

    #[test]
    fn units_as_3_2_printed_them() {
        assert_eq!(unit_to_str(524_288, false, 'K'), "512M");
        assert_eq!(unit_to_str(1_572_864, false, 'K'), "1.5G");
        assert_eq!(unit_to_str(1000, false, 'K'), "1000K");
        assert_eq!(unit_to_str(1025, false, 'K'), "1M");
        assert_eq!(unit_to_str(40, false, 'M'), "40M");
        assert_eq!(unit_to_str(2048, false, 'M'), "2G");
        assert_eq!(unit_to_str(524_288, true, 'K'), "524288");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0), "00 00:00:00");
        assert_eq!(duration(90_061), "01 01:01:01");
        assert_eq!(time_to_str(0), "-");
        assert_eq!(yes_no("1"), "Yes");
        assert_eq!(yes_no("0"), "No");
    }
}
