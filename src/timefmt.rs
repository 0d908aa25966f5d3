//! Calendar arithmetic and the time formats stratusd writes (C `ctime()`, ISO 8601), in one
//! leaf module: the model, storage, the dashboard and accounting share it instead of each
//! converting dates (proleptic Gregorian, UTC; no date crate for a few formats).

/// Year, month (1–12), day (1–31) of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date and time (UTC) of an epoch second: year, month, day, hour, minute, second.
pub fn civil(epoch: i64) -> (i64, u32, u32, u32, u32, u32) {
    let (year, month, day) = civil_from_days(epoch.div_euclid(86_400));
    let secs = epoch.rem_euclid(86_400);
    (
        year,
        month as u32,
        day as u32,
        (secs / 3600) as u32,
        ((secs % 3600) / 60) as u32,
        (secs % 60) as u32,
    )
}

/// The 24-character C `ctime()` form used by TEMPLATE/ERROR/TIMESTAMP (UTC).
pub fn ctime(epoch: i64) -> String {
    let (year, month, day, h, m, s) = civil(epoch);
    let weekday = (epoch.div_euclid(86_400) + 4).rem_euclid(7); // 1970-01-01 was a Thursday
    const WD: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MO: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        WD[weekday as usize],
        MO[(month - 1) as usize],
        day,
        h,
        m,
        s,
        year
    )
}

/// ISO 8601 UTC (`2013-01-24T09:59:42Z`), as manifests write dates.
pub fn iso8601(epoch: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(epoch);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_round_trips() {
        assert_eq!(ctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime(1_359_021_582), "Thu Jan 24 09:59:42 2013");
        assert_eq!(iso8601(1_359_021_582), "2013-01-24T09:59:42Z");
        assert_eq!(ctime(951_825_600), "Tue Feb 29 12:00:00 2000");
        for days in [-800_000, -1, 0, 59, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
