//! GraphQL responses as JSON bytes, and JSON written ahead by the eager path.
//!
//! [`eager`](super::eager) writes the JSON of a prefetched subtree directly
//! instead of building async-graphql's `Value` tree (an `IndexMap` keyed
//! with SipHash per object), serialising it and dropping it; building,
//! serialising and dropping that tree was ~40% of the instructions of a
//! dashboard request. The bytes travel through async-graphql's executor as
//! a `Value::Binary` that starts with a marker (`RAW_JSON_MARK`), and
//! [`response_json`] splices them into the response. Any other binary value
//! is written as serde would write it.

use async_graphql::{Response, Value};
use bytes::Bytes;

/// Marks a `Value::Binary` as JSON already written. A NUL byte cannot start
/// JSON text, so no real binary value is mistaken for it by accident, and
/// none of the BFF schemas has a binary scalar.
const RAW_JSON_MARK: &[u8] = b"\0bff:json\0";

/// JSON being written for one eager subtree.
pub struct JsonWriter {
    buffer: Vec<u8>,
    /// Reused by [`JsonWriter::string_with`], so formatted values (money,
    /// dates: dozens on a dashboard) need no allocation each.
    scratch: String,
}

impl JsonWriter {
    pub(crate) fn new() -> Self {
        let mut buffer = Vec::with_capacity(8192);
        buffer.extend_from_slice(RAW_JSON_MARK);
        Self {
            buffer,
            scratch: String::new(),
        }
    }

    /// The written JSON as a value for async-graphql's executor.
    pub(crate) fn into_value(self) -> Value {
        Value::Binary(Bytes::from(self.buffer))
    }

    pub(crate) fn position(&self) -> usize {
        self.buffer.len()
    }

    /// Drops what was written since `position`.
    pub(crate) fn truncate(&mut self, position: usize) {
        self.buffer.truncate(position);
    }

    pub(crate) fn raw(&mut self, json: &[u8]) {
        self.buffer.extend_from_slice(json);
    }

    pub(crate) fn byte(&mut self, byte: u8) {
        self.buffer.push(byte);
    }

    /// `"key":` for a response key: a GraphQL name (`[_A-Za-z][_0-9A-Za-z]*`,
    /// as the parser guarantees), so nothing in it needs escaping.
    pub(crate) fn key(&mut self, key: &str) {
        self.buffer.reserve(key.len() + 3);
        self.buffer.push(b'"');
        self.buffer.extend_from_slice(key.as_bytes());
        self.buffer.extend_from_slice(b"\":");
    }

    pub fn null(&mut self) {
        self.raw(b"null");
    }

    pub fn string(&mut self, text: &str) {
        write_str(&mut self.buffer, text);
    }

    /// A string `format` writes (e.g. `shaping::push_money`).
    pub fn string_with(&mut self, format: impl FnOnce(&mut String)) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        format(&mut scratch);
        write_str(&mut self.buffer, &scratch);
        self.scratch = scratch;
    }

    /// A list of strings.
    pub fn strings(&mut self, items: &[impl AsRef<str>]) {
        self.buffer.push(b'[');
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                self.buffer.push(b',');
            }
            write_str(&mut self.buffer, item.as_ref());
        }
        self.buffer.push(b']');
    }

    /// A nullable string.
    pub fn optional_string(&mut self, text: Option<&str>) {
        match text {
            Some(text) => self.string(text),
            None => self.null(),
        }
    }

    pub fn int(&mut self, number: i64) {
        let mut digits = itoa::Buffer::new();
        self.raw(digits.format(number).as_bytes());
    }

    /// A float exactly as serde_json writes it (non-finite ones, which JSON
    /// lacks, as `null`), without going through a `Value`.
    pub fn float(&mut self, number: f64) {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.buffer, &number);
    }

    /// Any value, exactly as in a response (floats, dates, enums, lists).
    pub fn value(&mut self, value: &Value) {
        write_value(&mut self.buffer, value);
    }
}

