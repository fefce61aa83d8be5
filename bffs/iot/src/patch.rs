//! Reading a settings patch (`{"t","m","s","a"}`) strictly, in JSON or
//! CBOR, into the device service's [`DeviceSettingsPatch`].
//!
//! The body is first read into an ordered list of loosely typed fields
//! ([`Raw`]), the same way for both encodings, and then checked key by key,
//! so every rule and every message is written once and a problem is
//! reported for the first offending key in the body.

use std::fmt;

use downstream::models::{DeviceMode, DeviceSettingsPatch};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::encoding::Encoding;

/// Target temperatures a device may be set to, in degrees, both ends included.
pub const TARGET_TEMPERATURE_RANGE: std::ops::RangeInclusive<f64> = 5.0..=35.0;
/// Longest schedule accepted, in characters (Unicode scalar values).
pub const MAX_SCHEDULE_CHARS: usize = 64;
/// Unknown keys are quoted back at most this long, so an error stays compact.
const MAX_QUOTED_KEY_CHARS: usize = 32;

/// The modes, as the client writes them.
pub const MODES: [(&str, DeviceMode); 5] = [
    ("off", DeviceMode::Off),
    ("heat", DeviceMode::Heat),
    ("cool", DeviceMode::Cool),
    ("auto", DeviceMode::Auto),
    ("eco", DeviceMode::Eco),
];

/// Why a patch is refused. `Display` is the client's message (`{"e": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("body is not valid {0}")]
    Unreadable(&'static str),
    #[error("body must be an object")]
    NotAnObject,
    #[error("no settings to change")]
    Empty,
    #[error("keys must be strings")]
    KeyNotAString,
    #[error("unknown key: {0}")]
    UnknownKey(String),
    #[error("duplicate key: {0}")]
    DuplicateKey(&'static str),
    #[error("bad value for {key}: {expected}")]
    BadValue {
        key: &'static str,
        expected: &'static str,
    },
}

/// Reads and checks a patch. Nothing about the device is known here: this is
/// all that can be said from the body alone, before any downstream call.
pub fn parse(body: &[u8], encoding: Encoding) -> Result<DeviceSettingsPatch, PatchError> {
    let top = match encoding {
        Encoding::Json => {
            serde_json::from_slice::<Top>(body).map_err(|_| PatchError::Unreadable("JSON"))?
        }
        Encoding::Cbor => {
            let mut rest = body;
            let top = ciborium::from_reader::<Top, _>(&mut rest)
                .map_err(|_| PatchError::Unreadable("CBOR"))?;
            // One item, nothing after it (serde_json checks this itself).
            if !rest.is_empty() {
                return Err(PatchError::Unreadable("CBOR"));
            }
            mark_undefined(top, body)?
        }
    };
    let Top::Object(fields) = top else {
        return Err(PatchError::NotAnObject);
    };
    if fields.is_empty() {
        return Err(PatchError::Empty);
    }
    let mut patch = DeviceSettingsPatch::default();
    let mut seen = [false; Key::ALL.len()];
    for (name, value) in fields {
        let Raw::Text(name) = name else {
            return Err(PatchError::KeyNotAString);
        };
        let Some(key) = Key::ALL.into_iter().find(|key| key.compact() == name) else {
            return Err(PatchError::UnknownKey(quoted(&name)));
        };
        if std::mem::replace(&mut seen[key as usize], true) {
            return Err(PatchError::DuplicateKey(key.compact()));
        }
        apply(&mut patch, key, value)?;
    }
    Ok(patch)
}

/// The settings a patch may change.
#[derive(Debug, Clone, Copy)]
enum Key {
    TargetTemperature,
    Mode,
    Schedule,
    AutoModeEnabled,
}

impl Key {
    const ALL: [Key; 4] = [
        Key::TargetTemperature,
        Key::Mode,
        Key::Schedule,
        Key::AutoModeEnabled,
    ];

    /// The key as the client writes it.
    fn compact(self) -> &'static str {
        match self {
            Key::TargetTemperature => "t",
            Key::Mode => "m",
            Key::Schedule => "s",
            Key::AutoModeEnabled => "a",
        }
    }
}

