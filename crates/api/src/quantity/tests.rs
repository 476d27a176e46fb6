//! Tables taken from apimachinery's `quantity_test.go`.

use super::*;
use serde_json::json;

/// Upstream's `decQuantity(i, exponent, format)`: `i × 10^exponent`.
fn dq(i: i64, exp: i64, format: Format) -> Quantity {
    Quantity {
        value: Dec::from_i64(i).shifted(exp),
        format,
        text: None,
    }
}

use Format::{BinarySI as B, DecimalExponent as X, DecimalSI as D};

fn parse_table() -> Vec<(&'static str, Quantity)> {
    let max = Quantity {
        value: Dec::from_i64(i64::MAX),
        format: B,
        text: None,
    };
    vec![
        ("0", dq(0, 0, D)),
        ("0n", dq(0, 0, D)),
        ("0u", dq(0, 0, D)),
        ("0m", dq(0, 0, D)),
        ("0Ki", dq(0, 0, B)),
        ("0k", dq(0, 0, D)),
        ("0Mi", dq(0, 0, B)),
        ("0M", dq(0, 0, D)),
        ("0Gi", dq(0, 0, B)),
        ("0G", dq(0, 0, D)),
        ("0Ti", dq(0, 0, B)),
        ("0T", dq(0, 0, D)),
        ("1", dq(1, 0, D)),
        ("1Ki", dq(1024, 0, B)),
        ("8Ki", dq(8 * 1024, 0, B)),
        ("7Mi", dq(7 << 20, 0, B)),
        ("6Gi", dq(6 << 30, 0, B)),
        ("5Ti", dq(5 << 40, 0, B)),
        ("4Pi", dq(4 << 50, 0, B)),
        ("3Ei", dq(3 << 60, 0, B)),
        ("10Ti", dq(10 << 40, 0, B)),
        ("100Ti", dq(100 << 40, 0, B)),
        ("5n", dq(5, -9, D)),
        ("4u", dq(4, -6, D)),
        ("3m", dq(3, -3, D)),
        ("9", dq(9, 0, D)),
        ("8k", dq(8, 3, D)),
        ("50k", dq(5, 4, D)),
        ("7M", dq(7, 6, D)),
        ("6G", dq(6, 9, D)),
        ("5T", dq(5, 12, D)),
        ("40T", dq(4, 13, D)),
        ("300T", dq(3, 14, D)),
        ("2P", dq(2, 15, D)),
        ("1E", dq(1, 18, D)),
        ("1E-3", dq(1, -3, X)),
        ("1e3", dq(1, 3, X)),
        ("1E6", dq(1, 6, X)),
        ("1e9", dq(1, 9, X)),
        ("1E12", dq(1, 12, X)),
        ("1e15", dq(1, 15, X)),
        ("1E18", dq(1, 18, X)),
        ("1e14", dq(1, 14, X)),
        ("1e13", dq(1, 13, X)),
        ("100.035k", dq(100035, 0, D)),
        ("0.001", dq(1, -3, D)),
        ("0.0005k", dq(5, -1, D)),
        ("0.005", dq(5, -3, D)),
        ("0.05", dq(5, -2, D)),
        ("0.5", dq(5, -1, D)),
        ("0.00050k", dq(5, -1, D)),
        ("0.00500", dq(5, -3, D)),
        ("0.05000", dq(5, -2, D)),
        ("0.50000", dq(5, -1, D)),
        ("0.5e0", dq(5, -1, X)),
        ("0.5e-1", dq(5, -2, X)),
        ("0.5e-2", dq(5, -3, X)),
        ("10.035M", dq(10035, 3, D)),
        ("1.2e3", dq(12, 2, X)),
        ("1.3E+6", dq(13, 5, X)),
        ("1.40e9", dq(14, 8, X)),
        ("1.53E12", dq(153, 10, X)),
        ("1.6e15", dq(16, 14, X)),
        ("1.7E18", dq(17, 17, X)),
        ("9.01", dq(901, -2, D)),
        ("8.1k", dq(81, 2, D)),
        ("7.123456M", dq(7123456, 0, D)),
        ("6.987654321G", dq(6987654321, 0, D)),
        ("5.444T", dq(5444, 9, D)),
        ("40.1T", dq(401, 11, D)),
        ("300.2T", dq(3002, 11, D)),
        ("2.5P", dq(25, 14, D)),
        ("1.01E", dq(101, 16, D)),
        ("3.001n", dq(4, -9, D)),
        ("1.1E-9", dq(2, -9, X)),
        ("0.0000000001", dq(1, -9, D)),
        ("0.0000000005", dq(1, -9, D)),
        ("0.00000000050", dq(1, -9, D)),
        ("0.5e-9", dq(1, -9, X)),
        ("0.9n", dq(1, -9, D)),
        ("0.00000012345", dq(124, -9, D)),
        ("0.00000012354", dq(124, -9, D)),
        ("9Ei", max.clone()),
        ("9223372036854775807Ki", max),
        ("12E", dq(12, 18, D)),
        ("100.035Ki", dq(10243584, -2, B)),
        ("0.5Mi", dq(512 * 1024, 0, B)),
        ("0.05Gi", dq(536870912, -1, B)),
        ("0.025Ti", dq(274877906944, -1, B)),
        ("0.000000000001Ki", dq(2, -9, D)),
        (".001", dq(1, -3, D)),
        (".0001k", dq(100, -3, D)),
        ("1.", dq(1, 0, D)),
        ("1.G", dq(1, 9, D)),
    ]
}