/// [`response_json`] as a body, without copying: when the whole of `data`
/// was written eagerly and nothing else is in the response, the writer's
/// buffer becomes the body (its marker makes room for `{"data":`).
pub fn response_body(mut response: Response) -> Result<Bytes, serde_json::Error> {
    const PREFIX: &[u8] = b"{\"data\":";
    let only_data = response.errors.is_empty() && response.extensions.is_empty();
    if let (true, Value::Binary(raw)) = (only_data, &mut response.data)
        && raw.starts_with(RAW_JSON_MARK)
    {
        match std::mem::take(raw).try_into_mut() {
            Ok(mut buffer) => {
                let start = RAW_JSON_MARK.len() - PREFIX.len();
                buffer[start..RAW_JSON_MARK.len()].copy_from_slice(PREFIX);
                buffer.extend_from_slice(b"}");
                let _mark = buffer.split_to(start);
                return Ok(buffer.freeze());
            }
            Err(shared) => *raw = shared,
        }
    }
    response_json(&response).map(Bytes::from)
}

/// The response body, as serde would write `response`, but faster, and with
/// eager subtrees spliced in.
pub fn response_json(response: &Response) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(8192);
    out.extend_from_slice(b"{\"data\":");
    write_value(&mut out, &response.data);
    if !response.extensions.is_empty() {
        out.extend_from_slice(b",\"extensions\":{");
        for (index, (key, value)) in response.extensions.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            write_str(&mut out, key);
            out.push(b':');
            write_value(&mut out, value);
        }
        out.push(b'}');
    }
    if !response.errors.is_empty() {
        out.extend_from_slice(b",\"errors\":");
        serde_json::to_writer(&mut out, &response.errors)?;
    }
    out.push(b'}');
    Ok(out)
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => out.extend_from_slice(number.to_string().as_bytes()),
        Value::String(text) => write_str(out, text),
        Value::Enum(name) => write_str(out, name),
        Value::List(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(fields) => {
            out.push(b'{');
            for (index, (key, value)) in fields.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write_value(out, value);
            }
            out.push(b'}');
        }
        Value::Binary(bytes) => match bytes.strip_prefix(RAW_JSON_MARK) {
            Some(json) => out.extend_from_slice(json),
            // serde writes bytes as an array of numbers.
            None => write_value(
                out,
                &Value::List(bytes.iter().map(|byte| Value::from(*byte)).collect()),
            ),
        },
    }
}

/// A JSON string with serde_json's escapes, scanning eight bytes at a time
/// for the few that need one.
fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Almost every string needs no escape: copied in one go.
    if !may_need_any_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut clean_from = 0;
    let mut index = 0;
    while index < bytes.len() {
        if let Some(chunk) = bytes.get(index..index + 8)
            && let Ok(word) = <[u8; 8]>::try_from(chunk)
            && !may_need_escape(u64::from_le_bytes(word))
        {
            index += 8;
            continue;
        }
        let chunk_end = (index + 8).min(bytes.len());
        while index < chunk_end {
            let byte = bytes[index];
            let escape = ESCAPES[usize::from(byte)];
            if escape != 0 {
                out.extend_from_slice(&bytes[clean_from..index]);
                write_escape(out, byte, escape);
                clean_from = index + 1;
            }
            index += 1;
        }
    }
    out.extend_from_slice(&bytes[clean_from..]);
    out.push(b'"');
}

/// Whether any byte of `bytes` may need an escape (see [`may_need_escape`]).
fn may_need_any_escape(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        if let Ok(word) = <[u8; 8]>::try_from(chunk)
            && may_need_escape(u64::from_le_bytes(word))
        {
            return true;
        }
    }
    let rest = chunks.remainder();
    // Padded with spaces, which never need one.
    let mut word = [b' '; 8];
    word[..rest.len()].copy_from_slice(rest);
    may_need_escape(u64::from_le_bytes(word))
}

/// Whether any byte of `word` may be `"`, `\` or below 0x20 (false
/// positives only send the chunk through the byte-by-byte check).
fn may_need_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    let quote = has_zero_byte(word ^ (ONES * u64::from(b'"')));
    let backslash = has_zero_byte(word ^ (ONES * u64::from(b'\\')));
    (control | quote | backslash) != 0
}

fn write_escape(out: &mut Vec<u8>, byte: u8, escape: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if escape == b'u' {
        out.extend_from_slice(b"\\u00");
        out.push(HEX[usize::from(byte >> 4)]);
        out.push(HEX[usize::from(byte & 0xf)]);
    } else {
        out.push(b'\\');
        out.push(escape);
    }
}

