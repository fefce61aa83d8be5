//! Client-facing formatting shared by the BFFs: money, dates and text trimming.
//! Pure functions, no I/O.

use chrono::{DateTime, Datelike, Utc};

/// `1234_50, "USD"` → `"$1,234.50"`. Currencies without a symbol here are
/// written with their code (`"1,234.50 CHF"`); zero-decimal currencies
/// (JPY, KRW) have no minor units.
pub fn format_money(amount_minor: i64, currency: &str) -> String {
    let mut out = String::with_capacity(40 + currency.len());
    push_money(&mut out, amount_minor, currency);
    out
}

/// [`format_money`], appended to `out`.
pub fn push_money(out: &mut String, amount_minor: i64, currency: &str) {
    let (symbol, decimals) = match currency {
        "USD" => (Some("$"), 2),
        "EUR" => (Some("€"), 2),
        "GBP" => (Some("£"), 2),
        "JPY" => (Some("¥"), 0),
        "KRW" => (Some("₩"), 0),
        _ => (None, 2),
    };
    let magnitude = amount_minor.unsigned_abs();
    let scale = 10u64.pow(decimals);
    // Written by hand rather than with `format!`: a dashboard shows dozens.
    if amount_minor < 0 {
        out.push('-');
    }
    if let Some(symbol) = symbol {
        out.push_str(symbol);
    }
    push_grouped(out, magnitude / scale);
    if decimals > 0 {
        out.push('.');
        push_zero_padded(out, magnitude % scale, decimals as usize);
    }
    if symbol.is_none() {
        out.push(' ');
        out.push_str(currency);
    }
}

/// `1234567` → `1,234,567`.
fn push_grouped(out: &mut String, mut value: u64) {
    // u64::MAX has 20 digits, so 6 separators.
    let mut buf = [0u8; 26];
    let mut at = buf.len();
    let mut written = 0;
    loop {
        if written > 0 && written % 3 == 0 {
            at -= 1;
            buf[at] = b',';
        }
        at -= 1;
        buf[at] = b'0' + (value % 10) as u8;
        written += 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    push_ascii(out, &buf[at..]);
}

/// `value` in exactly `width` digits (it has at most that many).
fn push_zero_padded(out: &mut String, mut value: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let digits = &mut buf[..width.min(20)];
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
    push_ascii(out, digits);
}

/// `value` without padding.
fn push_decimal(out: &mut String, mut value: u32) {
    let mut buf = [0u8; 10];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    push_ascii(out, &buf[at..]);
}

/// Appends digits and separators written above (all ASCII).
fn push_ascii(out: &mut String, ascii: &[u8]) {
    // Always ASCII, so never the fallback; one copy rather than a char each.
    match std::str::from_utf8(ascii) {
        Ok(text) => out.push_str(text),
        Err(_) => out.extend(ascii.iter().map(|&byte| char::from(byte))),
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `2026-11-25T…` → `"November 25, 2026"` (web).
pub fn long_date(at: &DateTime<Utc>) -> String {
    let mut out = String::with_capacity(18);
    push_long_date(&mut out, at);
    out
}

/// [`long_date`], appended to `out`.
pub fn push_long_date(out: &mut String, at: &DateTime<Utc>) {
    let date = at.date_naive();
    let year = date.year();
    // chrono's `%Y` signs years outside 0..=9999: left to it.
    let (Ok(year @ 0..=9999), Some(month)) =
        (u64::try_from(year), MONTHS.get(date.month0() as usize))
    else {
        out.push_str(&at.format("%B %-d, %Y").to_string());
        return;
    };
    // By hand rather than with chrono's `format`, which parses the pattern
    // on every call.
    out.push_str(month);
    out.push(' ');
    push_decimal(out, date.day());
    out.push_str(", ");
    push_zero_padded(out, year, 4);
}

/// `2026-11-25T…` → `"11/25"` (mobile).
pub fn short_date(at: &DateTime<Utc>) -> String {
    let date = at.date_naive();
    let mut out = String::with_capacity(5);
    push_zero_padded(&mut out, u64::from(date.month()), 2);
    out.push('/');
    push_zero_padded(&mut out, u64::from(date.day()), 2);
    out
}

/// At most `max_chars` characters (not bytes: a multi-byte character is
/// never split), then `"..."` when anything was cut.
pub fn truncate_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((cut, _)) => {
            let mut out = String::with_capacity(cut + 3);
            out.push_str(&text[..cut]);
            out.push_str("...");
            out
        }
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
        let first = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        assert_eq!(long_date(&first), "March 1, 2026");
        let old = Utc.with_ymd_and_hms(987, 12, 31, 0, 0, 0).unwrap();
        assert_eq!(long_date(&old), "December 31, 0987");
    }

    /// The `format!`/chrono versions these replaced, the reference.
    mod reference {
        use chrono::{DateTime, Datelike, Utc};

        pub(super) fn format_money(amount_minor: i64, currency: &str) -> String {
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
            let mut value = magnitude / scale;
            let mut groups = Vec::new();
            while value >= 1000 {
                groups.push(format!("{:03}", value % 1000));
                value /= 1000;
            }
            groups.push(value.to_string());
            groups.reverse();
            let mut number = groups.join(",");
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

        pub(super) fn long_date(at: &DateTime<Utc>) -> String {
            at.format("%B %-d, %Y").to_string()
        }

        pub(super) fn short_date(at: &DateTime<Utc>) -> String {
            format!("{:02}/{:02}", at.month(), at.day())
        }
    }

    #[test]
    fn money_matches_the_reference() {
        let mut amounts = vec![
            0,
            1,
            9,
            10,
            99,
            100,
            999,
            1000,
            99_999,
            100_000,
            123_456_789,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ];
        let mut power = 1i64;
        while let Some(next) = power.checked_mul(10) {
            amounts.extend([power - 1, power, power + 1, next / 3]);
            power = next;
        }
        let negated: Vec<i64> = amounts.iter().map(|a| a.saturating_neg()).collect();
        amounts.extend(negated);
        for currency in ["USD", "EUR", "GBP", "JPY", "KRW", "CHF", "", "usd"] {
            for &amount in &amounts {
                assert_eq!(
                    format_money(amount, currency),
                    reference::format_money(amount, currency),
                    "{amount} {currency}"
                );
            }
        }
    }

    #[test]
    fn dates_match_the_reference() {
        let mut days = Vec::new();
        for year in [
            0, 1, 5, 99, 999, 1970, 2024, 2026, 9999, 10_000, -1, -10_000,
        ] {
            for (month, day) in [(1, 1), (2, 29), (3, 1), (9, 9), (10, 10), (12, 31)] {
                if let Some(at) = Utc.with_ymd_and_hms(year, month, day, 23, 59, 59).single() {
                    days.push(at);
                }
            }
        }
        let first = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        days.extend((0..400).map(|n| first + chrono::Duration::days(n)));
        days.extend([DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC]);
        for at in days {
            assert_eq!(long_date(&at), reference::long_date(&at), "{at}");
            assert_eq!(short_date(&at), reference::short_date(&at), "{at}");
        }
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