#[test]
fn parse_values_and_formats() {
    assert_eq!(Quantity::parse(""), Err(QuantityError::FormatWrong));
    for (input, want) in parse_table() {
        for (prefix, negate) in [("", false), ("-", true), ("+", false)] {
            let s = format!("{prefix}{input}");
            let got = Quantity::parse(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            let want_value = if negate {
                want.value.negated()
            } else {
                want.value.clone()
            };
            assert_eq!(got.value, want_value, "{s}");
            assert_eq!(got.format, want.format, "{s}");
        }
    }
}

#[test]
fn parse_invalid() {
    for s in [
        "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-", " 1", "1 ",
    ] {
        assert!(Quantity::parse(s).is_err(), "{s} parsed");
    }
    assert_eq!(
        Quantity::parse("1.1.M").unwrap_err().to_string(),
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    assert_eq!(
        Quantity::parse("1ki").unwrap_err().to_string(),
        "unable to parse quantity's suffix"
    );
    assert_eq!(Quantity::parse(".e-10"), Err(QuantityError::Numeric));
}

/// `(value, canonical, alternate spelling that canonicalizes to it)`.
#[test]
fn string_canonical_forms() {
    let table = [
        (dq(1 << 30, 0, B), "1Gi", "1024Mi"),
        (dq(300 << 20, 0, B), "300Mi", "307200Ki"),
        (dq(6 * 1024, 0, B), "6Ki", ""),
        (dq(1001 << 30, 0, B), "1001Gi", "1025024Mi"),
        (dq(1 << 40, 0, B), "1Ti", "1024Gi"),
        (dq(5, 0, B), "5", "5000m"),
        (dq(500, -3, B), "500m", "0.5"),
        (dq(1, 9, D), "1G", "1000M"),
        (dq(1000, 6, D), "1G", "0.001T"),
        (dq(1000000, 3, D), "1G", ""),
        (dq(1000000000, 0, D), "1G", ""),
        (dq(1, -3, D), "1m", "1000u"),
        (dq(80, -3, D), "80m", ""),
        (dq(1080, -3, D), "1080m", "1.08"),
        (dq(108, -2, D), "1080m", "1080000000n"),
        (dq(10800, -4, D), "1080m", ""),
        (dq(300, 6, D), "300M", ""),
        (dq(1, 12, D), "1T", ""),
        (dq(1234567, 6, D), "1234567M", ""),
        (dq(1234567, -3, B), "1234567m", ""),
        (dq(3, 3, D), "3k", ""),
        (dq(1025, 0, B), "1025", ""),
        (dq(0, 0, D), "0", ""),
        (dq(0, 0, B), "0", ""),
        (dq(1, 9, X), "1e9", ".001e12"),
        (dq(1, -3, X), "1e-3", "0.001e0"),
        (dq(1, -9, X), "1e-9", "1000e-12"),
        (dq(80, -3, X), "80e-3", ""),
        (dq(300, 6, X), "300e6", ""),
        (dq(1, 12, X), "1e12", ""),
        (dq(1, 3, X), "1e3", ""),
        (dq(3, 3, X), "3e3", ""),
        (dq(3, 3, D), "3k", ""),
        (dq(0, 0, X), "0", "00"),
        (dq(1, -9, D), "1n", ""),
        (dq(80, -9, D), "80n", ""),
        (dq(1080, -9, D), "1080n", ""),
        (dq(108, -8, D), "1080n", ""),
        (dq(10800, -10, D), "1080n", ""),
        (dq(1, -6, D), "1u", ""),
        (dq(80, -6, D), "80u", ""),
        (dq(1080, -6, D), "1080u", ""),
    ];
    for (q, canonical, alternate) in table {
        assert_eq!(q.to_string(), canonical, "{q:?}");
        // A canonical input is kept verbatim.
        let parsed = Quantity::parse(canonical).unwrap();
        assert_eq!(parsed.text.as_deref(), Some(canonical), "{canonical}");
        if !alternate.is_empty() {
            let alt = Quantity::parse(alternate).unwrap();
            assert_eq!(alt.text, None, "{alternate}");
            assert_eq!(alt.to_string(), canonical, "{alternate}");
        }
        if !q.is_zero() {
            let neg = Quantity {
                value: q.value.negated(),
                ..q.clone()
            };
            assert_eq!(neg.to_string(), format!("-{canonical}"));
        }
    }
}

#[test]
fn parse_emit() {
    for (input, want) in [
        ("1Ki", "1Ki"),
        ("1Mi", "1Mi"),
        ("1Gi", "1Gi"),
        ("1024Mi", "1Gi"),
        ("1000M", "1G"),
        (".001Ki", "1024m"),
        (".000001Ki", "1024u"),
        (".000000001Ki", "1024n"),
        (".000000000001Ki", "2n"),
    ] {
        assert_eq!(canonicalize(input).unwrap(), want, "{input}");
        assert_eq!(
            canonicalize(&format!("-{input}")).unwrap(),
            format!("-{want}"),
            "-{input}"
        );
    }
}

/// Upstream's `TestParseQuantity`: input and re-serialized form (same as
/// the input unless given).
#[test]
fn reserialize_large_values() {
    let table: &[(&str, &str)] = &[
        ("-999999999999999999", ""),
        ("999999999999999999", ""),
        ("-999999999999999999.0", "-999999999999999999"),
        ("999999999999999999.1", "999999999999999999100m"),
        ("-9999999999999999999", ""),
        ("9999999999999999999", ""),
        ("-1E", ""),
        ("1E", ""),
        ("-1000000000000000000", "-1E"),
        ("1000000000000000000", "1E"),
        ("-1.0E", "-1E"),
        ("1.0E", "1E"),
        ("1000000000000000000.0", "1E"),
        ("9999999999999999999000m", "9999999999999999999"),
        ("-9999999999999999999.1", "-9999999999999999999100m"),
        ("1.0000000000000000001E", "1000000000000000000100m"),
        ("1000000000000000000.1", "1000000000000000000100m"),
        ("1.000000000000000001E", "1000000000000000001"),
        ("1000000000000000001", ""),
        ("-10E", ""),
        ("10E", ""),
        ("10000000000000000000", "10E"),
        ("-10.0E", "-10E"),
        ("10000000000000000000000m", "10E"),
        ("10.0000000000000000001E", "10000000000000000000100m"),
        ("10.000000000000000001E", "10000000000000000001"),
        ("-9223372036854775809", ""),
        ("9223372036854775806.0", "9223372036854775806"),
        ("-9223372036854775809000m", "-9223372036854775809"),
        ("9223372036854775806.1", "9223372036854775806100m"),
        ("-9223372036854775808", ""),
        ("9223372036854775807", ""),
        ("9223372036854775807000m", "9223372036854775807"),
        ("-9223372036854775808.1", "-9223372036854775808100m"),
        ("9223372036854775808", ""),
        ("-9223372036854775807.0", "-9223372036854775807"),
    ];
    for (input, want) in table {
        let want = if want.is_empty() { input } else { want };
        assert_eq!(canonicalize(input).unwrap(), *want, "{input}");
    }
}

#[test]
fn kept_text_and_quirks() {
    // Canonical-looking input is kept as written, sign and all.
    assert_eq!(canonicalize("+1k").unwrap(), "+1k");
    assert_eq!(canonicalize("01").unwrap(), "01");
    assert_eq!(canonicalize("1.Gi").unwrap(), "1.Gi");
    // Upstream finds no suffix above E and prints none.
    assert_eq!(canonicalize("1000E").unwrap(), "1");
    assert_eq!(canonicalize(".").unwrap(), "0");
    assert_eq!(canonicalize("-").unwrap(), "0");
    assert_eq!(canonicalize("1e4").unwrap(), "10e3");
    assert_eq!(canonicalize("1024Mi").unwrap(), "1Gi");
    assert_eq!(canonicalize("1000m").unwrap(), "1");
    assert_eq!(canonicalize("1.5Gi").unwrap(), "1536Mi");
    assert_eq!(canonicalize("0.5").unwrap(), "500m");
    assert_eq!(canonicalize("1e1000000000").unwrap(), "10e999999999");
}

#[test]
fn round_up() {
    let table = [
        ("9.01", -3, dq(901, -2, D), true),
        ("9.01", -2, dq(901, -2, D), true),
        ("9.01", -1, dq(91, -1, D), false),
        ("9.01", 0, dq(10, 0, D), false),
        ("9.01", 1, dq(10, 0, D), false),
        ("9.01", 2, dq(100, 0, D), false),
        ("-9.01", -3, dq(-901, -2, D), true),
        ("-9.01", -1, dq(-91, -1, D), false),
        ("-9.01", 0, dq(-10, 0, D), false),
        ("-9.01", 2, dq(-100, 0, D), false),
    ];
    for (input, scale, want, exact) in table {
        let mut q = Quantity::parse(input).unwrap();
        assert_eq!(q.round_up(scale), exact, "{input} {scale}");
        assert_eq!(q, want, "{input} {scale}");
    }
    let mut q = Quantity::parse("0.1m").unwrap();
    q.round_up(-3);
    assert_eq!(q.to_string(), "1m");
    let mut q = Quantity::parse("1u").unwrap();
    q.round_up(-3);
    assert_eq!(q.to_string(), "1m");
}

#[test]
fn compare() {
    let p = |s| Quantity::parse(s).unwrap();
    assert_eq!(p("0").cmp(&p("0")), Ordering::Equal);
    assert_eq!(p("100m").cmp(&p("50m")), Ordering::Greater);
    assert_eq!(p("50m").cmp(&p("100m")), Ordering::Less);
    assert_eq!(p("10000T").cmp(&p("100Gi")), Ordering::Greater);
    assert_eq!(p("1Gi"), p("1024Mi"));
    assert!(p("2") > p("1"));
    assert!(p("-1") < p("0"));
    assert!(dq(800, -3, D) < dq(1, 0, D));
    assert!(dq(800, -3, D) > dq(79, -2, D));
    assert!(dq(i64::MAX, -16, D) < dq(1, 3, D));
    assert!(dq(i64::MIN, -19, D) > dq(-1, 0, D));
}

#[test]
fn add() {
    let sum = |a: Quantity, b: Quantity| a.checked_add(&b).unwrap();
    assert_eq!(sum(dq(10, 0, D), dq(1, 1, D)), dq(20, 0, D));
    let s = sum(dq(10, 0, D), dq(1, 0, B));
    assert_eq!((s.clone(), s.format), (dq(11, 0, D), D));
    let s = sum(dq(10, 0, B), dq(1, 0, D));
    assert_eq!((s.clone(), s.format), (dq(11, 0, B), B));
    // Adding to zero takes the other operand's format.
    let s = sum(dq(0, 0, D), dq(1, 30, B));
    assert_eq!(s.format, B);
    let p = |s| Quantity::parse(s).unwrap();
    assert_eq!(sum(p("1Gi"), p("512Mi")).to_string(), "1536Mi");
    assert_eq!(sum(p("100m"), p("1")).to_string(), "1100m");
    assert_eq!(sum(p("1"), p("-1")).to_string(), "0");
}

#[test]
fn json_input() {
    for (v, want) in [
        (json!(" 1"), "1"),
        (json!("1 "), "1"),
        (json!(1), "1"),
        (json!(10), "10"),
        (json!(-1), "-1"),
        (json!(0.5), "500m"),
        (json!(1.5), "1500m"),
    ] {
        assert_eq!(Quantity::from_json(&v).unwrap().to_string(), want, "{v}");
    }
    assert!(Quantity::from_json(&json!(true)).is_err());
    assert!(Quantity::from_json(&json!({})).is_err());
}

#[test]
fn integer_views() {
    let p = |s| Quantity::parse(s).unwrap();
    assert_eq!(p("1500m").value(), Some(2));
    assert_eq!(p("1500m").milli_value(), Some(1500));
    assert_eq!(p("1Gi").value(), Some(1 << 30));
    assert_eq!(p("0.1m").milli_value(), Some(1));
    assert_eq!(p("100E").value(), None);
    assert_eq!(Quantity::from_milli(250, D).to_string(), "250m");
    assert_eq!(Quantity::from_i64(2048, B).to_string(), "2Ki");
}
