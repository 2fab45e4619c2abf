//! The three faces of a [`Report`](crate::analytics::report::Report): JSON (the stable schema),
//! CSV (spreadsheets) and HTML (the dashboard).

pub mod budgets;
pub mod csv;
pub mod html;
pub mod json;

use crate::money::pricing::{Usd, PICO};

/// `$1,234.57` (or `$0.0123` below a dollar): rounded half up, for reading, never for sums.
pub fn usd_for_display(u: Usd) -> String {
    let decimals: u32 = if u.0 >= PICO { 2 } else { 4 };
    let unit = 10u64.pow(12 - decimals);
    let rounded = u.0 / unit + u64::from(u.0 % unit >= unit / 2);
    let whole = rounded / 10u64.pow(decimals);
    let frac = rounded % 10u64.pow(decimals);
    format!("${}.{frac:0width$}", thousands(whole), width = decimals as usize)
}

/// `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share as a percentage with one decimal: `6.1%`.
pub fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_rounding() {
        assert_eq!(usd_for_display(Usd::parse_dollars("1234.565").unwrap()), "$1,234.57");
        assert_eq!(usd_for_display(Usd::parse_dollars("0.01234").unwrap()), "$0.0123");
        assert_eq!(usd_for_display(Usd::parse_dollars("0.00005").unwrap()), "$0.0001");
        assert_eq!(usd_for_display(Usd::ZERO), "$0.0000");
        assert_eq!(usd_for_display(Usd::parse_dollars("0.99995").unwrap()), "$1.0000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(percent(0.0612), "6.1%");
    }
}