/// Checks one known key's value and records it in `patch`.
fn apply(patch: &mut DeviceSettingsPatch, key: Key, value: Raw) -> Result<(), PatchError> {
    let bad = |expected| PatchError::BadValue {
        key: key.compact(),
        expected,
    };
    match key {
        Key::TargetTemperature => match value {
            // `contains` is false for NaN, so a CBOR NaN is refused too.
            Raw::Number(t) if TARGET_TEMPERATURE_RANGE.contains(&t) => {
                patch.target_temperature = Some(t);
            }
            _ => return Err(bad("a number from 5 to 35")),
        },
        Key::Mode => match value {
            Raw::Text(mode) => {
                let (_, mode) = MODES
                    .iter()
                    .find(|(name, _)| *name == mode)
                    .ok_or_else(|| bad("one of off, heat, cool, auto, eco"))?;
                patch.mode = Some(*mode);
            }
            _ => return Err(bad("one of off, heat, cool, auto, eco")),
        },
        Key::Schedule => match value {
            // The device contract's schedule is `string|null`: null is how a
            // device clears its schedule, and there is no other way.
            Raw::Null => patch.schedule = Some(None),
            // "" is refused rather than stored: it would be a schedule that
            // says nothing, a second spelling of "none" next to null.
            // Checked before the length, so NUL, CR, LF and the rest get the
            // precise reason: they would break lines in logs and displays.
            Raw::Text(schedule) if schedule.chars().any(char::is_control) => {
                return Err(bad("no control characters"));
            }
            Raw::Text(schedule)
                if !schedule.is_empty() && schedule.chars().count() <= MAX_SCHEDULE_CHARS =>
            {
                patch.schedule = Some(Some(schedule));
            }
            // `Raw::Undefined` lands here: CBOR's undefined is not null.
            _ => return Err(bad("1 to 64 characters, or null to clear")),
        },
        Key::AutoModeEnabled => match value {
            Raw::Bool(a) => patch.auto_mode_enabled = Some(a),
            _ => return Err(bad("true or false")),
        },
    }
    Ok(())
}

/// At most [`MAX_QUOTED_KEY_CHARS`] characters of a client's key, `…` marking a cut.
fn quoted(key: &str) -> String {
    match key.char_indices().nth(MAX_QUOTED_KEY_CHARS) {
        Some((cut, _)) => format!("{}…", &key[..cut]),
        None => key.to_owned(),
    }
}

/// `top` with every field value that is CBOR's `undefined` (simple value 23)
/// turned from [`Raw::Null`] into [`Raw::Undefined`].
///
/// ciborium hands `undefined` to serde exactly as it hands `null`
/// (`deserialize_option` → `visit_none` for both), so no visitor can tell
/// them apart; the raw bytes can. Only a field's value needs it: an
/// undefined key is refused as a null one is, and so is an undefined body.
fn mark_undefined(top: Top, body: &[u8]) -> Result<Top, PatchError> {
    let Top::Object(mut fields) = top else {
        return Ok(top);
    };
    if !fields.iter().any(|(_, value)| *value == Raw::Null) {
        return Ok(Top::Object(fields));
    }
    // ciborium has read this body already, so a disagreement is a bug in
    // `cbor_scan`; refused rather than guessed.
    let undefined = cbor_scan::undefined_values(body)
        .filter(|flags| flags.len() == fields.len())
        .ok_or(PatchError::Unreadable("CBOR"))?;
    for ((_, value), undefined) in fields.iter_mut().zip(undefined) {
        if undefined {
            *value = Raw::Undefined;
        }
    }
    Ok(Top::Object(fields))
}

