//! Checking answers against the OpenAPI documents in `schema/` (devstack's
//! downstream contract, the IoT API), with no schema-validator dependency.

use serde_json::Value;

/// Follows local `$ref`s (`#/components/...`).
pub fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
        let pointer = reference.strip_prefix('#').unwrap();
        value = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling $ref {reference}"));
    }
    value
}

fn has_type(value: &Value, ty: &str) -> bool {
    match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("unsupported type {other}"),
    }
}

/// Checks `value` against `schema` (a schema of `doc`), for the JSON Schema
/// subset our OpenAPI documents use: `$ref`, `oneOf`/`anyOf`, `type` (one or
/// a list), `enum`, `required`, `properties`, `additionalProperties`,
/// `minProperties`, `items`, `minItems`, `minimum`/`maximum`,
/// `minLength`/`maxLength` (characters). Problems go to `errors`, each with
/// a JSON path.
pub fn check(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    for key in ["oneOf", "anyOf"] {
        if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
            let matches = alternatives
                .iter()
                .filter(|alt| {
                    let mut errs = Vec::new();
                    check(doc, alt, value, at, &mut errs);
                    errs.is_empty()
                })
                .count();
            let ok = if key == "oneOf" {
                matches == 1
            } else {
                matches >= 1
            };
            if !ok {
                errors.push(format!("{at}: {matches} alternatives of {key} match"));
            }
        }
    }
    match schema.get("type") {
        Some(Value::String(ty)) if !has_type(value, ty) => {
            errors.push(format!("{at}: expected {ty}, got {value}"));
            return;
        }
        Some(Value::Array(types))
            if !types.iter().any(|t| has_type(value, t.as_str().unwrap())) =>
        {
            errors.push(format!("{at}: expected one of {types:?}, got {value}"));
            return;
        }
        _ => {}
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} not in {allowed:?}"));
    }
    if let Some(number) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && number < min
        {
            errors.push(format!("{at}: {number} < {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && number > max
        {
            errors.push(format!("{at}: {number} > {max}"));
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && chars < min
        {
            errors.push(format!("{at}: shorter than {min}"));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && chars > max
        {
            errors.push(format!("{at}: longer than {max}"));
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap();
            if !object.contains_key(name) {
                errors.push(format!("{at}: missing required property {name}"));
            }
        }
        if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
            && (object.len() as u64) < min
        {
            errors.push(format!("{at}: fewer than {min} properties"));
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, item) in object {
            let at = format!("{at}.{name}");
            match (
                properties.and_then(|p| p.get(name)),
                schema.get("additionalProperties"),
            ) {
                (Some(property), _) => check(doc, property, item, &at, errors),
                (None, Some(Value::Bool(false))) => errors.push(format!("{at}: not allowed")),
                (None, Some(extra)) if extra.is_object() => check(doc, extra, item, &at, errors),
                (None, _) => {}
            }
        }
    }
    if let Some(array) = value.as_array() {
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && (array.len() as u64) < min
        {
            errors.push(format!("{at}: fewer than {min} items"));
        }
        if let Some(items) = schema.get("items") {
            for (i, item) in array.iter().enumerate() {
                check(doc, items, item, &format!("{at}[{i}]"), errors);
            }
        }
    }
}
