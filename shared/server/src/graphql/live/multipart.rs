//! Apollo's multipart HTTP subscriptions (`Accept:
//! multipart/mixed;subscriptionSpec=1.0`), what Apollo iOS, Kotlin and Web
//! speak: one `application/json` part per response as `{"payload": …}`, a
//! `{}` part as heartbeat, a transport error as `{"payload": null,
//! "errors": […]}`, and the closing boundary at the end.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use downstream::models::EventId;
use futures::stream::StreamExt;
use http::{HeaderValue, StatusCode, header};

use super::{EndReason, Subscription};

/// Exactly what Apollo's router sends: the clients' parsers were written
/// against it.
const CONTENT_TYPE: &str = "multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0";
/// Opens every part (the first one's CRLF is the empty preamble's end).
const PART: &str = "\r\n--graphql\r\ncontent-type: application/json\r\n\r\n";
const CLOSE: &[u8] = b"\r\n--graphql--\r\n";

pub(super) fn respond(subscription: Subscription, heartbeat: Duration) -> Response {
    let frames = super::frames(subscription, heartbeat, Frames);
    let mut response = Response::new(Body::from_stream(frames.map(Ok::<_, std::io::Error>)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

struct Frames;

fn part(json: &str) -> Bytes {
    let mut part = String::with_capacity(PART.len() + json.len());
    part.push_str(PART);
    part.push_str(json);
    Bytes::from(part)
}

impl super::Framing for Frames {
    fn next(&self, response: async_graphql::Response, _id: Option<EventId>) -> Bytes {
        let payload = super::response_json(response);
        part(&format!("{{\"payload\":{payload}}}"))
    }

    fn end(&self, reason: Option<EndReason>) -> Bytes {
        match reason {
            None | Some(EndReason::ShuttingDown) => Bytes::from_static(CLOSE),
            Some(reason) => {
                let error = serde_json::json!({ "payload": null, "errors": reason.errors() });
                let mut end = part(&error.to_string()).to_vec();
                end.extend_from_slice(CLOSE);
                Bytes::from(end)
            }
        }
    }

    fn heartbeat(&self) -> Bytes {
        part("{}")
    }
}
