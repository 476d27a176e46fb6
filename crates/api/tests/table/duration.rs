//! `HumanDuration` at each of upstream's boundaries.

use jiff::SignedDuration;
use skiff_api::table::human_duration;

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const YEAR: i64 = 365 * DAY;

#[test]
fn human_duration_boundaries() {
    let cases: &[(i64, &str)] = &[
        (-2, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (2 * MINUTE, "2m"),
        (2 * MINUTE + 1, "2m1s"),
        (3 * MINUTE + 20, "3m20s"),
        (10 * MINUTE - 1, "9m59s"),
        (10 * MINUTE, "10m"),
        (10 * MINUTE + 59, "10m"),
        (3 * HOUR - 1, "179m"),
        (3 * HOUR, "3h"),
        (3 * HOUR + 5 * MINUTE + 30, "3h5m"),
        (8 * HOUR - 1, "7h59m"),
        (8 * HOUR, "8h"),
        (48 * HOUR - 1, "47h"),
        (48 * HOUR, "2d"),
        (2 * DAY + 3 * HOUR, "2d3h"),
        (8 * DAY - 1, "7d23h"),
        (8 * DAY, "8d"),
        (2 * YEAR - 1, "729d"),
        (2 * YEAR, "2y"),
        (2 * YEAR + 30 * DAY, "2y30d"),
        (8 * YEAR - 1, "7y364d"),
        (8 * YEAR, "8y"),
        (30 * YEAR, "30y"),
    ];
    for &(secs, expected) in cases {
        assert_eq!(
            human_duration(SignedDuration::from_secs(secs)),
            expected,
            "{secs}s"
        );
    }
}

#[test]
fn human_duration_truncates_subseconds() {
    let d = |ms: i64| human_duration(SignedDuration::from_millis(ms));
    assert_eq!(d(-1999), "0s");
    assert_eq!(d(-2000), "<invalid>");
    assert_eq!(d(119_999), "119s");
    assert_eq!(d(599_999), "9m59s");
}

#[test]
fn human_duration_saturates_like_go() {
    // Go's time.Duration tops out at about 292 years.
    assert_eq!(
        human_duration(SignedDuration::from_secs(400 * YEAR)),
        "292y"
    );
}
