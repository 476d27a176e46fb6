//! Time and duration text in the exact forms Go's `metav1` types write.
//!
//! Small enough to own: it saves a date-time dependency, and the forms are
//! fixed (UTC, RFC 3339, Go's `time.Duration.String`).

/// Days since 1970-01-01 to a civil (proleptic Gregorian) date.
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A civil date to days since 1970-01-01. Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats Unix `seconds` (+ `micros`, if given) as RFC 3339 in UTC:
/// `2006-01-02T15:04:05Z`, or `2006-01-02T15:04:05.000000Z` with micros.
/// Years outside 0000–9999 have no RFC 3339 form: an error.
pub(crate) fn format_rfc3339(seconds: i64, micros: Option<u32>) -> Result<String, String> {
    let days = seconds.div_euclid(86_400);
    let sod = seconds.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return Err(format!("time {seconds}s is outside years 0000-9999"));
    }
    let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
    Ok(match micros {
        None => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        Some(us) => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z"),
    })
}

/// Parses RFC 3339 (`Z` or `±hh:mm` offset, optional fraction) into Unix
/// seconds and nanoseconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<(i64, i32)> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = b.get(start..i)?;
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        nanos = num(start..i)? * 10_i64.pow(9 - digits.len() as u32);
    }
    let offset = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let off = oh * 3600 + om * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    if civil_from_days(days) != (y, mo as u32, d as u32) {
        return None; // e.g. February 30th
    }
    let seconds = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some((seconds, nanos as i32))
}

/// Go's `time.Duration.String()`: `"1h2m3.5s"`, `"1.5ms"`, `"0s"`.
pub(crate) fn format_go_duration(ns: i64) -> String {
    fn frac(v: u64, prec: u32) -> String {
        if v == 0 {
            return String::new();
        }
        let s = format!(".{v:0width$}", width = prec as usize);
        s.trim_end_matches('0').to_string()
    }
    if ns == 0 {
        return "0s".to_string();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    if u < 1_000_000_000 {
        let (unit, prec) = match u {
            0..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let p = 10_u64.pow(prec);
        return format!("{sign}{}{}{unit}", u / p, frac(u % p, prec));
    }
    let secs = u / 1_000_000_000;
    let mut out = sign.to_string();
    if secs >= 3600 {
        out.push_str(&format!("{}h", secs / 3600));
    }
    if secs >= 60 {
        out.push_str(&format!("{}m", secs / 60 % 60));
    }
    out.push_str(&format!("{}{}s", secs % 60, frac(u % 1_000_000_000, 9)));
    out
}

/// Parses Go's duration syntax (`time.ParseDuration`) into nanoseconds.
pub(crate) fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(n_end);
        let u_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(u_end);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (int, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (int.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return None;
        }
        let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        total = total.checked_add(int.checked_mul(scale)?)?;
        let mut place = scale;
        for c in fraction.chars() {
            place /= 10;
            total = total.checked_add(u128::from(c.to_digit(10)?) * place)?;
        }
        rest = tail;
    }
    let total = i128::try_from(total).ok()?;
    i64::try_from(if neg { -total } else { total }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(format_rfc3339(0, None).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(1_136_214_245, None).unwrap(),
            "2006-01-02T15:04:05Z"
        );
        assert_eq!(
            format_rfc3339(1_136_214_245, Some(42)).unwrap(),
            "2006-01-02T15:04:05.000042Z"
        );
        assert_eq!(format_rfc3339(-1, None).unwrap(), "1969-12-31T23:59:59Z");
        assert_eq!(
            format_rfc3339(951_782_400, None).unwrap(),
            "2000-02-29T00:00:00Z"
        );
        assert!(format_rfc3339(i64::MAX, None).is_err());
        assert!(format_rfc3339(i64::MIN, None).is_err());
        assert_eq!(
            parse_rfc3339("2006-01-02T15:04:05Z"),
            Some((1_136_214_245, 0))
        );
        assert_eq!(
            parse_rfc3339("2006-01-02T16:04:05.5+01:00"),
            Some((1_136_214_245, 500_000_000))
        );
        assert_eq!(parse_rfc3339("2006-01-02T15:04:05"), None);
        assert_eq!(parse_rfc3339("2006-01-02 15:04:05Z"), None);
        assert_eq!(parse_rfc3339("x"), None);
        assert_eq!(parse_rfc3339("2006-02-30T15:04:05Z"), None);
    }

    #[test]
    fn go_durations() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (1_000_000_000, "1s"),
            (3_600_000_000_000, "1h0m0s"),
            (5_400_000_000_000, "1h30m0s"),
            (300_000_000_000, "5m0s"),
            (1_500_000_000, "1.5s"),
            (-61_000_000_000, "-1m1s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (ns, text) in cases {
            assert_eq!(format_go_duration(ns), text);
            assert_eq!(parse_go_duration(text), Some(ns), "{text}");
        }
        assert_eq!(parse_go_duration("1h1h"), Some(7_200_000_000_000));
        assert_eq!(parse_go_duration("1x"), None);
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("."), None);
    }
}
