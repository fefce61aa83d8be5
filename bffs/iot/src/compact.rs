//! The shapes devices see: one- or two-letter keys, whole numbers where the
//! device needs no more, and no key at all for a value that is absent.

use downstream::models::{Device, DeviceMode, DeviceSettings, DeviceStatus};
use serde::{Serialize, Serializer};

/// `GET /v1/devices/{id}`: `{"s":"online","t":21,"b":87,"ts":1764028800}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompactStatus {
    /// `online`, `offline` or `error`.
    pub s: DeviceStatus,
    /// Temperature in whole degrees, truncated toward zero (-3.6 → -3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t: Option<i64>,
    /// Battery level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<i64>,
    /// Last update, Unix seconds.
    pub ts: i64,
}

impl From<&Device> for CompactStatus {
    fn from(device: &Device) -> Self {
        Self {
            s: device.status,
            t: device.temperature.and_then(whole_degrees),
            b: device.battery_level,
            ts: device.last_update.timestamp(),
        }
    }
}

/// Truncates toward zero; `None` for a value that is not a number at all
/// (NaN, ±∞ cannot come from JSON, but a device is better off without `t`
/// than with a made-up one).
pub fn whole_degrees(celsius: f64) -> Option<i64> {
    // `as` saturates at the i64 range, and -0.4 truncates to -0.0, which
    // converts to plain 0.
    celsius.is_finite().then(|| celsius.trunc() as i64)
}

/// `PATCH /v1/devices/{id}/settings` answer: the device's settings after the
/// change, `{"t":21.5,"m":"heat","s":"weekdays 06:30-22:00","a":true}`.
/// `s` is left out when the device has no schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompactSettings {
    /// Target temperature as set (not truncated: it is what the device was
    /// told, and 21.5 must not read back as 21).
    #[serde(serialize_with = "shortest_number")]
    pub t: f64,
    pub m: DeviceMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s: Option<String>,
    pub a: bool,
}

impl From<&DeviceSettings> for CompactSettings {
    fn from(settings: &DeviceSettings) -> Self {
        Self {
            t: settings.target_temperature,
            m: settings.mode,
            s: settings.schedule.clone(),
            a: settings.auto_mode_enabled,
        }
    }
}

/// Largest magnitude below which every whole f64 is exactly an integer.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53

/// A whole number as an integer (`20`, one CBOR byte), anything else as a
/// float (`21.5`): serde_json would write `20.0`.
fn shortest_number<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < EXACT_INTEGER_LIMIT {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn device(temperature: Option<f64>, battery_level: Option<i64>) -> Device {
        Device {
            id: "d1".into(),
            owner_id: "u1".into(),
            status: DeviceStatus::Online,
            temperature,
            battery_level,
            last_update: Utc.with_ymd_and_hms(2025, 11, 25, 0, 0, 0).unwrap(),
            settings: DeviceSettings {
                target_temperature: 21.5,
                mode: DeviceMode::Heat,
                schedule: None,
                auto_mode_enabled: true,
            },
        }
    }

    fn json(value: &impl Serialize) -> String {
        serde_json::to_string(value).unwrap()
    }

    #[test]
    fn truncates_toward_zero() {
        let cases = [
            (21.7, 21),
            (21.0, 21),
            (-3.6, -3),
            (-0.4, 0),
            (0.99, 0),
            (-10.0, -10),
            (1e300, i64::MAX),
        ];
        for (celsius, whole) in cases {
            assert_eq!(whole_degrees(celsius), Some(whole), "{celsius}");
        }
        assert_eq!(whole_degrees(f64::NAN), None);
        assert_eq!(whole_degrees(f64::INFINITY), None);
        // No "-0" on the wire.
        assert_eq!(
            json(&CompactStatus::from(&device(Some(-0.4), None))),
            r#"{"s":"online","t":0,"ts":1764028800}"#
        );
    }

    #[test]
    fn status_keys_and_omissions() {
        assert_eq!(
            json(&CompactStatus::from(&device(Some(21.7), Some(87)))),
            r#"{"s":"online","t":21,"b":87,"ts":1764028800}"#
        );
        assert_eq!(
            json(&CompactStatus::from(&device(None, None))),
            r#"{"s":"online","ts":1764028800}"#
        );
        assert_eq!(
            json(&CompactStatus::from(&device(None, Some(0)))),
            r#"{"s":"online","b":0,"ts":1764028800}"#
        );
    }

    #[test]
    fn settings_numbers_are_as_short_as_exact() {
        let mut settings = device(None, None).settings;
        assert_eq!(
            json(&CompactSettings::from(&settings)),
            r#"{"t":21.5,"m":"heat","a":true}"#
        );
        settings.target_temperature = 20.0;
        settings.schedule = Some("daily".into());
        assert_eq!(
            json(&CompactSettings::from(&settings)),
            r#"{"t":20,"m":"heat","s":"daily","a":true}"#
        );
    }
}
