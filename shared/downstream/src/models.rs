//! Serde models of the downstream contract (`schema/downstream.openapi.json`).
//!
//! Field names are the wire names (snake_case). Unknown fields are tolerated so a
//! service can grow; a missing required field fails decoding, which the client
//! reports as a bad response. devstack serves these same types, so the reference
//! services cannot drift from what the clients decode.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Ids, codes and other short text of the models decoded on every request
/// (orders, recommendations, analytics): up to 24 bytes are kept inline,
/// without an allocation each (~70 per dashboard request).
pub use compact_str::CompactString;

/// Integer minor units of `currency` (e.g. cents).
pub type Cents = i64;

// ---------------------------------------------------------------- users

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub avatar: Avatar,
    pub membership_level: String,
    pub loyalty_points: i64,
    pub unread_notifications_count: i64,
    pub can_checkout: bool,
    pub addresses: Vec<Address>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Avatar {
    pub thumbnail_url: String,
    pub high_res_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub id: String,
    pub line1: String,
    pub city: String,
    pub postal_code: String,
    pub country: String,
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserAnalytics {
    pub total_spent_cents: Cents,
    pub currency: CompactString,
    pub orders_this_month: i64,
    pub favorite_categories: Vec<CompactString>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wishlist {
    pub product_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentMethod {
    pub id: String,
    pub label: String,
    pub is_default: bool,
}

// ------------------------------------------------------------- products

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub description: String,
    pub price_cents: Cents,
    pub original_price_cents: Cents,
    pub discount_percentage: i64,
    pub currency: String,
    pub average_rating: f64,
    pub review_count: i64,
    pub category_id: String,
    pub thumbnail_url: String,
    pub image_gallery: Vec<String>,
    /// Ordered by name so output is deterministic.
    pub specifications: BTreeMap<String, String>,
    pub inventory_status: InventoryStatus,
    pub shipping_options: Vec<ShippingOption>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InventoryStatus {
    InStock,
    LowStock,
    OutOfStock,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShippingOption {
    pub id: String,
    pub label: String,
    pub price_cents: Cents,
    pub estimated_days: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductPage {
    pub items: Vec<Product>,
    pub total: i64,
    pub page: i64,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub id: String,
    pub author_name: String,
    pub rating: i64,
    pub title: String,
    pub body: String,
    #[serde(deserialize_with = "rfc3339::deserialize")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelatedProducts {
    pub product_ids: Vec<String>,
}

// --------------------------------------------------------------- orders

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: CompactString,
    pub user_id: CompactString,
    pub status: OrderStatus,
    pub total_cents: Cents,
    pub currency: CompactString,
    #[serde(deserialize_with = "rfc3339::deserialize")]
    pub created_at: DateTime<Utc>,
    pub items: Vec<OrderItem>,
    pub tracking_number: Option<CompactString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Placed,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub product_id: CompactString,
    pub quantity: i64,
    pub unit_price_cents: Cents,
}

/// One line of a cart, as the order service takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartItem {
    pub product_id: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuoteRequest {
    pub user_id: String,
    pub items: Vec<CartItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    pub subtotal_cents: Cents,
    pub discount_cents: Cents,
    pub shipping_cents: Cents,
    pub tax_cents: Cents,
    pub total_cents: Cents,
    pub currency: String,
    pub shipping_options: Vec<ShippingOption>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaceOrderRequest {
    pub user_id: String,
    pub items: Vec<CartItem>,
    pub address_id: String,
    pub shipping_option_id: String,
    pub payment_method_id: String,
}

// --------------------------------------------------------- order events

/// The `event:` type of every event of `GET /order-events`.
pub const ORDER_EVENT_TYPE: &str = "order";

/// How many of its last events the order service keeps at least, for
/// streams resuming with `Last-Event-ID` (the contract's figure).
pub const ORDER_EVENTS_KEPT: usize = 1_000;

/// The id of an order event (`id:` of `GET /order-events`): a decimal
/// integer, increasing, never restarting. What `Last-Event-ID` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub u64);

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Not a decimal event id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an event id is a decimal integer")]
pub struct InvalidEventId;

impl std::str::FromStr for EventId {
    type Err = InvalidEventId;

    /// Digits only (no sign, no spaces): what the service writes after `id: `.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidEventId);
        }
        s.parse().map(EventId).map_err(|_| InvalidEventId)
    }
}

/// What happened to the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderEventType {
    /// `POST /orders` created it.
    #[serde(rename = "order.placed")]
    Placed,
    /// Its status or tracking number changed.
    #[serde(rename = "order.status_changed")]
    StatusChanged,
}

/// The `data:` of one `GET /order-events` event: the order's state right
/// after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub event_type: OrderEventType,
    pub order_id: CompactString,
    pub user_id: CompactString,
    pub status: OrderStatus,
    pub tracking_number: Option<CompactString>,
    #[serde(deserialize_with = "rfc3339::deserialize")]
    pub at: DateTime<Utc>,
}

// ------------------------------------------------------- recommendations

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub product_id: CompactString,
    pub score: f64,
    pub reason: Option<CompactString>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarProduct {
    pub product_id: String,
    pub score: f64,
}

// -------------------------------------------------------------- devices

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    pub owner_id: String,
    pub status: DeviceStatus,
    pub temperature: Option<f64>,
    pub battery_level: Option<i64>,
    #[serde(deserialize_with = "rfc3339::deserialize")]
    pub last_update: DateTime<Utc>,
    pub settings: DeviceSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Online,
    Offline,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceSettings {
    pub target_temperature: f64,
    pub mode: DeviceMode,
    pub schedule: Option<String>,
    pub auto_mode_enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceMode {
    Off,
    Heat,
    Cool,
    Auto,
    Eco,
}

/// `PATCH /devices/{id}/settings`: any subset of the settings. Absent fields are
/// not sent; `schedule: Some(None)` clears the schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceSettingsPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DeviceMode>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_some"
    )]
    pub schedule: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_mode_enabled: Option<bool>,
}

