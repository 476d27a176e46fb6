//! Kubernetes resource quantities (`500m`, `1Gi`, `1e3`), parsed, compared,
//! added and printed exactly as apimachinery's `resource.Quantity`.
//!
//! Why exactness matters: upstream re-serializes every quantity it decodes,
//! so `kubectl get -o yaml` shows `1Gi` for a `1024Mi` the user sent, and
//! controllers compare requests with limits. Both must agree with a real
//! cluster to the character, including upstream's quirks:
//!
//! - A quantity remembers its suffix family (decimal SI, binary SI,
//!   decimal exponent) and prints in the same family, with the largest
//!   suffix that loses no precision (`1.5Gi` prints as `1536Mi`, `0.5` as
//!   `500m`).
//! - Parsing rounds up (away from zero) to nano precision; a binary value
//!   below one switches to decimal SI; binary values are capped at 2^63-1.
//! - When the input is already in a form the parser recognises as
//!   canonical, the original text is kept verbatim (so `+1k` stays `+1k`).
//! - A decimal SI exponent with no suffix (above `E`) prints with no suffix
//!   at all: upstream prints `1000E` as `1`. Faithfully reproduced.

mod decimal;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::fmt;

use decimal::Dec;
use serde_json::Value;

/// The regular expression quoted in upstream's format error.
pub const SPLIT_RE: &str = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

/// Why a string is not a quantity; `Display` is upstream's error text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantities must match the regular expression '{SPLIT_RE}'")]
    FormatWrong,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// The suffix family a quantity prints in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `12e6`
    DecimalExponent,
    /// `12Mi` (powers of 1024)
    BinarySI,
    /// `12M` (powers of 1000), also plain numbers and `m`, `u`, `n`.
    DecimalSI,
}

/// A fixed-point quantity, as upstream's `resource.Quantity`.
///
/// Equality and ordering compare values only (`1Gi == 1024Mi`), like
/// upstream's `Cmp`; the format and the remembered text do not take part.
#[derive(Clone, Debug)]
pub struct Quantity {
    value: Dec,
    format: Format,
    /// Upstream's cached string: the input when it was already canonical.
    text: Option<String>,
}

/// Nano scale: parsed values are rounded up to a multiple of `10^-9`.
const NANO: i64 = -9;
/// Upstream's "18 digits always fit in an int64".
const MAX_INT64_FACTORS: i64 = 18;

impl Quantity {
    /// Parses a quantity as upstream's `ParseQuantity` (no surrounding
    /// whitespace allowed).
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        if s == "0" {
            return Ok(Quantity {
                value: Dec::zero(),
                format: Format::DecimalSI,
                text: Some("0".into()),
            });
        }
        let parts = split(s)?;
        let (base, exponent, mut format) = interpret(parts.suffix).ok_or(QuantityError::Suffix)?;