/// serde_json's escape table: 0 for bytes written as they are.
const ESCAPES: [u8; 256] = {
    let mut table = [0_u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_does() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain ascii, long enough for several chunks".into(),
            "quote \" backslash \\ slash / tab \t newline \n cr \r".into(),
            "\u{0}\u{1}\u{8}\u{b}\u{c}\u{1f}\u{7f} control".into(),
            "café ☕ 𝄞 multi-byte, \"quoted\" near the end\"".into(),
            "12345678\"".into(),
        ];
        samples.extend((0..=0x7f_u8).map(|byte| format!("abcdefg{}hij", char::from(byte))));
        for sample in samples {
            let mut ours = Vec::new();
            write_str(&mut ours, &sample);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&sample).unwrap(),
                "{sample:?}"
            );
        }
    }

    #[test]
    fn responses_are_written_as_serde_writes_them() {
        let data: Value = serde_json::from_value(serde_json::json!({
            "a": [1, -2, 3.5, 1.0e300, true, false, null, "x\"y"],
            "b": { "c": { "d": [] }, "e": {} },
            "f": 12345678901_i64,
        }))
        .unwrap();
        let mut response = Response::new(data);
        response
            .extensions
            .insert("stale".into(), Value::List(vec![Value::from("product:p1")]));
        response
            .errors
            .push(async_graphql::ServerError::new("boom", None));
        assert_eq!(
            String::from_utf8(response_json(&response).unwrap()).unwrap(),
            serde_json::to_string(&response).unwrap()
        );
        // Enums and real binary values too.
        let data = Value::List(vec![
            Value::Enum(async_graphql::Name::new("SHIPPED")),
            Value::Binary(Bytes::from_static(&[1, 2, 255])),
        ]);
        let response = Response::new(data);
        assert_eq!(
            String::from_utf8(response_json(&response).unwrap()).unwrap(),
            serde_json::to_string(&response).unwrap()
        );
    }

    #[test]
    fn floats_are_written_as_serde_json_writes_them() {
        for number in [
            0.0,
            -0.0,
            1.0,
            4.5,
            0.1,
            -2.25,
            1e300,
            1e-7,
            12345.678,
            f64::MAX,
        ] {
            let mut writer = JsonWriter::new();
            let start = writer.position();
            writer.float(number);
            assert_eq!(
                &writer.buffer[start..],
                serde_json::to_string(&number).unwrap().as_bytes(),
                "{number}"
            );
        }
        let mut writer = JsonWriter::new();
        let start = writer.position();
        writer.float(f64::NAN);
        assert_eq!(&writer.buffer[start..], b"null");
    }

    #[test]
    fn written_json_is_spliced_in() {
        let mut writer = JsonWriter::new();
        writer.raw(b"{\"id\":");
        writer.string("p1");
        writer.raw(b",\"n\":");
        writer.int(-42);
        writer.raw(b",\"note\":");
        writer.optional_string(None);
        writer.raw(b"}");
        let response = Response::new(Value::List(vec![writer.into_value()]));
        assert_eq!(
            String::from_utf8(response_json(&response).unwrap()).unwrap(),
            r#"{"data":[{"id":"p1","n":-42,"note":null}]}"#
        );
    }

    #[test]
    fn a_response_of_written_data_only_becomes_the_body_as_it_is() {
        let written = || {
            let mut writer = JsonWriter::new();
            writer.raw(b"{\"name\":");
            writer.string("Ada \"A\" Lovelace");
            writer.raw(b",\"tags\":");
            writer.strings(&["a", "b"]);
            writer.raw(b"}");
            writer.into_value()
        };
        let expected = r#"{"data":{"name":"Ada \"A\" Lovelace","tags":["a","b"]}}"#;
        let body = response_body(Response::new(written())).unwrap();
        assert_eq!(String::from_utf8(body.to_vec()).unwrap(), expected);

        // Shared bytes, or anything beside data: written out as usual.
        let data = written();
        let _shared = data.clone();
        let body = response_body(Response::new(data)).unwrap();
        assert_eq!(String::from_utf8(body.to_vec()).unwrap(), expected);
        let mut response = Response::new(written());
        response
            .extensions
            .insert("stale".into(), Value::List(vec![Value::from("product:p1")]));
        let body = response_body(response).unwrap();
        assert_eq!(
            String::from_utf8(body.to_vec()).unwrap(),
            r#"{"data":{"name":"Ada \"A\" Lovelace","tags":["a","b"]},"extensions":{"stale":["product:p1"]}}"#
        );
    }
}