/// A just-enough CBOR reader (RFC 8949 §3) to find `undefined` values.
mod cbor_scan {
    /// Deeper than ciborium's own limit (256), so everything it read is
    /// read here too; a 1 KiB body cannot nest deeper than 1024 anyway.
    const MAX_DEPTH: usize = 512;

    /// For a body that is one CBOR map: whether each entry's value is
    /// `undefined`, in order. `None` for anything else or malformed input.
    pub(super) fn undefined_values(body: &[u8]) -> Option<Vec<bool>> {
        let mut cursor = Cursor(body);
        let (major, length) = cursor.head()?;
        if major != MAP {
            return None;
        }
        let mut flags = Vec::new();
        let mut entry = |cursor: &mut Cursor<'_>| -> Option<()> {
            cursor.skip(MAX_DEPTH)?;
            flags.push(cursor.at_undefined());
            cursor.skip(MAX_DEPTH)
        };
        match length {
            Some(entries) => {
                for _ in 0..entries {
                    entry(&mut cursor)?;
                }
            }
            None => {
                while !cursor.at_break() {
                    entry(&mut cursor)?;
                }
                cursor.take(1)?;
            }
        }
        cursor.0.is_empty().then_some(flags)
    }

    const BYTES: u8 = 2;
    const TEXT: u8 = 3;
    const ARRAY: u8 = 4;
    const MAP: u8 = 5;
    const TAG: u8 = 6;
    const SIMPLE_OR_FLOAT: u8 = 7;
    const BREAK: u8 = 0xff;

    struct Cursor<'a>(&'a [u8]);

    impl<'a> Cursor<'a> {
        fn take(&mut self, n: u64) -> Option<&'a [u8]> {
            let n = usize::try_from(n).ok()?;
            if n > self.0.len() {
                return None;
            }
            let (taken, rest) = self.0.split_at(n);
            self.0 = rest;
            Some(taken)
        }

        /// `undefined` in its one-byte form, or the two-byte form ciborium
        /// also reads as simple value 23 (RFC 8949 calls that one malformed).
        fn at_undefined(&self) -> bool {
            matches!(self.0, [0xf7, ..] | [0xf8, 23, ..])
        }

        fn at_break(&self) -> bool {
            self.0.first() == Some(&BREAK)
        }

        /// An item's head: major type and argument (`None`: indefinite).
        fn head(&mut self) -> Option<(u8, Option<u64>)> {
            let initial = *self.take(1)?.first()?;
            let (major, info) = (initial >> 5, initial & 0x1f);
            let argument = match info {
                0..=23 => u64::from(info),
                24..=27 => {
                    let bytes = self.take(1 << (info - 24))?;
                    bytes
                        .iter()
                        .fold(0, |value, byte| (value << 8) | u64::from(*byte))
                }
                31 => return Some((major, None)),
                _ => return None,
            };
            Some((major, Some(argument)))
        }

        /// Steps over one whole item, at most `depth` levels deep.
        fn skip(&mut self, depth: usize) -> Option<()> {
            let depth = depth.checked_sub(1)?;
            match self.head()? {
                // A break where an item belongs, or an indefinite integer or tag.
                (SIMPLE_OR_FLOAT, None) | (0 | 1 | TAG, None) => None,
                (0 | 1 | SIMPLE_OR_FLOAT, Some(_)) => Some(()),
                (BYTES | TEXT, Some(length)) => self.take(length).map(drop),
                (major @ (BYTES | TEXT), None) => {
                    // Definite chunks of the same type up to the break.
                    while !self.at_break() {
                        let (chunk, length) = self.head()?;
                        if chunk != major {
                            return None;
                        }
                        self.take(length?)?;
                    }
                    self.take(1).map(drop)
                }
                (ARRAY, Some(items)) => (0..items).try_for_each(|_| self.skip(depth)),
                (MAP, Some(entries)) => {
                    (0..entries).try_for_each(|_| self.skip(depth).and_then(|()| self.skip(depth)))
                }
                (ARRAY | MAP, None) => {
                    while !self.at_break() {
                        self.skip(depth)?;
                    }
                    self.take(1).map(drop)
                }
                (TAG, Some(_)) => self.skip(depth),
                _ => None,
            }
        }
    }
}