        // The numeric value, exactly: `num.denom × base^exponent`.
        if !parts.value.bytes().any(|c| c.is_ascii_digit()) {
            // Only reachable through upstream's slow path, where inf.Dec
            // refuses a number without digits; the fast path (no rounding
            // needed) accepts it as zero.
            if !fast_path_applies(&parts, base, exponent) {
                return Err(QuantityError::Numeric);
            }
        }
        let digits = format!("{}{}", parts.num, parts.denom);
        let mut value = Dec::from_digits(false, digits.as_bytes(), -(parts.denom.len() as i64));
        value = if base == 10 {
            value.shifted(exponent as i64)
        } else {
            value.mul_pow2(exponent as u32)
        };
        let (rounded, _) = value.round_up(NANO);
        value = rounded;
        if format == Format::BinarySI {
            let max = Dec::from_i64(i64::MAX);
            if value > max {
                value = max;
            }
            if !value.is_zero() && value < Dec::from_i64(1) {
                format = Format::DecimalSI;
            }
        }
        if !parts.positive {
            value = value.negated();
        }
        let text = keeps_text(&parts, base, exponent, format).then(|| s.to_string());
        Ok(Quantity {
            value,
            format,
            text,
        })
    }

    /// Decodes a quantity from JSON as upstream's `UnmarshalJSON`: a string
    /// or a number, surrounding whitespace ignored.
    pub fn from_json(v: &Value) -> Result<Quantity, QuantityError> {
        match v {
            Value::String(s) => Quantity::parse(s.trim()),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => Err(QuantityError::FormatWrong),
        }
    }

    /// An integer quantity in the given format (upstream's `NewQuantity`).
    pub fn from_i64(v: i64, format: Format) -> Quantity {
        Quantity {
            value: Dec::from_i64(v),
            format,
            text: None,
        }
    }

    /// `v / 1000` in the given format (upstream's `NewMilliQuantity`).
    pub fn from_milli(v: i64, format: Format) -> Quantity {
        Quantity {
            value: Dec::from_i64(v).shifted(-3),
            format,
            text: None,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_zero(&self) -> bool {
        self.value.is_zero()
    }

    /// -1, 0 or 1.
    pub fn sign(&self) -> i32 {
        self.value.sign()
    }

    /// Rounds away from zero to a multiple of `10^scale`; returns whether
    /// the value was already exact. Resource lists are rounded to milli
    /// (`scale = -3`) on every decode upstream.
    pub fn round_up(&mut self, scale: i32) -> bool {
        let (v, exact) = self.value.round_up(scale as i64);
        if !exact {
            self.value = v;
            self.text = None;
        }
        exact
    }

    /// The exact sum, in `self`'s format (or `other`'s when `self` is zero,
    /// as upstream). `None` only for absurd operands whose sum would need
    /// more than 65536 digits.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        Some(Quantity {
            value: self.value.checked_add(&other.value)?,
            format,
            text: None,
        })
    }

    /// The value rounded up (away from zero) to an integer, if it fits an
    /// `i64` (upstream's `Value()`).
    pub fn value(&self) -> Option<i64> {
        self.value.round_up(0).0.to_i64()
    }

    /// `ceil(self × 1000)` if it fits an `i64` (upstream's `MilliValue()`).
    pub fn milli_value(&self) -> Option<i64> {
        self.value.shifted(3).round_up(0).0.to_i64()
    }

    /// The canonical form, ignoring any remembered input text.
    fn canonical(&self) -> String {
        if self.value.is_zero() {
            return "0".into();
        }
        let sign = if self.value.is_neg() { "-" } else { "" };
        if self.format == Format::BinarySI {
            let small = self.value > Dec::from_i64(-1024) && self.value < Dec::from_i64(1024);
            if !small {
                let (rounded, exact) = self.value.round_up(0);
                if let (true, Some((m, n))) = (exact, rounded.remove_1024_factors()) {
                    let suffix = match n {
                        1 => "Ki",
                        2 => "Mi",
                        3 => "Gi",
                        4 => "Ti",
                        5 => "Pi",
                        6 => "Ei",
                        _ => "",
                    };
                    let (_, zeros) = m.parts();
                    return format!("{sign}{}{suffix}", m.digit_string(zeros.max(0) as usize));
                }
            }
        }
        // Decimal forms: lower the exponent to a multiple of three.
        let (_, exp) = self.value.parts();
        let pad = exp.rem_euclid(3);
        let exp = exp - pad;
        let number = self.value.digit_string(pad as usize);
        let suffix = match self.format {
            Format::DecimalExponent if exp == 0 => String::new(),
            Format::DecimalExponent => format!("e{exp}"),
            _ => match exp {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                18 => "E",
                // Upstream finds no suffix and prints none (see module doc).
                _ => "",
            }
            .to_string(),
        };
        format!("{sign}{number}{suffix}")
    }
}

