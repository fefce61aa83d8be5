//! Device service: device state and settings.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use downstream::models::{Device, DeviceSettingsPatch};
use serde_json::Value;

use super::{ApiError, ApiResult, JsonBody, PathParams, Route, SharedState, route};

const SETTINGS_FIELDS: [&str; 4] = [
    "target_temperature",
    "mode",
    "schedule",
    "auto_mode_enabled",
];

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/devices/{id}", get_device),
        route(Method::PATCH, "/devices/{id}/settings", patch_settings),
    ]
}

async fn get_device(
    State(state): State<SharedState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Device>> {
    state
        .data()
        .devices
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format_args!("device {id}")))
}

/// Checks the raw JSON before decoding it as the contract's patch type, which
/// tolerates unknown fields and reads `null` as "absent": here an unknown
/// field, a `null` other than `schedule`, an empty patch or a bad value is a 400.
fn parse_patch(body: Value) -> ApiResult<DeviceSettingsPatch> {
    let Value::Object(fields) = &body else {
        return Err(ApiError::bad_request(
            "settings patch must be a JSON object",
        ));
    };
    if fields.is_empty() {
        return Err(ApiError::bad_request("settings patch is empty"));
    }
    for (key, value) in fields {
        if !SETTINGS_FIELDS.contains(&key.as_str()) {
            return Err(ApiError::bad_request(format!("unknown field {key}")));
        }
        if value.is_null() && key != "schedule" {
            return Err(ApiError::bad_request(format!("{key} must not be null")));
        }
    }
    serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("invalid settings: {e}")))
}

async fn patch_settings(
    State(state): State<SharedState>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Device>> {
    let mut data = state.data();
    let device = data
        .devices
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found(format_args!("device {id}")))?;
    let patch = parse_patch(body)?;
    let settings = &mut device.settings;
    if let Some(t) = patch.target_temperature {
        settings.target_temperature = t;
    }
    if let Some(mode) = patch.mode {
        settings.mode = mode;
    }
    if let Some(schedule) = patch.schedule {
        settings.schedule = schedule;
    }
    if let Some(auto) = patch.auto_mode_enabled {
        settings.auto_mode_enabled = auto;
    }
    Ok(Json(device.clone()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn patch_validation() {
        assert!(parse_patch(json!({})).is_err());
        assert!(parse_patch(json!([])).is_err());
        assert!(parse_patch(json!({"mode": "turbo"})).is_err());
        assert!(parse_patch(json!({"colour": "red"})).is_err());
        assert!(parse_patch(json!({"mode": null})).is_err());
        assert!(parse_patch(json!({"target_temperature": "warm"})).is_err());
        let patch = parse_patch(json!({"schedule": null, "mode": "eco"})).unwrap();
        assert_eq!(patch.schedule, Some(None));
        assert!(patch.target_temperature.is_none());
    }
}
