//! GraphQL over SSE, the `graphql-sse` library's distinct connections mode:
//! one request, one operation; `event: next` per response (its `id:` the
//! order event's id, so a client that reconnects with `Last-Event-ID`
//! resumes right after it), `event: complete` at the end, `:` comments as
//! heartbeats.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::stream::StreamExt;
use http::{HeaderValue, StatusCode, header};

use downstream::models::EventId;

use super::{EndReason, Subscription};

const COMPLETE: &[u8] = b"event: complete\ndata:\n\n";
const HEARTBEAT: &[u8] = b":\n\n";

pub(super) fn respond(subscription: Subscription, heartbeat: Duration) -> Response {
    let frames = super::frames(subscription, heartbeat, Frames);
    let mut response = Response::new(Body::from_stream(frames.map(Ok::<_, std::io::Error>)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies (nginx) must pass each event on at once.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

struct Frames;

impl super::Framing for Frames {
    fn next(&self, response: async_graphql::Response, id: Option<EventId>) -> Bytes {
        let data = super::response_json(response);
        let mut frame = String::with_capacity(data.len() + 32);
        frame.push_str("event: next\n");
        if let Some(id) = id {
            frame.push_str("id: ");
            frame.push_str(&id.to_string());
            frame.push('\n');
        }
        frame.push_str("data: ");
        frame.push_str(&data);
        frame.push_str("\n\n");
        Bytes::from(frame)
    }

    fn end(&self, reason: Option<EndReason>) -> Bytes {
        match reason {
            // A clean end: the client must not take it for an error.
            None | Some(EndReason::ShuttingDown) => Bytes::from_static(COMPLETE),
            Some(reason) => {
                let errors = serde_json::json!({ "errors": reason.errors() });
                Bytes::from(format!(
                    "event: next\ndata: {errors}\n\nevent: complete\ndata:\n\n"
                ))
            }
        }
    }

    fn heartbeat(&self) -> Bytes {
        Bytes::from_static(HEARTBEAT)
    }
}
