//! Errors of the HTTP API: each has a status and a small JSON body that names the field at fault.
//! Internal faults are logged and answered with a fixed text; their details never reach clients.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::json;

/// An error answered to an API client.
#[derive(Debug)]
pub enum ApiError {
    /// Bad input: 400, naming the field (empty for the whole body).
    BadRequest {
        /// A stable code such as `authz::request::unknown_action`.
        code: String,
        /// The JSON path of the field at fault.
        field: String,
        /// What is wrong.
        message: String,
        /// Every problem found, when there are several.
        details: Vec<serde_json::Value>,
    },
    /// The body is larger than `server.max_body_bytes`: 413.
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// No such route: 404.
    NotFound,
    /// The route exists but what it names does not (an entity): 404 with its own code.
    NotFoundNamed {
        /// A stable code such as `authz::api::no_such_entity`.
        code: &'static str,
        /// What is missing.
        message: String,
    },
    /// The route exists but not with this method: 405.
    MethodNotAllowed,
    /// A write without the right bearer token: 401.
    Unauthorized,
    /// The write API is off because no admin token is configured: 403.
    WritesDisabled,
    /// Something went wrong inside; logged, answered 500 with no details.
    Internal(String),
}

impl ApiError {
    /// A 400 for one field.
    pub fn bad(code: &str, field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code: code.to_string(),
            field: field.into(),
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// The response.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let (status, body) = match self {
            ApiError::BadRequest {
                code,
                field,
                message,
                details,
            } => {
                let mut error = serde_json::Map::new();
                error.insert("code".to_string(), json!(code));
                error.insert("field".to_string(), json!(field));
                error.insert("message".to_string(), json!(message));
                if !details.is_empty() {
                    error.insert("details".to_string(), serde_json::Value::Array(details));
                }
                (StatusCode::BAD_REQUEST, json!({ "error": error }))
            }
            ApiError::TooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "error": { "code": "authz::api::too_large", "field": "", "message": format!("the body is larger than {limit} bytes") } }),
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                json!({ "error": { "code": "authz::api::not_found", "message": "no such endpoint" } }),
            ),
            ApiError::NotFoundNamed { code, message } => (
                StatusCode::NOT_FOUND,
                json!({ "error": { "code": code, "message": message } }),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({ "error": { "code": "authz::api::method_not_allowed", "message": "method not allowed on this endpoint" } }),
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({ "error": { "code": "authz::api::unauthorized", "message": "a valid admin bearer token is required" } }),
            ),
            ApiError::WritesDisabled => (
                StatusCode::FORBIDDEN,
                json!({ "error": { "code": "authz::api::writes_disabled", "message": "writes are off: no admin token is configured" } }),
            ),
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": { "code": "authz::api::internal", "message": "something went wrong" } }),
                )
            }
        };
        let mut response = json_response(status, &body);
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was not read: the connection cannot carry another request,
            // and the client must know before it sends one.
            response.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
