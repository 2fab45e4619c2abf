//! Wall clock and RFC 3339 dates (UTC), written here so the simulator needs no date crate.
//!
//! The logs API speaks RFC 3339 both ways: `created_at` is formatted with milliseconds and a `Z`
//! (like the real API's `2026-08-20T09:14:03.512Z`), and `start_date` / `end_date` / the seed's
//! `end` are parsed. Day arithmetic uses Howard Hinnant's civil-calendar algorithms, which are
//! exact for the proleptic Gregorian calendar.

use std::time::{SystemTime, UNIX_EPOCH};

const MS_PER_DAY: i64 = 86_400_000;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        // A clock before 1970 is not worth failing a request over.
        Err(_) => 0,
    }
}

/// Days since 1970-01-01 for a civil date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date (year, month, day) for days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn split_ms(ms: i64) -> (i64, u32, u32, i64, i64, i64, i64) {
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY);
    let (y, mo, d) = civil_from_days(days);
    (y, mo, d, rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000)
}

/// `2026-08-20T09:14:03.512Z`: the shape of a log row's `created_at`.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli) = split_ms(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// `2026-06-01T12:00:00Z`: the shape of a gateway's `created_at` / `modified_at`.
pub fn format_rfc3339_s(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = split_ms(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (and, as a convenience for query
/// strings, a bare `YYYY-MM-DD` meaning midnight UTC) into Unix milliseconds.
/// Fractions beyond milliseconds are truncated. Returns `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let year = num(0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = u32::try_from(num(5, 2)?).ok()?;
    let day = u32::try_from(num(8, 2)?).ok()?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let date_ms = days_from_civil(year, month, day) * MS_PER_DAY;
    if b.len() == 10 {
        return Some(date_ms);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
        return None;
    }
    let (hour, minute) = (num(11, 2)?, num(14, 2)?);
    if b.get(16) != Some(&b':') {
        return None;
    }
    let second = num(17, 2)?;
    // 60 allows a leap second, which we fold into the next second like most parsers do.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        // Take up to three digits, right-padded: ".5" is 500 ms.
        let digits = &s[start..i.min(start + 3)];
        millis = digits.parse::<i64>().ok()? * 10_i64.pow(3 - digits.len() as u32);
    }
    let offset_min = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b.get(i + 3) == Some(&b':') => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if *sign == b'+' {
                m
            } else {
                -m
            }
        }
        _ => return None,
    };
    Some(date_ms + hour * 3_600_000 + minute * 60_000 + second * 1000 + millis - offset_min * 60_000)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        // 2026-08-20T09:14:03.512Z, the example in the reference doc.
        let ms = parse_rfc3339("2026-08-20T09:14:03.512Z").unwrap();
        assert_eq!(format_rfc3339_ms(ms), "2026-08-20T09:14:03.512Z");
        assert_eq!(format_rfc3339_s(ms), "2026-08-20T09:14:03Z");
        assert_eq!(format_rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_variants() {
        let base = parse_rfc3339("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(parse_rfc3339("2026-01-02T03:04:05.5Z"), Some(base + 500));
        assert_eq!(parse_rfc3339("2026-01-02T03:04:05.123456Z"), Some(base + 123));
        assert_eq!(parse_rfc3339("2026-01-02T05:04:05+02:00"), Some(base), "offsets are converted to UTC");
        assert_eq!(parse_rfc3339("2026-01-02T02:34:05-00:30"), Some(base));
        assert_eq!(parse_rfc3339("2026-01-02"), Some(base - (3 * 3600 + 4 * 60 + 5) * 1000));
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00Zjunk",
            "yesterday",
            "2026-1-01",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_across_years() {
        let mut ms = -5_000_000_000_000_i64;
        while ms < 10_000_000_000_000 {
            assert_eq!(parse_rfc3339(&format_rfc3339_ms(ms)), Some(ms));
            ms += 7_777_777_777;
        }
    }
}
