//! An exact, arbitrary-precision signed decimal: `±digits × 10^exp`.
//!
//! Upstream keeps a quantity either as an `int64` with a decimal scale or as
//! an `inf.Dec` (a `big.Int` with a scale). Every observable result (the
//! canonical string, comparisons) depends only on the value, so one exact
//! representation is enough here. Digits are kept in base 10 because the
//! operations quantities need are digit shifts, comparisons, additions and
//! divisions by 1024, all cheap on a digit vector.

use std::cmp::Ordering;

/// The most digits an operation may materialise. Values like `1e999999999`
/// are legal quantities; they stay cheap as long as nothing expands their
/// exponent into digits. Operations that would have to (adding such a value
/// to a small one, printing it in binary form) are refused instead.
pub const MAX_DIGITS: i64 = 1 << 16;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dec {
    neg: bool,
    /// Most significant first, no leading zeros, no trailing zeros; empty
    /// for zero.
    digits: Vec<u8>,
    exp: i64,
}

impl Dec {
    pub fn zero() -> Dec {
        Dec {
            neg: false,
            digits: Vec::new(),
            exp: 0,
        }
    }

    /// Builds `±digits × 10^exp` from ASCII digits (leading zeros allowed).
    pub fn from_digits(neg: bool, ascii: &[u8], exp: i64) -> Dec {
        Dec::normalized(neg, ascii.iter().map(|c| c - b'0').collect(), exp)
    }

    pub fn from_i64(v: i64) -> Dec {
        let s = v.unsigned_abs().to_string();
        Dec::from_digits(v < 0, s.as_bytes(), 0)
    }

    fn normalized(neg: bool, mut digits: Vec<u8>, mut exp: i64) -> Dec {
        let lead = digits.iter().take_while(|d| **d == 0).count();
        digits.drain(..lead);
        while digits.last() == Some(&0) {
            digits.pop();
            exp = exp.saturating_add(1);
        }
        if digits.is_empty() {
            return Dec::zero();
        }
        Dec { neg, digits, exp }
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    pub fn is_neg(&self) -> bool {
        self.neg
    }

    pub fn sign(&self) -> i32 {
        match (self.is_zero(), self.neg) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }

    pub fn negated(&self) -> Dec {
        if self.is_zero() {
            return self.clone();
        }
        Dec {
            neg: !self.neg,
            ..self.clone()
        }
    }

    /// The significant digits and the power of ten they are scaled by, with
    /// no trailing zeros (upstream's "remove all factors of 10").
    pub fn parts(&self) -> (&[u8], i64) {
        (&self.digits, self.exp)
    }

    /// Multiplies by `10^n`.
    pub fn shifted(&self, n: i64) -> Dec {
        if self.is_zero() {
            return self.clone();
        }
        Dec {
            exp: self.exp.saturating_add(n),
            ..self.clone()
        }
    }

    /// Compares magnitudes without expanding exponents.
    fn cmp_abs(&self, other: &Dec) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        // Position of the most significant digit.
        let top_a = self.exp.saturating_add(self.digits.len() as i64);
        let top_b = other.exp.saturating_add(other.digits.len() as i64);
        if top_a != top_b {
            return top_a.cmp(&top_b);
        }
        // Same magnitude: compare digit by digit from the top; a missing
        // digit is a zero.
        let n = self.digits.len().max(other.digits.len());
        for i in 0..n {
            let a = self.digits.get(i).copied().unwrap_or(0);
            let b = other.digits.get(i).copied().unwrap_or(0);
            if a != b {
                return a.cmp(&b);
            }
        }
        Ordering::Equal
    }

