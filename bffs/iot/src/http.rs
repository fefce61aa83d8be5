//! The IoT BFF's routes behind the shared front door.
//!
//! Every handler follows one order: who is asking (401), what the body says
//! (400, before any downstream call), whose device it is (404), and only
//! then the change.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Extension, Router};
use bff_server::{Authentication, BffError, Config, FrontDoor, JwtVerifier, StartError, Viewer};
use downstream::models::Device;
use downstream::{Downstream, RequestContext};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::compact::{CompactSettings, CompactStatus};
use crate::encoding::{Encoding, etag, none_match};
use crate::error::{compact_error_body, error_response};
use crate::patch;

/// `GET`: the device's compact status.
pub const STATUS_PATH: &str = "/v1/devices/{id}";
/// `PATCH`: change the device's settings.
pub const SETTINGS_PATH: &str = "/v1/devices/{id}/settings";
/// The API's routes (method, path), as served; `schema/iot.openapi.json`
/// must describe exactly these (plus the front door's `/healthz`, `/readyz`).
pub const ROUTES: [(&str, &str); 2] = [("GET", STATUS_PATH), ("PATCH", SETTINGS_PATH)];

/// The largest request body the IoT BFF accepts; larger ones get 413.
///
/// The front door takes its limit from `config.body_limit_bytes`, whose
/// generic default (1 MiB) suits GraphQL documents, not devices. Here the
/// configured limit is capped at 1 KiB rather than replaced only when it is
/// the default: the biggest valid settings patch is about 100 bytes (under
/// 400 with every schedule character `\u`-escaped), so more than 1 KiB is
/// never needed, and a deployment that sets one `BFF_BODY_LIMIT_BYTES` for all
/// BFFs must not widen the device API's contract by accident. A lower
/// configured limit still applies.
pub const IOT_BODY_LIMIT_BYTES: usize = 1024;

#[derive(Clone)]
struct AppState {
    downstream: Downstream,
}

/// The whole iot BFF as a router, front door included.
pub fn app(config: &Config) -> Result<Router, StartError> {
    // The process's one HTTP client: downstream calls and the JWKS fetch.
    let http = downstream::http::build_http_client().map_err(StartError::HttpClient)?;
    let verifier = Arc::new(JwtVerifier::from_config(&config.jwt, &http)?);
    let shared = bff_server::connect_shared_state(config)?;
    let state = AppState {
        downstream: Downstream::with_shared_state(&config.downstream, http, &shared),
    };
    let mut config = config.clone();
    config.body_limit_bytes = config.body_limit_bytes.min(IOT_BODY_LIMIT_BYTES);

    let routes = Router::new()
        .route(
            STATUS_PATH,
            get(get_status).fallback(|| method_not_allowed("GET, HEAD")),
        )
        .route(
            SETTINGS_PATH,
            patch(patch_settings).fallback(|| method_not_allowed("PATCH")),
        )
        .fallback(unknown_route)
        .with_state(state);
    Ok(FrontDoor::new(&config, verifier)
        .with_error_body(compact_error_body)
        .with_shared_state(shared)
        .wrap(routes))
}

/// `GET /v1/devices/{id}`: `{"s","t","b","ts"}` in JSON or CBOR, with an
/// `ETag`; `If-None-Match` with the current tag gets 304 and no body.
async fn get_status(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    auth: Authentication,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let answer = async {
        let viewer = auth.require_viewer()?;
        let id = device_id(id)?;
        let device = accessible_device(&state, &ctx, viewer, &id).await?;
        let encoding = Encoding::wanted(&headers);
        let body = encoding.encode(&CompactStatus::from(&device))?;
        let tag = etag(&body);
        // Checked only now: a tag must not tell a stranger anything either.
        let answer = if none_match(&headers, &tag) {
            Answer::NotModified(tag)
        } else {
            Answer::Body {
                encoding,
                body,
                tag: Some(tag),
            }
        };
        Ok(answer)
    };
    answer
        .await
        .map_or_else(error_response, IntoResponse::into_response)
}

