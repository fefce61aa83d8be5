//! JSON or CBOR: which one a client sends and wants, encoding the compact
//! shapes, and the `ETag`/`If-None-Match` pair that makes polling cheap.

use std::hash::Hasher;

use bff_server::BffError;
use http::{HeaderMap, HeaderValue, header};
use serde::Serialize;

pub const JSON: &str = "application/json";
pub const CBOR: &str = "application/cbor";

/// A body encoding. JSON is the default both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Cbor,
}

impl Encoding {
    pub fn media_type(self) -> &'static str {
        match self {
            Encoding::Json => JSON,
            Encoding::Cbor => CBOR,
        }
    }

    /// What the client wants back, from `Accept`. CBOR only when the client
    /// prefers it: a higher q-value than JSON, or the same q-value from a
    /// more specific range (`application/cbor, */*` names CBOR; `*/*` alone
    /// does not). Anything else, including no `Accept` or one that allows
    /// neither, gets JSON: refusing with 406 would leave a device with no
    /// answer at all, and errors are JSON anyway.
    pub fn wanted(headers: &HeaderMap) -> Self {
        let mut json = Preference::NONE;
        let mut cbor = Preference::NONE;
        let ranges = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','));
        for range in ranges {
            let mut parts = range.split(';');
            let media_range = parts.next().unwrap_or_default().trim();
            let Some(quality) = quality(parts) else {
                continue;
            };
            json.consider(media_range, JSON, quality);
            cbor.consider(media_range, CBOR, quality);
        }
        if cbor.quality > 0.0 && cbor > json {
            Encoding::Cbor
        } else {
            Encoding::Json
        }
    }

    /// What the client sent, from `Content-Type`; none means JSON (small
    /// clients often leave it out). Parameters such as `charset` are ignored.
    pub fn sent(headers: &HeaderMap) -> Result<Self, BffError> {
        let Some(value) = headers.get(header::CONTENT_TYPE) else {
            return Ok(Encoding::Json);
        };
        let media_type = value
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        if media_type.eq_ignore_ascii_case(JSON) {
            Ok(Encoding::Json)
        } else if media_type.eq_ignore_ascii_case(CBOR) {
            Ok(Encoding::Cbor)
        } else {
            Err(BffError::BadUserInput(format!(
                "content type must be {JSON} or {CBOR}"
            )))
        }
    }

    /// `value` in this encoding. Our own shapes always encode; a failure is
    /// a bug, reported as an internal error.
    pub fn encode<T: Serialize>(self, value: &T) -> Result<Vec<u8>, BffError> {
        match self {
            Encoding::Json => serde_json::to_vec(value).map_err(BffError::internal),
            Encoding::Cbor => {
                let mut body = Vec::new();
                ciborium::into_writer(value, &mut body).map_err(BffError::internal)?;
                Ok(body)
            }
        }
    }

    pub fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(self.media_type())
    }
}

/// How much a client wants one media type: the q-value of the most specific
/// range that matches it. Ordered by quality, then specificity.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
struct Preference {
    quality: f32,
    /// 2 for the exact type, 1 for `type/*`, 0 for `*/*`, -1 for no match.
    specificity: i8,
}

impl Preference {
    const NONE: Preference = Preference {
        quality: 0.0,
        specificity: -1,
    };

    fn consider(&mut self, media_range: &str, media_type: &str, quality: f32) {
        let specificity = if media_range.eq_ignore_ascii_case(media_type) {
            2
        } else if media_range
            .strip_suffix("/*")
            .is_some_and(|kind| media_type.split('/').next() == Some(kind))
        {
            1
        } else if media_range == "*/*" {
            0
        } else {
            return;
        };
        // RFC 9110 §12.5.1: the most specific matching range decides.
        if specificity > self.specificity {
            *self = Preference {
                quality,
                specificity,
            };
        }
    }
}

/// The `q` parameter of a media range (1 when absent), or `None` when it is
/// not a number from 0 to 1, in which case the range is ignored.
fn quality<'a>(parameters: impl Iterator<Item = &'a str>) -> Option<f32> {
    for parameter in parameters {
        if let Some((name, value)) = parameter.split_once('=')
            && name.trim().eq_ignore_ascii_case("q")
        {
            return value
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q));
        }
    }
    Some(1.0)
}

/// A strong entity tag for exactly these body bytes: FNV-1a, 64 bits, in
/// hex. The JSON and the CBOR body of the same state differ, and so do their
/// tags, as RFC 9110 wants of strong validators. FNV is stable across
/// builds and processes (std's `DefaultHasher` is not promised to be), so
/// every replica behind a load balancer agrees on a tag.
pub fn etag(body: &[u8]) -> HeaderValue {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(body);
    let tag = format!("\"{:016x}\"", hasher.finish());
    // Quotes and hex digits only: always a valid header value.
    HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// Whether `If-None-Match` names `etag` (or is `*`), compared weakly as
/// RFC 9110 §13.1.2 says: `W/"x"` matches `"x"`.
pub fn none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let current = etag.to_str().unwrap_or_default();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn accept_negotiation() {
        let cases: [(&[&str], Encoding); 14] = [
            (&[], Encoding::Json),
            (&["application/json"], Encoding::Json),
            (&["application/cbor"], Encoding::Cbor),
            (&["Application/CBOR"], Encoding::Cbor),
            (&["*/*"], Encoding::Json),
            (&["application/*"], Encoding::Json),
            (&["application/cbor, */*"], Encoding::Cbor),
            (&["application/cbor, application/json"], Encoding::Json),
            (
                &["application/cbor;q=0.5, application/json"],
                Encoding::Json,
            ),
            (
                &["application/json;q=0.1, application/cbor"],
                Encoding::Cbor,
            ),
            (&["application/cbor;q=0"], Encoding::Json),
            (&["application/cbor;q=0, */*"], Encoding::Json),
            (&["text/html", "application/cbor"], Encoding::Cbor),
            (&["application/cbor;q=bogus"], Encoding::Json),
        ];
        for (accept, expected) in cases {
            assert_eq!(
                Encoding::wanted(&headers(header::ACCEPT, accept)),
                expected,
                "{accept:?}"
            );
        }
    }

    #[test]
    fn content_type() {
        let sent = |values: &[&str]| Encoding::sent(&headers(header::CONTENT_TYPE, values));
        assert_eq!(sent(&[]).unwrap(), Encoding::Json);
        assert_eq!(
            sent(&["application/json; charset=utf-8"]).unwrap(),
            Encoding::Json
        );
        assert_eq!(sent(&["application/cbor"]).unwrap(), Encoding::Cbor);
        assert_eq!(
            sent(&["text/plain"]).unwrap_err().to_string(),
            "content type must be application/json or application/cbor"
        );
    }

    #[test]
    fn etags_follow_the_bytes() {
        let a = etag(br#"{"s":"online","ts":1}"#);
        assert_eq!(a, etag(br#"{"s":"online","ts":1}"#));
        assert_ne!(a, etag(br#"{"s":"online","ts":2}"#));
        assert_eq!(a.len(), 18);
        let tag = a.to_str().unwrap();
        let inm = |values: &[&str]| none_match(&headers(header::IF_NONE_MATCH, values), &a);
        assert!(inm(&[tag]));
        assert!(inm(&[&format!("W/{tag}")]));
        assert!(inm(&[&format!("\"other\", {tag}")]));
        assert!(inm(&["\"other\"", tag]));
        assert!(inm(&["*"]));
        assert!(!inm(&[]));
        assert!(!inm(&["\"other\""]));
        assert!(!inm(&[tag.trim_matches('"')]));
    }
}
