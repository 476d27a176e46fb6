//! Cron schedules as upstream's CronJob controller reads them (robfig/cron
//! `ParseStandard`): five fields (minute, hour, day of month, month, day of
//! week) with `*`, `?`, lists, ranges, steps and month/day names; the
//! `@yearly`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`
//! descriptors; `CRON_TZ=`/`TZ=` prefixes. Times are found in a time zone,
//! so "0 9 * * *" in `Europe/Paris` follows daylight saving time.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// Day of month or day of week was `*`/`?`: then only the other
    /// restricts (cron's rule: when both restrict, either may match).
    dom_star: bool,
    dow_star: bool,
    pub tz: Option<String>,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn field(expr: &str, min: u32, max: u32, names: &[&str], names_from: u32) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in expr.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                Some(
                    s.parse::<u32>()
                        .map_err(|_| format!("failed to parse int from {s}"))?,
                ),
            ),
            None => (part, None),
        };
        let value = |s: &str| -> Result<u32, String> {
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
                return Ok(i as u32 + names_from);
            }
            s.parse::<u32>()
                .map_err(|_| format!("failed to parse int from {s}"))
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if step.is_some() { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("end of range ({hi}) above maximum ({max}): {part}"));
        }
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err(format!("step of range should be a positive number: {part}"));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

