//! Just enough of resource quantities for the agent: values in milli-units
//! (CPU) or whole units (bytes), and a divisor for `resourceFieldRef`.

/// Parses a quantity into thousandths of a unit (`100m` → 100, `1` → 1000,
/// `1Gi` → 1073741824000). `None` for malformed input.
pub fn parse_milli(s: &str) -> Option<i128> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    // Exponent forms (1e3) are rare in pod specs; treat `e`/`E` suffixes.
    let (mul_num, mul_den): (i128, i128) = match suffix {
        "" => (1000, 1),
        "m" => (1, 1),
        "u" => (1, 1000),
        "n" => (1, 1_000_000),
        "k" => (1_000_000, 1),
        "M" => (1_000_000_000, 1),
        "G" => (1_000_000_000_000, 1),
        "T" => (1_000_000_000_000_000, 1),
        "Ki" => (1024 * 1000, 1),
        "Mi" => (1024 * 1024 * 1000, 1),
        "Gi" => (1024 * 1024 * 1024 * 1000, 1),
        "Ti" => (1024_i128.pow(4) * 1000, 1),
        _ => {
            let e: u32 = suffix.strip_prefix(['e', 'E'])?.parse().ok()?;
            (1000 * 10_i128.checked_pow(e)?, 1)
        }
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let neg = int.starts_with('-');
    let int: i128 = int.trim_start_matches(['-', '+']).parse().unwrap_or(0);
    let mut value = int * mul_num;
    if !frac.is_empty() {
        let digits = frac.len().min(18) as u32;
        let f: i128 = frac[..digits as usize].parse().ok()?;
        value += f * mul_num / 10_i128.pow(digits);
    }
    value /= mul_den;
    Some(if neg { -value } else { value })
}

/// Whole units, rounded up (`100m` CPU → 1, `1Gi` → 1073741824), as the
/// downward API reports resources with the default divisor.
pub fn ceil_div(milli: i128, divisor_milli: i128) -> i128 {
    if divisor_milli <= 0 {
        return 0;
    }
    (milli + divisor_milli - 1) / divisor_milli
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("2"), Some(2000));
        assert_eq!(parse_milli("0.5"), Some(500));
        assert_eq!(parse_milli("64Mi"), Some(64 * 1024 * 1024 * 1000));
        assert_eq!(parse_milli("1G"), Some(1_000_000_000_000));
        assert_eq!(parse_milli("1e3"), Some(1_000_000));
        assert_eq!(parse_milli("x1"), None);
        assert_eq!(ceil_div(100, 1000), 1);
        assert_eq!(ceil_div(64 * 1024 * 1024 * 1000, 1024 * 1024 * 1000), 64);
    }
}