    /// Exact sum; `None` when the operands are so far apart in scale that
    /// the sum would need more than [`MAX_DIGITS`] digits.
    pub fn checked_add(&self, other: &Dec) -> Option<Dec> {
        if other.is_zero() {
            return Some(self.clone());
        }
        if self.is_zero() {
            return Some(other.clone());
        }
        let low = self.exp.min(other.exp);
        let top = (self.exp + self.digits.len() as i64).max(other.exp + other.digits.len() as i64);
        if top.saturating_sub(low) > MAX_DIGITS {
            return None;
        }
        let a = self.aligned(low);
        let b = other.aligned(low);
        if self.neg == other.neg {
            return Some(Dec::normalized(self.neg, add_mag(&a, &b), low));
        }
        // Different signs: subtract the smaller magnitude from the larger.
        match self.cmp_abs(other) {
            Ordering::Equal => Some(Dec::zero()),
            Ordering::Greater => Some(Dec::normalized(self.neg, sub_mag(&a, &b), low)),
            Ordering::Less => Some(Dec::normalized(other.neg, sub_mag(&b, &a), low)),
        }
    }

    /// The digits of the magnitude scaled to `10^low` (little-endian).
    fn aligned(&self, low: i64) -> Vec<u8> {
        let zeros = (self.exp - low) as usize;
        let mut v = vec![0u8; zeros];
        v.extend(self.digits.iter().rev());
        v
    }

    /// Rounds away from zero to a multiple of `10^scale` (upstream's
    /// `inf.RoundUp`, which despite the name rounds away from zero).
    /// Returns the rounded value and whether it was already exact.
    pub fn round_up(&self, scale: i64) -> (Dec, bool) {
        if self.is_zero() || self.exp >= scale {
            return (self.clone(), true);
        }
        // Normalized values end in a non-zero digit, so anything dropped is
        // a non-zero remainder.
        let drop = scale - self.exp;
        let len = self.digits.len() as i64;
        let kept: Vec<u8> = if drop >= len {
            Vec::new()
        } else {
            self.digits[..(len - drop) as usize].to_vec()
        };
        let mut le: Vec<u8> = kept.into_iter().rev().collect();
        add_one(&mut le);
        let be: Vec<u8> = le.into_iter().rev().collect();
        (Dec::normalized(self.neg, be, scale), false)
    }

    /// Multiplies by `2^k` (binary suffixes, `k <= 60`).
    pub fn mul_pow2(&self, k: u32) -> Dec {
        let mut le: Vec<u8> = self.digits.iter().rev().copied().collect();
        let mut left = k;
        while left > 0 {
            let step = left.min(20);
            mul_small(&mut le, 1u64 << step);
            left -= step;
        }
        Dec::normalized(self.neg, le.into_iter().rev().collect(), self.exp)
    }

    /// For an integer value: the magnitude's digits (little-endian), with
    /// the exponent expanded. `None` for fractions or huge values.
    fn integer_digits_le(&self) -> Option<Vec<u8>> {
        if self.exp < 0 || self.exp + self.digits.len() as i64 > MAX_DIGITS {
            return None;
        }
        let mut v = vec![0u8; self.exp as usize];
        v.extend(self.digits.iter().rev());
        Some(v)
    }

    /// For an integer value: `(m, n)` with `self == m × 1024^n` and `m` not
    /// divisible by 1024. `None` when the value is not a (small enough)
    /// integer.
    pub fn remove_1024_factors(&self) -> Option<(Dec, u32)> {
        let mut le = self.integer_digits_le()?;
        let mut n = 0u32;
        loop {
            let mut q = le.clone();
            if q.is_empty() || div_small(&mut q, 1024) != 0 {
                break;
            }
            le = q;
            n += 1;
        }
        Some((
            Dec::normalized(self.neg, le.into_iter().rev().collect(), 0),
            n,
        ))
    }

    /// The value as an `i64`, when it is an integer that fits.
    pub fn to_i64(&self) -> Option<i64> {
        let le = self.integer_digits_le()?;
        let mut v: i128 = 0;
        for d in le.iter().rev() {
            v = v.checked_mul(10)?.checked_add(*d as i128)?;
            if v > i64::MAX as i128 + 1 {
                return None;
            }
        }
        let v = if self.neg { -v } else { v };
        i64::try_from(v).ok()
    }