/// A whole body: an object's fields in order (duplicates kept, so they can be
/// refused), or anything else.
enum Top {
    Object(Vec<(Raw, Raw)>),
    NotAnObject,
}

/// One key or value, typed only as far as the checks need.
#[derive(Debug, PartialEq)]
enum Raw {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    /// CBOR's `undefined`: not a value for any setting, and not null either.
    Undefined,
    /// Arrays, objects, byte strings: never a valid setting.
    Other,
}

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopVisitor)
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a settings object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut fields = Vec::new();
        while let Some(field) = map.next_entry::<Raw, Raw>()? {
            fields.push(field);
        }
        Ok(Top::Object(fields))
    }

    // Every other well-formed body is read to its end and then refused as
    // "not an object", which is a better message than "not JSON".
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Top, A::Error> {
        RawVisitor.visit_seq(seq).map(|_| Top::NotAnObject)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Top, E> {
        Ok(Top::NotAnObject)
    }
    fn visit_none<E: de::Error>(self) -> Result<Top, E> {
        Ok(Top::NotAnObject)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Top, E> {
        Ok(Top::NotAnObject)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Top, E> {
        Ok(Top::NotAnObject)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Top, E> {
        Ok(Top::NotAnObject)
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Top, E> {
        Ok(Top::NotAnObject)
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Top, E> {
        Ok(Top::NotAnObject)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Top, E> {
        Ok(Top::NotAnObject)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Top, E> {
        Ok(Top::NotAnObject)
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Top, E> {
        Ok(Top::NotAnObject)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
        Raw::deserialize(deserializer)
    }
    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(value))
    }
    // Integers far outside 5–35 may lose precision as f64; they stay far
    // outside it, which is all the checks need.
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Raw, E> {
        Ok(Raw::Number(value as f64))
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Raw, E> {
        Ok(Raw::Number(value as f64))
    }
    fn visit_i128<E: de::Error>(self, value: i128) -> Result<Raw, E> {
        Ok(Raw::Number(value as f64))
    }
    fn visit_u128<E: de::Error>(self, value: u128) -> Result<Raw, E> {
        Ok(Raw::Number(value as f64))
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Raw, E> {
        Ok(Raw::Number(value))
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<Raw, E> {
        Ok(Raw::Text(value.to_owned()))
    }
    fn visit_string<E: de::Error>(self, value: String) -> Result<Raw, E> {
        Ok(Raw::Text(value))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Raw, E> {
        Ok(Raw::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Raw::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Raw::Other)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn json(body: &str) -> Result<DeviceSettingsPatch, PatchError> {
        parse(body.as_bytes(), Encoding::Json)
    }

    fn cbor(value: &ciborium::Value) -> Result<DeviceSettingsPatch, PatchError> {
        let mut body = Vec::new();
        ciborium::into_writer(value, &mut body).unwrap();
        parse(&body, Encoding::Cbor)
    }

    fn message(body: &str) -> String {
        json(body).unwrap_err().to_string()
    }

    #[test]
    fn expands_every_key() {
        let patch = json(r#"{"t":22.5,"m":"cool","s":"weekends","a":false}"#).unwrap();
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!({"target_temperature": 22.5, "mode": "cool", "schedule": "weekends", "auto_mode_enabled": false})
        );
        let patch = json(r#"{"s":null}"#).unwrap();
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!({"schedule": null})
        );
    }

    #[test]
    fn range_ends_are_inclusive() {
        assert_eq!(json(r#"{"t":5}"#).unwrap().target_temperature, Some(5.0));
        assert_eq!(
            json(r#"{"t":35.0}"#).unwrap().target_temperature,
            Some(35.0)
        );
        assert_eq!(
            message(r#"{"t":4.99}"#),
            "bad value for t: a number from 5 to 35"
        );
        assert_eq!(
            message(r#"{"t":35.01}"#),
            "bad value for t: a number from 5 to 35"
        );
        assert_eq!(
            message(r#"{"t":18446744073709551616}"#),
            "bad value for t: a number from 5 to 35"
        );
    }

    #[test]
    fn schedule_length_counts_characters() {
        let at_limit = "é".repeat(MAX_SCHEDULE_CHARS);
        assert!(json(&json!({ "s": at_limit }).to_string()).is_ok());
        let over = "é".repeat(MAX_SCHEDULE_CHARS + 1);
        assert_eq!(
            message(&json!({ "s": over }).to_string()),
            "bad value for s: 1 to 64 characters, or null to clear"
        );
        assert!(json(r#"{"s":""}"#).is_err());
    }

    #[test]
    fn refusals() {
        let cases = [
            ("", "body is not valid JSON"),
            ("t=22", "body is not valid JSON"),
            (r#"{"t":22"#, "body is not valid JSON"),
            (r#"{"t":22} x"#, "body is not valid JSON"),
            ("[]", "body must be an object"),
            ("[1,[2]]", "body must be an object"),
            ("null", "body must be an object"),
            ("22", "body must be an object"),
            (r#""t""#, "body must be an object"),
            ("{}", "no settings to change"),
            (r#"{"x":1}"#, "unknown key: x"),
            (
                r#"{"t":22,"target_temperature":22}"#,
                "unknown key: target_temperature",
            ),
            (r#"{"t":22,"t":23}"#, "duplicate key: t"),
            (r#"{"t":"22"}"#, "bad value for t: a number from 5 to 35"),
            (r#"{"t":null}"#, "bad value for t: a number from 5 to 35"),
            (
                r#"{"m":"turbo"}"#,
                "bad value for m: one of off, heat, cool, auto, eco",
            ),
            (
                r#"{"m":"HEAT"}"#,
                "bad value for m: one of off, heat, cool, auto, eco",
            ),
            (
                r#"{"m":null}"#,
                "bad value for m: one of off, heat, cool, auto, eco",
            ),
            (
                r#"{"s":7}"#,
                "bad value for s: 1 to 64 characters, or null to clear",
            ),
            (
                r#"{"s":["a"]}"#,
                "bad value for s: 1 to 64 characters, or null to clear",
            ),
            (r#"{"a":"true"}"#, "bad value for a: true or false"),
            (r#"{"a":1}"#, "bad value for a: true or false"),
            (r#"{"a":{}}"#, "bad value for a: true or false"),
        ];
        for (body, expected) in cases {
            assert_eq!(message(body), expected, "{body}");
        }
        let long_key = format!(r#"{{"{}":1}}"#, "k".repeat(100));
        assert_eq!(
            message(&long_key),
            format!("unknown key: {}…", "k".repeat(32))
        );
    }

    #[test]
    fn cbor_reads_like_json() {
        use ciborium::Value;
        let text = |s: &str| Value::Text(s.into());
        let body = Value::Map(vec![
            (text("t"), Value::Integer(22.into())),
            (text("m"), text("eco")),
            (text("s"), Value::Null),
            (text("a"), Value::Bool(true)),
        ]);
        assert_eq!(
            cbor(&body).unwrap(),
            json(r#"{"t":22,"m":"eco","s":null,"a":true}"#).unwrap()
        );
        let refused = [
            (Value::Map(vec![]), PatchError::Empty),
            (Value::Array(vec![]), PatchError::NotAnObject),
            (
                Value::Map(vec![(Value::Integer(1.into()), Value::Bool(true))]),
                PatchError::KeyNotAString,
            ),
            (
                Value::Map(vec![(text("t"), Value::Float(f64::NAN))]),
                PatchError::BadValue {
                    key: "t",
                    expected: "a number from 5 to 35",
                },
            ),
            (
                Value::Map(vec![(text("a"), Value::Bytes(vec![1]))]),
                PatchError::BadValue {
                    key: "a",
                    expected: "true or false",
                },
            ),
            (
                Value::Map(vec![(text("x"), Value::Null)]),
                PatchError::UnknownKey("x".into()),
            ),
        ];
        for (body, expected) in refused {
            assert_eq!(cbor(&body).unwrap_err(), expected, "{body:?}");
        }
        assert_eq!(
            parse(b"\xff\x00", Encoding::Cbor).unwrap_err(),
            PatchError::Unreadable("CBOR")
        );
        // A valid item followed by junk.
        let mut body = Vec::new();
        ciborium::into_writer(&Value::Map(vec![(text("a"), Value::Bool(true))]), &mut body)
            .unwrap();
        body.push(0);
        assert_eq!(
            parse(&body, Encoding::Cbor).unwrap_err(),
            PatchError::Unreadable("CBOR")
        );
    }

    const SCHEDULE: &str = "bad value for s: 1 to 64 characters, or null to clear";
    const CONTROL: &str = "bad value for s: no control characters";

    #[test]
    fn schedules_refuse_control_characters() {
        for schedule in [
            "\0",
            "a\0b",
            "\r",
            "\n",
            "06:30\r\nX-Injected: 1",
            "\t",
            "\u{1b}[31m",
            "\u{7f}",
            "\u{85}",
            "\u{9f}",
        ] {
            assert_eq!(
                message(&json!({ "s": schedule }).to_string()),
                CONTROL,
                "{schedule:?}"
            );
            // CBOR text goes through the same check.
            let body = ciborium::Value::Map(vec![("s".into(), schedule.into())]);
            assert_eq!(
                cbor(&body).unwrap_err().to_string(),
                CONTROL,
                "{schedule:?}"
            );
        }
        // Escaped in the JSON text is the same character.
        assert_eq!(message(r#"{"s":"a\u0000"}"#), CONTROL);
        assert_eq!(message(r#"{"s":"\u000a"}"#), CONTROL);
        // Over-long and with a control character: the more precise reason.
        assert_eq!(
            message(&json!({ "s": "\n".repeat(65) }).to_string()),
            CONTROL
        );
        // Other characters outside ASCII are fine (U+2028 is a separator, not Cc).
        for schedule in ["lun–ven 06:30", "平日 6時", "\u{2028}", "🌙 22:00"] {
            assert!(
                json(&json!({ "s": schedule }).to_string()).is_ok(),
                "{schedule:?}"
            );
        }
    }

    /// A CBOR body from hand-written bytes.
    fn raw_cbor(body: &[u8]) -> Result<DeviceSettingsPatch, PatchError> {
        parse(body, Encoding::Cbor)
    }

    #[test]
    fn cbor_undefined_is_a_bad_value_and_null_clears() {
        // {"s": null}
        assert_eq!(raw_cbor(b"\xa1\x61s\xf6").unwrap().schedule, Some(None));
        // {_ "s": null} (indefinite-length map)
        assert_eq!(raw_cbor(b"\xbf\x61s\xf6\xff").unwrap().schedule, Some(None));
        let refused: [(&[u8], &str); 9] = [
            // {"s": undefined}
            (b"\xa1\x61s\xf7", SCHEDULE),
            // the same, simple value 23 in two bytes (which ciborium accepts)
            (b"\xa1\x61s\xf8\x17", SCHEDULE),
            // {_ "s": undefined}
            (b"\xbf\x61s\xf7\xff", SCHEDULE),
            // {"a": true, "s": undefined}, after a valid key
            (b"\xa2\x61a\xf5\x61s\xf7", SCHEDULE),
            // {"s": null, "t": undefined}: null is fine for s, not t
            (
                b"\xa2\x61s\xf6\x61t\xf7",
                "bad value for t: a number from 5 to 35",
            ),
            // {"s": undefined, "s": null}: the first offending key is named
            (b"\xa2\x61s\xf7\x61s\xf6", SCHEDULE),
            // {"s": [undefined]}
            (b"\xa1\x61s\x81\xf7", SCHEDULE),
            // {undefined: null}
            (b"\xa1\xf7\xf6", "keys must be strings"),
            // undefined alone
            (b"\xf7", "body must be an object"),
        ];
        for (body, expected) in refused {
            assert_eq!(
                raw_cbor(body).unwrap_err().to_string(),
                expected,
                "{body:x?}"
            );
        }
        // A half float whose bits are 23 (0xf9 0x00 0x17) is a number, not undefined.
        assert_eq!(
            raw_cbor(b"\xa1\x61s\xf9\x00\x17").unwrap_err().to_string(),
            SCHEDULE
        );
        // Valid keys around a null, with nested and chunked values before it,
        // still read: the scan keeps its place through every kind of item.
        let body = b"\xa3\x61m\x7f\x62ec\x61o\xff\x61s\xf6\x61a\xf4";
        let patch = raw_cbor(body).unwrap();
        assert_eq!(
            (patch.mode, patch.schedule, patch.auto_mode_enabled),
            (Some(DeviceMode::Eco), Some(None), Some(false))
        );
    }

    #[test]
    fn the_undefined_scan_keeps_its_place() {
        use ciborium::Value;
        let text = |s: &str| Value::Text(s.into());
        let busy = Value::Map(vec![
            (text("x"), Value::Tag(1, Box::new(Value::Integer(1.into())))),
            (Value::Bytes(vec![0xf7; 30]), Value::Float(1.5)),
            (
                Value::Array(vec![Value::Null, Value::Integer(u64::MAX.into())]),
                Value::Map(vec![(Value::Null, Value::Bool(true))]),
            ),
            (text("s"), Value::Null),
        ]);
        let mut body = Vec::new();
        ciborium::into_writer(&busy, &mut body).unwrap();
        assert_eq!(
            cbor_scan::undefined_values(&body),
            Some(vec![false, false, false, false])
        );
        // Truncated, trailing bytes, reserved heads, a stray break: no answer.
        for bad in [
            &body[..body.len() - 1],
            b"\xa1\x61s\xf6\x00",
            b"\xa1\x1cs",
            b"\xa1\xff\xf6",
        ] {
            assert_eq!(cbor_scan::undefined_values(bad), None, "{bad:x?}");
        }
        assert_eq!(cbor_scan::undefined_values(b"\x80"), None);
    }

    mod agreement {
        use ciborium::Value;
        use proptest::prelude::*;

        use super::super::*;

        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| Value::Integer(n.into())),
                any::<f64>().prop_map(Value::Float),
                ".{0,8}".prop_map(Value::Text),
                proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
            ];
            leaf.prop_recursive(4, 32, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    proptest::collection::vec((inner.clone(), inner.clone()), 0..4)
                        .prop_map(Value::Map),
                    (0u64..100_000, inner).prop_map(|(tag, v)| Value::Tag(tag, Box::new(v))),
                ]
            })
        }

        proptest! {
            /// Wherever ciborium reads a map, the scan reads the same entries,
            /// so a valid patch is never refused for a disagreement.
            #[test]
            fn the_scan_reads_what_ciborium_reads(
                entries in proptest::collection::vec((value(), value()), 0..6)
            ) {
                let mut body = Vec::new();
                ciborium::into_writer(&Value::Map(entries), &mut body).unwrap();
                if let Ok(Top::Object(fields)) = ciborium::from_reader::<Top, _>(body.as_slice()) {
                    let flags = cbor_scan::undefined_values(&body);
                    prop_assert_eq!(flags, Some(vec![false; fields.len()]));
                }
            }
        }
    }
}