impl DeviceSettingsPatch {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Distinguishes an explicit `null` (Some(None)) from an absent field (None).
fn deserialize_some<'de, T, D>(deserializer: D) -> Result<Option<T>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The contract's error body: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// Timestamps as chrono's `Deserialize` reads them (RFC 3339, relaxed), with
/// a fast path for the form services send: `YYYY-MM-DDTHH:MM:SS[.fraction]`
/// then `Z` or `±HH:MM`. chrono's general parser costs several times more,
/// and every order, review and device carries a timestamp. Anything else
/// (spaces, leap seconds, more than 9 fraction digits, signed years, ...)
/// goes to chrono, so what is accepted, and the value, stay chrono's.
pub(crate) mod rfc3339 {
    use std::fmt;

    use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
    use serde::de;

    pub(crate) fn deserialize<'de, D>(deserializer: D) -> Result<DateTime<Utc>, D::Error>
    where
        D: de::Deserializer<'de>,
    {
        deserializer.deserialize_str(Visitor)
    }

    struct Visitor;

    impl de::Visitor<'_> for Visitor {
        type Value = DateTime<Utc>;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            // chrono's words, so that errors read the same.
            formatter.write_str("an RFC 3339 formatted date and time string")
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
            parse(value).map_err(E::custom)
        }
    }

    /// What `DateTime<Utc>`'s `Deserialize` makes of `text`.
    pub(crate) fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
        match parse_common(text.as_bytes()) {
            Some(at) => Ok(at),
            None => text
                .parse::<DateTime<FixedOffset>>()
                .map(|at| at.with_timezone(&Utc)),
        }
    }

    /// The common form, or `None` for anything else (invalid or not).
    fn parse_common(b: &[u8]) -> Option<DateTime<Utc>> {
        // Shortest: `2026-11-25T14:30:00Z`.
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't')
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let year = digits(&b[0..4])?;
        let month = digits(&b[5..7])?;
        let day = digits(&b[8..10])?;
        let hour = digits(&b[11..13])?;
        let minute = digits(&b[14..16])?;
        let second = digits(&b[17..19])?;
        // chrono reads second 60 as a leap second: left to it.
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let mut rest = &b[19..];
        let mut nano = 0;
        if let [b'.', fraction @ ..] = rest {
            let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
            if !(1..=9).contains(&len) {
                return None;
            }
            nano = digits(&fraction[..len])? * 10u32.pow(9 - len as u32);
            rest = &fraction[len..];
        }
        let offset_secs = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let hours = digits(&[*h1, *h2])?;
                let minutes = digits(&[*m1, *m2])?;
                if hours > 23 || minutes > 59 {
                    return None;
                }
                let secs = i32::try_from(hours * 3600 + minutes * 60).ok()?;
                if *sign == b'-' { -secs } else { secs }
            }
            _ => return None,
        };
        let offset = FixedOffset::east_opt(offset_secs)?;
        let local = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
            .and_hms_nano_opt(hour, minute, second, nano)?;
        let utc = local.checked_sub_offset(offset)?;
        Some(DateTime::from_naive_utc_and_offset(utc, Utc))
    }

    /// The value of ASCII decimal digits, `None` if any is not one.
    fn digits(bytes: &[u8]) -> Option<u32> {
        bytes.iter().try_fold(0u32, |value, &byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + u32::from(byte - b'0'))
        })
    }

    #[cfg(test)]
    mod tests {
        #![allow(clippy::unwrap_used)]

        use super::*;

        /// chrono's own reading, the reference.
        fn chrono(text: &str) -> Result<DateTime<Utc>, String> {
            serde_json::from_value::<DateTime<Utc>>(serde_json::Value::from(text))
                .map_err(|error| error.to_string())
        }

        fn ours(text: &str) -> Result<DateTime<Utc>, String> {
            #[derive(serde::Deserialize)]
            struct At(#[serde(deserialize_with = "deserialize")] DateTime<Utc>);
            serde_json::from_value::<At>(serde_json::Value::from(text))
                .map(|at| at.0)
                .map_err(|error| error.to_string())
        }

        #[test]
        fn agrees_with_chrono() {
            let cases = [
                // the common form
                "2026-11-25T14:30:00Z",
                "2025-11-25T00:00:00Z",
                "2026-11-25t14:30:00z",
                "2026-11-25T14:30:00.5Z",
                "2026-11-25T14:30:00.123Z",
                "2026-11-25T14:30:00.123456Z",
                "2026-11-25T14:30:00.123456789Z",
                "2026-11-25T14:30:00.000000001Z",
                "2026-11-25T14:30:00+01:00",
                "2026-11-25T00:30:00+01:00",
                "2026-01-01T00:30:00+01:00",
                "2026-11-25T23:30:00-05:30",
                "2026-12-31T23:59:59-23:59",
                "2026-12-31T23:59:59+23:59",
                "2026-11-25T14:30:00-00:00",
                "2026-11-25T14:30:00.25+02:00",
                "2024-02-29T12:00:00Z",
                "2000-02-29T12:00:00Z",
                "0000-01-01T00:00:00Z",
                "0000-01-01T00:00:00+01:00",
                "9999-12-31T23:59:59Z",
                "9999-12-31T23:59:59-01:00",
                "1970-01-01T00:00:00Z",
                // chrono's relaxed forms, left to chrono
                "2026-11-25 14:30:00Z",
                "2026-11-25T14:30:00 Z",
                "2026-11-25T14:30:00+0100",
                "2026-11-25T14:30:00UTC",
                "2026-11-25T14:30:00utc",
                "2026-11-25T14:30:00Z ",
                " 2026-11-25T14:30:00Z",
                "2026-11-25T14:30:00.1234567891Z",
                "2026-11-25T14:30:60Z",
                "2026-11-25T23:59:60.5Z",
                "+2026-11-25T14:30:00Z",
                "+12026-11-25T14:30:00Z",
                "-0001-11-25T14:30:00Z",
                "2026-11-25T14:30:00\u{2212}01:00",
                "2026-11-25T14:30:00+01",
                "2026-11-25T14:30:00+24:00",
                "2026-11-25T14:30:00+01:60",
                // invalid
                "2026-02-30T00:00:00Z",
                "2026-02-29T00:00:00Z",
                "1900-02-29T00:00:00Z",
                "2026-13-01T00:00:00Z",
                "2026-00-01T00:00:00Z",
                "2026-11-00T00:00:00Z",
                "2026-11-31T00:00:00Z",
                "2026-11-25T24:00:00Z",
                "2026-11-25T14:60:00Z",
                "2026-11-25T14:30:00",
                "2026-11-25T14:30:00.Z",
                "2026-11-25T14:30:00.",
                "2026-11-25T14:30:00ZZ",
                "2026-11-25T14:30:00+01:00:00",
                "2026-11-25X14:30:00Z",
                "2026-11-25",
                "26-11-25T14:30:00Z",
                "2026-1-25T14:30:00Z",
                "2026-11-25T1:30:00Z",
                "2026/11/25T14:30:00Z",
                "2026-11-25T14:30:0aZ",
                "２０２６-11-25T14:30:00Z",
                "2026-11-25T14:30:00Zé",
                "",
                "garbage",
                "null",
            ];
            for text in cases {
                assert_eq!(ours(text), chrono(text), "{text:?}");
            }
            assert!(ours("2026-11-25T14:30:00Z").is_ok());
            assert!(ours("2026-02-30T00:00:00Z").is_err());
        }

        #[test]
        fn the_common_form_takes_the_fast_path() {
            for text in [
                "2026-11-25T14:30:00Z",
                "2026-11-25t14:30:00.123456789z",
                "2026-11-25T14:30:00.5-05:30",
            ] {
                let fast = parse_common(text.as_bytes());
                assert!(fast.is_some(), "{text:?}");
                assert_eq!(fast.map(Ok), Some(chrono(text)), "{text:?}");
            }
        }

        #[test]
        fn agrees_with_chrono_on_every_field_value() {
            // Each field through its whole range and just past it, in the
            // common form and with an offset that moves the day.
            let mut checked = 0;
            for (year, month, day) in [(2024, 2, 0), (2026, 2, 0), (2000, 12, 0), (1999, 4, 0)] {
                for day in day..=32 {
                    for offset in ["Z", "+05:45", "-10:00"] {
                        let text = format!("{year:04}-{month:02}-{day:02}T23:30:59.9{offset}");
                        assert_eq!(ours(&text), chrono(&text), "{text:?}");
                        checked += 1;
                    }
                }
            }
            for month in 0..=13 {
                let text = format!("2026-{month:02}-28T00:00:00Z");
                assert_eq!(ours(&text), chrono(&text), "{text:?}");
            }
            for hour in 0..=25 {
                for minute in [0, 59, 60] {
                    let text = format!("2026-03-01T{hour:02}:{minute:02}:30-{hour:02}:{minute:02}");
                    assert_eq!(ours(&text), chrono(&text), "{text:?}");
                    let text = format!("2026-03-01T00:00:00+{hour:02}:{minute:02}");
                    assert_eq!(ours(&text), chrono(&text), "{text:?}");
                }
            }
            for digits in 1..=12 {
                let text = format!("2026-03-01T00:00:00.{}Z", "7".repeat(digits));
                assert_eq!(ours(&text), chrono(&text), "{text:?}");
            }
            assert!(checked > 100);
        }

        #[test]
        fn models_read_their_timestamps() {
            let json = r#"{"id":"d1","owner_id":"u1","status":"online","temperature":21.7,
                "battery_level":87,"last_update":"2025-11-25T00:00:00Z",
                "settings":{"target_temperature":21.0,"mode":"heat","schedule":null,
                "auto_mode_enabled":false}}"#;
            let device: crate::models::Device = serde_json::from_str(json).unwrap();
            assert_eq!(device.last_update.timestamp(), 1_764_028_800);
            let bad = json.replace("2025-11-25T00:00:00Z", "2025-02-30T00:00:00Z");
            assert!(serde_json::from_str::<crate::models::Device>(&bad).is_err());
        }
    }
}