    /// Plain decimal digits of the magnitude followed by `extra` zeros.
    pub fn digit_string(&self, extra: usize) -> String {
        let mut s: String = self.digits.iter().map(|d| (b'0' + d) as char).collect();
        s.extend(std::iter::repeat_n('0', extra));
        s
    }
}

impl Ord for Dec {
    fn cmp(&self, other: &Dec) -> Ordering {
        match (self.sign(), other.sign()) {
            (a, b) if a != b => a.cmp(&b),
            (-1, _) => other.cmp_abs(self),
            _ => self.cmp_abs(other),
        }
    }
}

impl PartialOrd for Dec {
    fn partial_cmp(&self, other: &Dec) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn add_mag(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let mut carry = 0u8;
    for i in 0..a.len().max(b.len()) {
        let s = a.get(i).copied().unwrap_or(0) + b.get(i).copied().unwrap_or(0) + carry;
        out.push(s % 10);
        carry = s / 10;
    }
    if carry > 0 {
        out.push(carry);
    }
    out.into_iter().rev().collect()
}

/// `a - b` for little-endian magnitudes with `a >= b`; big-endian result.
fn sub_mag(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let mut borrow = 0i8;
    for (i, ai) in a.iter().enumerate() {
        let mut d = *ai as i8 - b.get(i).copied().unwrap_or(0) as i8 - borrow;
        borrow = 0;
        if d < 0 {
            d += 10;
            borrow = 1;
        }
        out.push(d as u8);
    }
    out.into_iter().rev().collect()
}

fn add_one(le: &mut Vec<u8>) {
    for d in le.iter_mut() {
        if *d == 9 {
            *d = 0;
        } else {
            *d += 1;
            return;
        }
    }
    le.push(1);
}

fn mul_small(le: &mut Vec<u8>, m: u64) {
    let mut carry = 0u64;
    for d in le.iter_mut() {
        let v = *d as u64 * m + carry;
        *d = (v % 10) as u8;
        carry = v / 10;
    }
    while carry > 0 {
        le.push((carry % 10) as u8);
        carry /= 10;
    }
}

/// Divides a little-endian magnitude in place; returns the remainder.
fn div_small(le: &mut Vec<u8>, m: u64) -> u64 {
    let mut rem = 0u64;
    for d in le.iter_mut().rev() {
        let v = rem * 10 + *d as u64;
        *d = (v / m) as u8;
        rem = v % m;
    }
    while le.last() == Some(&0) {
        le.pop();
    }
    rem
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let all = format!("{int}{frac}");
        Dec::from_digits(neg, all.as_bytes(), -(frac.len() as i64))
    }

    #[test]
    fn arithmetic() {
        assert_eq!(d("1.5").checked_add(&d("2.25")), Some(d("3.75")));
        assert_eq!(d("1").checked_add(&d("-3")), Some(d("-2")));
        assert_eq!(d("-1").checked_add(&d("1")), Some(Dec::zero()));
        assert_eq!(d("999").checked_add(&d("1")), Some(d("1000")));
        assert!(d("1").shifted(1 << 20).checked_add(&d("1")).is_none());
        assert!(d("0.001") < d("0.01"));
        assert!(d("-5") < d("-4"));
        assert!(d("-5") < d("0"));
        assert_eq!(d("100").cmp(&d("1").shifted(2)), Ordering::Equal);
        assert_eq!(d("9.01").round_up(-1), (d("9.1"), false));
        assert_eq!(d("-9.01").round_up(0), (d("-10"), false));
        assert_eq!(d("0.0001").round_up(-3), (d("0.001"), false));
        assert_eq!(d("3").mul_pow2(10), d("3072"));
        assert_eq!(d("3072").remove_1024_factors(), Some((d("3"), 1)));
        assert_eq!(d("1.5").remove_1024_factors(), None);
        assert_eq!(d("-9223372036854775808").to_i64(), Some(i64::MIN));
        assert_eq!(d("9223372036854775808").to_i64(), None);
    }
}
