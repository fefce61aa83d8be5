//! GraphQL responses as JSON bytes: what serde would write for an
//! async-graphql `Response`, written straight from its value tree (a
//! string needing no escape is copied in one go, eight bytes are checked at
//! a time), which costs less than serde's generic serialiser.

use async_graphql::{Response, Value};
use bytes::Bytes;

/// [`response_json`] as a body.
pub fn response_body(response: Response) -> Result<Bytes, serde_json::Error> {
    response_json(&response).map(Bytes::from)
}

/// The response body, as serde would write `response`, but faster.
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
        // serde writes bytes as an array of numbers.
        Value::Binary(bytes) => {
            for (index, byte) in bytes.iter().enumerate() {
                out.push(if index == 0 { b'[' } else { b',' });
                out.extend_from_slice(itoa::Buffer::new().format(*byte).as_bytes());
            }
            out.extend_from_slice(if bytes.is_empty() { b"[]" } else { b"]" });
        }
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
}