impl Schedule {
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        let mut spec = spec.trim();
        let mut tz = None;
        for prefix in ["CRON_TZ=", "TZ="] {
            if let Some(rest) = spec.strip_prefix(prefix) {
                let (name, rest) = rest
                    .split_once(' ')
                    .ok_or("missing schedule after time zone")?;
                tz = Some(name.to_string());
                spec = rest.trim();
            }
        }
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {s}")),
            s => s,
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: [{}]",
                f.len(),
                f.join(" ")
            ));
        }
        let mut dow = field(f[4], 0, 7, &DAYS, 0)?;
        if dow & (1 << 7) != 0 {
            dow = (dow | 1) & !(1 << 7);
        }
        Ok(Schedule {
            minute: field(f[0], 0, 59, &[], 0)?,
            hour: field(f[1], 0, 23, &[], 0)?,
            dom: field(f[2], 1, 31, &[], 0)?,
            month: field(f[3], 1, 12, &MONTHS, 1)?,
            dow,
            dom_star: f[2].starts_with('*') || f[2].starts_with('?'),
            dow_star: f[4].starts_with('*') || f[4].starts_with('?'),
            tz,
        })
    }

    fn day_matches(&self, dt: &DateTime) -> bool {
        let dom = self.dom & (1 << dt.day()) != 0;
        let dow = self.dow & (1 << dt.weekday().to_sunday_zero_offset()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    fn matches(&self, dt: &DateTime) -> bool {
        self.minute & (1 << dt.minute()) != 0
            && self.hour & (1 << dt.hour()) != 0
            && self.month & (1 << dt.month()) != 0
            && self.day_matches(dt)
    }

    /// The first scheduled time strictly after `t`, in `tz`; `None` if
    /// none in the next five years (e.g. February 30th).
    pub fn next_after(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let z = t.to_zoned(tz.clone());
        // Next whole minute.
        let start = z
            .datetime()
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?;
        let mut dt = start.checked_add(1.minute()).ok()?;
        let limit = dt.checked_add(5.years()).ok()?;
        while dt < limit {
            if self.month & (1 << dt.month()) == 0 || !self.day_matches(&dt) {
                // Skip to the next day.
                dt = dt
                    .date()
                    .checked_add(1.day())
                    .ok()?
                    .to_datetime(jiff::civil::Time::midnight());
                continue;
            }
            if self.hour & (1 << dt.hour()) == 0 {
                dt = dt
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if self.matches(&dt) {
                let at = tz.to_ambiguous_zoned(dt).compatible().ok()?;
                if at.timestamp() > t {
                    return Some(at.timestamp());
                }
            }
            dt = dt.checked_add(1.minute()).ok()?;
        }
        None
    }
}

/// The time zone of a CronJob: `spec.timeZone`, else the schedule's
/// `CRON_TZ=`, else UTC (upstream uses the controller's local zone).
pub fn zone(spec_tz: Option<&str>, schedule: &Schedule) -> Result<TimeZone, String> {
    match spec_tz.or(schedule.tz.as_deref()) {
        None | Some("") | Some("UTC") | Some("Etc/UTC") => Ok(TimeZone::UTC),
        Some(name) => TimeZone::get(name).map_err(|e| format!("unknown time zone {name}: {e}")),
    }
}

/// What the controller should do at `now`.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// The most recent missed scheduled time to run now, if any.
    pub run: Option<Timestamp>,
    /// More than one time was missed (upstream warns past 100).
    pub missed: usize,
    /// The next scheduled time after `now`, to wake up for.
    pub next: Option<Timestamp>,
}

/// Upstream's `mostRecentScheduleTime` and `nextScheduleTime`: the latest
/// scheduled time in `(earliest, now]`, unless it is older than the
/// starting deadline.
pub fn plan(
    s: &Schedule,
    tz: &TimeZone,
    earliest: Timestamp,
    now: Timestamp,
    starting_deadline: Option<i64>,
) -> Plan {
    let earliest = match starting_deadline {
        Some(d) => earliest.max(now - jiff::SignedDuration::from_secs(d)),
        None => earliest,
    };
    let mut run = None;
    let mut missed = 0;
    let mut t = earliest;
    while let Some(n) = s.next_after(t, tz) {
        if n > now {
            break;
        }
        run = Some(n);
        missed += 1;
        t = n;
        if missed > 10_000 {
            break;
        }
    }
    Plan {
        run,
        missed,
        next: s.next_after(now, tz),
    }
}

/// Upstream's job name: `<cronjob>-<scheduled time in minutes since the epoch>`.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn next_times() {
        let every = Schedule::parse("* * * * *").unwrap();
        assert_eq!(
            every.next_after(ts("2024-01-01T10:00:30Z"), &TimeZone::UTC),
            Some(ts("2024-01-01T10:01:00Z"))
        );
        let hourly = Schedule::parse("@hourly").unwrap();
        assert_eq!(
            hourly.next_after(ts("2024-01-01T10:00:00Z"), &TimeZone::UTC),
            Some(ts("2024-01-01T11:00:00Z"))
        );
        let steps = Schedule::parse("*/15 9-17 * * mon-fri").unwrap();
        // Saturday 2024-01-06 -> Monday 09:00.
        assert_eq!(
            steps.next_after(ts("2024-01-05T17:50:00Z"), &TimeZone::UTC),
            Some(ts("2024-01-08T09:00:00Z"))
        );
        // Day of month or day of week when both are restricted.
        let either = Schedule::parse("0 0 13 * 5").unwrap();
        assert_eq!(
            either.next_after(ts("2024-01-01T00:00:00Z"), &TimeZone::UTC),
            Some(ts("2024-01-05T00:00:00Z"))
        );
        assert!(Schedule::parse("* * *").is_err());
        assert!(Schedule::parse("61 * * * *").is_err());
        assert!(Schedule::parse("@every-day").is_err());
        assert_eq!(
            Schedule::parse("0 0 30 2 *")
                .unwrap()
                .next_after(ts("2024-01-01T00:00:00Z"), &TimeZone::UTC),
            None
        );
    }

    #[test]
    fn time_zones() {
        let s = Schedule::parse("CRON_TZ=America/New_York 0 9 * * *").unwrap();
        let tz = zone(None, &s).unwrap();
        // 09:00 in New York is 14:00 UTC in winter, 13:00 in summer.
        assert_eq!(
            s.next_after(ts("2024-01-10T00:00:00Z"), &tz),
            Some(ts("2024-01-10T14:00:00Z"))
        );
        assert_eq!(
            s.next_after(ts("2024-07-10T00:00:00Z"), &tz),
            Some(ts("2024-07-10T13:00:00Z"))
        );
        let plain = Schedule::parse("0 9 * * *").unwrap();
        let paris = zone(Some("Europe/Paris"), &plain).unwrap();
        assert_eq!(
            plain.next_after(ts("2024-01-10T00:00:00Z"), &paris),
            Some(ts("2024-01-10T08:00:00Z"))
        );
    }

    #[test]
    fn plan_on_a_fake_clock() {
        let s = Schedule::parse("*/5 * * * *").unwrap();
        let now = ts("2024-01-01T10:12:00Z");
        // Created at 10:00:30: 10:05 and 10:10 missed, run the latest.
        let p = plan(&s, &TimeZone::UTC, ts("2024-01-01T10:00:30Z"), now, None);
        assert_eq!(
            p,
            Plan {
                run: Some(ts("2024-01-01T10:10:00Z")),
                missed: 2,
                next: Some(ts("2024-01-01T10:15:00Z"))
            }
        );
        // Already ran at 10:10: nothing until 10:15.
        let p = plan(&s, &TimeZone::UTC, ts("2024-01-01T10:10:00Z"), now, None);
        assert_eq!(p.run, None);
        // A 60 s starting deadline: 10:10 is too old to start at 10:12.
        let p = plan(
            &s,
            &TimeZone::UTC,
            ts("2024-01-01T10:00:30Z"),
            now,
            Some(60),
        );
        assert_eq!(p.run, None);
        assert_eq!(
            job_name("hello", ts("2024-01-01T10:10:00Z")),
            "hello-28401730"
        );
    }
}
