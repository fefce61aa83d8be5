//! Client-facing formatting shared by the BFFs: money, dates and text trimming.
//! Pure functions, no I/O.

use chrono::{DateTime, Datelike, Utc};

/// `1234_50, "USD"` → `"$1,234.50"`. Currencies without a symbol here are
/// written with their code (`"1,234.50 CHF"`); zero-decimal currencies
/// (JPY, KRW) have no minor units.
pub fn format_money(amount_minor: i64, currency: &str) -> String {
    let (symbol, decimals) = match currency {
        "USD" => (Some("$"), 2),
        "EUR" => (Some("€"), 2),
        "GBP" => (Some("£"), 2),
        "JPY" => (Some("¥"), 0),
        "KRW" => (Some("₩"), 0),
        _ => (None, 2),
    };
    let sign = if amount_minor < 0 { "-" } else { "" };
    let magnitude = amount_minor.unsigned_abs();
    let scale = 10u64.pow(decimals);
    let mut number = group_thousands(magnitude / scale);
    if decimals > 0 {
        number.push_str(&format!(
            ".{:0width$}",
            magnitude % scale,
            width = decimals as usize
        ));
    }
    match symbol {
        Some(symbol) => format!("{sign}{symbol}{number}"),
        None => format!("{sign}{number} {currency}"),
    }
}

fn group_thousands(mut value: u64) -> String {
    let mut groups = Vec::new();
    while value >= 1000 {
        groups.push(format!("{:03}", value % 1000));
        value /= 1000;
    }
    groups.push(value.to_string());
    groups.reverse();
    groups.join(",")
}

/// `2026-11-25T…` → `"November 25, 2026"` (web).
pub fn long_date(at: &DateTime<Utc>) -> String {
    at.format("%B %-d, %Y").to_string()
}

/// `2026-11-25T…` → `"11/25"` (mobile).
pub fn short_date(at: &DateTime<Utc>) -> String {
    format!("{:02}/{:02}", at.month(), at.day())
}

/// At most `max_chars` characters (not bytes: a multi-byte character is
/// never split), then `"..."` when anything was cut.
pub fn truncate_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}...", &text[..cut]),
    }
}

/// Rounded to one decimal, half away from zero: 4.25 → 4.3, 4.349 → 4.3.
pub fn round_one_decimal(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn money_is_grouped_and_symbolised() {
        assert_eq!(format_money(123_450, "USD"), "$1,234.50");
        assert_eq!(format_money(12_999, "USD"), "$129.99");
        assert_eq!(format_money(5, "USD"), "$0.05");
        assert_eq!(format_money(0, "USD"), "$0.00");
        assert_eq!(format_money(-1999, "USD"), "-$19.99");
        assert_eq!(format_money(12_345_678_900, "USD"), "$123,456,789.00");
        assert_eq!(format_money(100_000, "EUR"), "€1,000.00");
        assert_eq!(format_money(1500, "JPY"), "¥1,500");
        assert_eq!(format_money(123_450, "CHF"), "1,234.50 CHF");
    }

    #[test]
    fn dates_in_both_lengths() {
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 14, 30, 0).unwrap();
        assert_eq!(long_date(&at), "November 25, 2026");
        assert_eq!(short_date(&at), "11/25");
        let early = Utc.with_ymd_and_hms(2026, 3, 5, 0, 0, 0).unwrap();
        assert_eq!(long_date(&early), "March 5, 2026");
        assert_eq!(short_date(&early), "03/05");
    }

    #[test]
    fn truncation_counts_characters() {
        let thirty = "a".repeat(30);
        assert_eq!(truncate_chars(&thirty, 30), thirty);
        assert_eq!(truncate_chars(&"a".repeat(31), 30), format!("{thirty}..."));
        let accented = "é".repeat(31);
        assert_eq!(
            truncate_chars(&accented, 30),
            format!("{}...", "é".repeat(30))
        );
        assert_eq!(truncate_chars("", 30), "");
    }

    #[test]
    fn ratings_round_to_one_decimal() {
        assert_eq!(round_one_decimal(4.37), 4.4);
        assert_eq!(round_one_decimal(4.34), 4.3);
        assert_eq!(round_one_decimal(5.0), 5.0);
    }
}