impl fmt::Display for Quantity {
    /// Upstream's `String()`: the remembered input if it was canonical,
    /// otherwise the canonical form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.text {
            Some(t) => f.write_str(t),
            None => f.write_str(&self.canonical()),
        }
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Quantity) -> bool {
        self.value == other.value
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Quantity) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Quantity) -> Ordering {
        self.value.cmp(&other.value)
    }
}

/// Parses and prints back: the form upstream stores for a quantity field.
pub fn canonicalize(s: &str) -> Result<String, QuantityError> {
    Quantity::parse(s).map(|q| q.to_string())
}

/// The pieces upstream's scanner splits a quantity into.
struct Parts<'a> {
    positive: bool,
    /// Sign, digits and point as written (`-1.5`).
    value: &'a str,
    /// Integer digits without leading zeros ("0" when none).
    num: &'a str,
    /// Fraction digits as written.
    denom: &'a str,
    suffix: &'a str,
}

/// Upstream's `parseQuantityString`, step for step (it accepts a few
/// oddities the regular expression in its error message would not, such as
/// `.` and `1.G`).
fn split(s: &str) -> Result<Parts<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    let zero = Parts {
        positive,
        value: "0",
        num: "0",
        denom: "",
        suffix: "",
    };
    if pos >= end {
        return Ok(zero);
    }
    let num_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = &s[num_start..pos];
    if pos >= end {
        return Ok(Parts {
            value: s,
            num: if num.is_empty() { "0" } else { num },
            ..zero
        });
    }
    if num.is_empty() {
        num = "0";
    }
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let denom_start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[denom_start..pos];
        if pos >= end {
            return Ok(Parts {
                value: s,
                num,
                denom,
                ..zero
            });
        }
    }
    let value = &s[..pos];
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::FormatWrong);
    }
    Ok(Parts {
        positive,
        value,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

/// `(base, exponent, format)` of a suffix, as upstream's suffixer.
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    let dec = |e| Some((10, e, Format::DecimalSI));
    let bin = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        _ if suffix.len() > 1 && (suffix.starts_with('e') || suffix.starts_with('E')) => {
            // strconv.ParseInt(_, 10, 64) then a truncating int32 cast.
            let rest = &suffix[1..];
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let n: i64 = rest.parse().ok()?;
            Some((10, n as i32, Format::DecimalExponent))
        }
        _ => None,
    }
}

/// Whether upstream's int64 fast path handles this input; returns the
/// shifted digits and the scale when it does.
fn fast_path(parts: &Parts<'_>, base: u32, exponent: i32) -> Option<(String, i64)> {
    let digits_len = (parts.num.len() + parts.denom.len()) as i64;
    let (mut scale, precision, mantissa): (i64, i64, i64) = if base == 10 {
        (exponent as i64, MAX_INT64_FACTORS - digits_len, 1)
    } else if exponent >= 0 && parts.denom.is_empty() {
        let e = exponent as i64;
        (0, 15 - parts.num.len() as i64 - e * 3 / 10 - 1, 1i64 << e)
    } else {
        (0, -1, 1)
    };
    if precision < 0 {
        return None;
    }
    scale -= parts.denom.len() as i64;
    if scale < NANO {
        return None;
    }
    let shifted = format!("{}{}", parts.num, parts.denom);
    let value: i64 = shifted.parse().ok()?;
    value.checked_mul(mantissa)?;
    Some((shifted, scale))
}

fn fast_path_applies(parts: &Parts<'_>, base: u32, exponent: i32) -> bool {
    fast_path(parts, base, exponent).is_some()
}

/// Whether upstream keeps the input text as the quantity's string: only on
/// its fast path, and only when the text is already canonical by its
/// (conservative) test.
fn keeps_text(parts: &Parts<'_>, base: u32, exponent: i32, format: Format) -> bool {
    let Some((shifted, scale)) = fast_path(parts, base, exponent) else {
        return false;
    };
    let value: i64 = shifted.parse().unwrap_or(0);
    match format {
        Format::BinarySI => exponent % 10 == 0 && value & 0x07 != 0,
        _ => scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0'),
    }
}