/// `PATCH /v1/devices/{id}/settings` with `{"t","m","s","a"}` (any non-empty
/// subset) in JSON or CBOR → the device's new settings in the same keys.
async fn patch_settings(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    auth: Authentication,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let answer = async {
        let viewer = auth.require_viewer()?;
        let id = device_id(id)?;
        // A device may only ever touch itself: refused without a call.
        if viewer.as_device().is_some_and(|own| own != id) {
            return Err(not_found());
        }
        let patch = patch::parse(&body, Encoding::sent(&headers)?)
            .map_err(|refusal| BffError::BadUserInput(refusal.to_string()))?;
        if viewer.as_user().is_some() {
            // A person may change only their own devices, so look first:
            // the PATCH below must never reach someone else's device.
            accessible_device(&state, &ctx, viewer, &id).await?;
        }
        let device = state
            .downstream
            .devices
            .update_settings(&ctx, &id, &patch)
            .await?;
        let encoding = Encoding::wanted(&headers);
        Ok(Answer::Body {
            encoding,
            body: encoding.encode(&CompactSettings::from(&device.settings))?,
            tag: None,
        })
    };
    answer
        .await
        .map_or_else(error_response, IntoResponse::into_response)
}

/// 404 `{"e":"not found"}` for every path the API does not have.
async fn unknown_route() -> Response {
    error_response(not_found())
}

/// 405 with `Allow` and the compact body: axum's own 405 has no body, and a
/// device must be able to read every error the same way.
async fn method_not_allowed(allow: &'static str) -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, HeaderValue::from_static(allow))],
        axum::Json(serde_json::json!({ "e": "method not allowed" })),
    )
        .into_response()
}

/// The device `viewer` may see, or not found: a user sees the devices they
/// own, a device sees itself, and neither learns whether other devices exist.
async fn accessible_device(
    state: &AppState,
    ctx: &RequestContext,
    viewer: &Viewer,
    id: &str,
) -> Result<Device, BffError> {
    if viewer.as_device().is_some_and(|own| own != id) {
        return Err(not_found());
    }
    let device = state.downstream.devices.get(ctx, id).await?;
    let allowed = match (viewer.as_user(), viewer.as_device()) {
        (Some(user_id), _) => device.owner_id == user_id,
        (_, Some(device_id)) => device.id == device_id,
        (None, None) => false,
    };
    if allowed {
        Ok(device)
    } else {
        Err(not_found())
    }
}

/// The `{id}` of the path, if it can name a device (the shared id rule,
/// [`downstream::is_valid_id`]: `%2e%2e` decodes to `..`, which would
/// change the downstream path). Anything else, or a path that does not
/// even decode, is no device: 404 before any call.
fn device_id(id: Result<Path<String>, PathRejection>) -> Result<String, BffError> {
    match id {
        Ok(Path(id)) if downstream::is_valid_id(&id) => Ok(id),
        _ => Err(not_found()),
    }
}

fn not_found() -> BffError {
    BffError::NotFound("device".into())
}

/// A successful answer in the negotiated encoding.
enum Answer {
    Body {
        encoding: Encoding,
        body: Vec<u8>,
        tag: Option<HeaderValue>,
    },
    NotModified(HeaderValue),
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        // The body depends on `Accept`, so caches must key on it.
        let vary = (header::VARY, HeaderValue::from_static("accept"));
        match self {
            Answer::Body {
                encoding,
                body,
                tag,
            } => {
                let mut response =
                    ([(header::CONTENT_TYPE, encoding.content_type())], body).into_response();
                if let Some(tag) = tag {
                    response.headers_mut().insert(header::ETAG, tag);
                    response.headers_mut().insert(vary.0, vary.1);
                }
                response
            }
            Answer::NotModified(tag) => {
                (StatusCode::NOT_MODIFIED, [(header::ETAG, tag), vary]).into_response()
            }
        }
    }
}
