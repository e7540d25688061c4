//! The HTTP API: one `async fn` per endpoint, dispatched on method and path.
//!
//! `POST /v1/decide`, `POST /v1/decide/batch`, `GET /healthz`, `GET /readyz`, `GET /metrics`,
//! `GET /v1/policies`, `PUT /v1/policies/{name}`, `DELETE /v1/policies/{name}`, `GET`, `POST`
//! and `PUT /v1/entities`, `GET` and `DELETE /v1/entities/{type}/{id}`. Bodies are bounded
//! before they are read; bad input is a 400 that names the field.

use std::cell::RefCell;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authz_runtime::decision::Decision;
use authz_runtime::eval::{decide, Scratch};
use authz_runtime::explain::Namer;
use authz_runtime::json::RequestError;
use authz_runtime::request::Request;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value as Json};

use super::api_error::{json_response, ApiError};
use super::{entities, policies};
use crate::host::decision_log::Line;
use crate::host::providers;
use crate::host::state::{AppState, Snapshot};

thread_local! {
    /// Evaluation buffers, one set per worker thread, reused by every decision on it.
    static SCRATCH: RefCell<(Scratch, Decision)> = RefCell::new((Scratch::new(), Decision::default()));
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

/// Answers one HTTP request.
pub async fn handle(
    state: Arc<AppState>,
    request: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let result = route(&state, request).await;
    Ok(result.unwrap_or_else(|error| {
        if matches!(
            error,
            ApiError::BadRequest { .. } | ApiError::TooLarge { .. }
        ) {
            state.metrics.bad_requests.inc();
        }
        error.into_response()
    }))
}

async fn route(
    state: &Arc<AppState>,
    request: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    match (path.as_str(), method) {
        ("/v1/decide", Method::POST) => decide_one(state, request).await,
        ("/v1/decide/batch", Method::POST) => decide_batch(state, request).await,
        ("/healthz", Method::GET) => Ok(json_response(StatusCode::OK, &json!({ "status": "ok" }))),
        ("/readyz", Method::GET) => Ok(ready(state)),
        ("/metrics", Method::GET) => Ok(metrics(state)),
        ("/v1/policies", Method::GET) => {
            policies::authorize_read(state, &request)?;
            Ok(policies::list(state))
        }
        (path, method) if path.starts_with("/v1/policies/") => {
            let name = path.trim_start_matches("/v1/policies/").to_string();
            match method {
                Method::PUT => policies::put(state, request, &name).await,
                Method::DELETE => policies::delete(state, request, &name).await,
                Method::GET => {
                    policies::authorize_read(state, &request)?;
                    policies::get(state, &name)
                }
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        ("/v1/entities", Method::GET) => entities::list(state, &request),
        ("/v1/entities", Method::POST) => entities::upsert(state, request).await,
        ("/v1/entities", Method::PUT) => entities::replace(state, request).await,
        (path, method) if path.starts_with("/v1/entities/") => {
            let rest = path.trim_start_matches("/v1/entities/");
            let Some((ty, id)) = rest.split_once('/') else {
                return Err(ApiError::NotFound);
            };
            let decode = |part: &str| {
                percent_encoding::percent_decode_str(part)
                    .decode_utf8()
                    .map(|text| text.into_owned())
                    .map_err(|_| {
                        ApiError::bad(
                            "authz::api::not_utf8",
                            "",
                            "the entity's type or id is not UTF-8 once percent-decoded",
                        )
                    })
            };
            let (ty, id) = (decode(ty)?, decode(id)?);
            match method {
                Method::GET => entities::get(state, &request, &ty, &id),
                Method::DELETE => entities::delete(state, request, &ty, &id).await,
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        (
            "/v1/decide" | "/v1/decide/batch" | "/healthz" | "/readyz" | "/metrics"
            | "/v1/policies" | "/v1/entities",
            _,
        ) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}

/// How much of a refused body the server still reads, so that the client, which may still be
/// writing it, receives the 413 rather than a connection reset (nginx's "lingering close").
const DRAIN_MAX_BYTES: u64 = 8 << 20;
/// How long the server goes on reading a refused body.
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// Reads a body of at most `limit` bytes. A body announced or found to be larger is refused with
/// 413; what the client still sends of it is read and discarded, within bounds, before answering.
pub async fn read_body(request: hyper::Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    let declared = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    // A client that waits for `100 Continue` has sent nothing yet: refusing at once is enough
    // (reading the body would invite it to send what is then thrown away).
    let waits = request
        .headers()
        .get(hyper::header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut body = request.into_body();
    if let Some(length) = declared.filter(|&length| length > limit as u64) {
        if length <= DRAIN_MAX_BYTES && !waits {
            drain(&mut body).await;
        }
        return Err(ApiError::TooLarge { limit });
    }
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut length = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            ApiError::bad(
                "authz::api::body",
                "",
                format!("cannot read the body: {error}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        length += data.len();
        if length > limit {
            drain(&mut body).await;
            return Err(ApiError::TooLarge { limit });
        }
        chunks.push(data);
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => Bytes::from(chunks.concat()),
    })
}

/// Reads and discards the rest of a refused body, up to [`DRAIN_MAX_BYTES`] and [`DRAIN_TIME`].
async fn drain(body: &mut Incoming) {
    let read = async {
        let mut drained = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                drained += data.len() as u64;
                if drained > DRAIN_MAX_BYTES {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, read).await;
}

/// Parses a body as JSON, refusing duplicate keys.
fn parse_json(body: &[u8]) -> Result<Json, ApiError> {
    super::strict_json::parse(body)
}

async fn decide_one(
    state: &Arc<AppState>,
    request: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let request_id = request_id(&request);
    let body = read_body(request, state.config.api.max_body_bytes).await?;
    let snapshot = state.snapshot.load_full();
    // The body is parsed once, straight into the runtime's request (the runtime's parser refuses
    // duplicate keys and bounds depth and size as `strict_json` does).
    let Ok(text) = std::str::from_utf8(&body) else {
        return Err(ApiError::bad(
            "authz::request::syntax",
            "",
            "invalid JSON: the body is not UTF-8",
        ));
    };
    let request = match &state.config.api.clock_field {
        // The server's clock goes into the request before it is loaded.
        Some(field) => {
            let mut json = parse_json(&body)?;
            stamp_clock(state, &snapshot, &mut json, field, "")?;
            load(&snapshot, &json, "").map_err(|error| *error)?
        }
        None => authz_runtime::json::load_request_within(
            &snapshot.program,
            &snapshot.store,
            text,
            state.config.api.max_body_bytes,
        )
        .map_err(|errors| request_errors(&errors, ""))?,
    };
    // `"explain": true` asks for the candidates of a denial; the loader has checked it is a
    // boolean, so only a request that names it is parsed for it.
    let explain = text.contains("\"explain\"")
        && serde_json::from_str::<Json>(text)
            .ok()
            .and_then(|json| json.get("explain").and_then(Json::as_bool))
            .unwrap_or(false);
    let (response, line) =
        decide_completed(state, &snapshot, (None, explain), request, &request_id).await;
    if let (Some(log), Some(line)) = (&state.decision_log, line) {
        log.record(line).await;
    }
    Ok(json_response(StatusCode::OK, &response))
}

async fn decide_batch(
    state: &Arc<AppState>,
    request: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let request_id = request_id(&request);
    let body = read_body(request, state.config.api.max_body_bytes).await?;
    let json = parse_json(&body)?;
    let Some(requests) = json.get("requests").and_then(Json::as_array) else {
        return Err(ApiError::bad(
            "authz::request::missing_field",
            "requests",
            "expected an array of decision requests",
        ));
    };
    if let Some(Json::Object(object)) = Some(&json) {
        if let Some(key) = object.keys().find(|key| *key != "requests") {
            return Err(ApiError::bad(
                "authz::request::unknown_field",
                key.clone(),
                "unknown field",
            ));
        }
    }
    let max = state.config.api.max_batch;
    if requests.len() > max {
        return Err(ApiError::bad(
            "authz::request::too_large",
            "requests",
            format!("a batch holds at most {max} requests"),
        ));
    }
    let snapshot = state.snapshot.load_full();
    // Every request is validated before any is decided: a bad batch decides nothing.
    let mut loaded = Vec::with_capacity(requests.len());
    for (index, item) in requests.iter().enumerate() {
        let prefix = format!("requests[{index}].");
        let request = match &state.config.api.clock_field {
            Some(field) => {
                let mut item = item.clone();
                stamp_clock(state, &snapshot, &mut item, field, &prefix)?;
                load(&snapshot, &item, &prefix)
            }
            None => load(&snapshot, item, &prefix),
        };
        loaded.push(request.map_err(|error| *error)?);
    }
    let mut results = Vec::with_capacity(requests.len());
    let mut lines = Vec::with_capacity(requests.len());
    for (index, (item, request)) in requests.iter().zip(loaded).enumerate() {
        let explain = item.get("explain").and_then(Json::as_bool).unwrap_or(false);
        let (response, line) = decide_completed(
            state,
            &snapshot,
            (Some(item), explain),
            request,
            &format!("{request_id}.{index}"),
        )
        .await;
        results.push(response);
        lines.extend(line);
    }
    if let Some(log) = &state.decision_log {
        for line in lines {
            log.record(line).await;
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "results": results }),
    ))
}

/// Fills the request's clock field with the server's clock; a request that gives it is a 400
/// naming the field under `field_prefix`.
fn stamp_clock(
    state: &AppState,
    snapshot: &Snapshot,
    json: &mut Json,
    field: &str,
    field_prefix: &str,
) -> Result<(), ApiError> {
    let now = state.config.api.clock.now_millis();
    crate::host::clock::stamp(&snapshot.program, json, field, now).map_err(|message| {
        ApiError::bad(
            "authz::request::reserved_field",
            format!("{field_prefix}context.{field}"),
            message,
        )
    })
}

/// Validates a JSON request against the snapshot; errors name the field under `field_prefix`.
fn load(snapshot: &Snapshot, json: &Json, field_prefix: &str) -> Result<Request, Box<ApiError>> {
    authz_runtime::json::load_request_value(&snapshot.program, &snapshot.store, json)
        .map_err(|errors| Box::new(request_errors(&errors, field_prefix)))
}

/// The 400 for an invalid request: the first error names the field (under `field_prefix`), and
/// `details` lists them all.
fn request_errors(errors: &[RequestError], field_prefix: &str) -> ApiError {
    let first = errors.first();
    ApiError::BadRequest {
        code: first
            .map_or("authz::request::invalid", |e| e.kind.code())
            .to_string(),
        field: first.map_or(String::new(), |e| format!("{field_prefix}{}", e.field)),
        message: first.map_or(String::new(), |e| e.message.clone()),
        details: errors
            .iter()
            .map(|e| json!({ "code": e.kind.code(), "field": format!("{field_prefix}{}", e.field), "message": e.message }))
            .collect(),
    }
}

/// Completes a validated request with what entity providers answer for its principal and
/// resource, then decides it. A provider that fails denies the request (fail closed) with an
/// error naming the entity and the provider; a principal or resource that exists nowhere is
/// named first among the reasons of a denial.
async fn decide_completed(
    state: &AppState,
    snapshot: &Snapshot,
    (json, explain): (Option<&Json>, bool),
    request: Request,
    request_id: &str,
) -> (Json, Option<String>) {
    match providers::complete(&state.providers, snapshot, request).await {
        Ok(request) => decide_loaded(state, snapshot, (json, explain), &request, request_id),
        Err(error) => {
            state.metrics.denied.inc();
            state.metrics.decisions_with_errors.inc();
            let errors = json!([{
                "code": error.code(),
                "entity": error.entity,
                "provider": error.url,
                "message": error.to_string(),
            }]);
            let body = json!({
                "decision": "deny",
                "policies": [],
                "errors": errors,
                "reasons": [format!("the entity provider for `{}` is unavailable", error.entity)],
                "obligations": [],
            });
            let line = state.decision_log.as_ref().map(|_| {
                Line::new()
                    .time_now()
                    .str("request_id", request_id)
                    .json("principal", json.and_then(|json| json.get("principal")))
                    .json("action", json.and_then(|json| json.get("action")))
                    .json("resource", json.and_then(|json| json.get("resource")))
                    .str("decision", "deny")
                    .json("policies", Some(&json!([])))
                    .json("errors", Some(&errors))
                    .u64("generation", snapshot.generation)
                    .finish()
            });
            (body, line)
        }
    }
}

/// Decides a validated request; returns the response body and the decision log line.
/// `json` is the request as the client sent it, when at hand, for the decision log; without it
/// the log names the principal, action and resource from the loaded request.
fn decide_loaded(
    state: &AppState,
    snapshot: &Snapshot,
    (json, explain): (Option<&Json>, bool),
    request: &Request,
    request_id: &str,
) -> (Json, Option<String>) {
    let started = Instant::now();
    let body = SCRATCH.with(|cell| {
        let mut buffers = cell.borrow_mut();
        let (scratch, decision) = &mut *buffers;
        decide(
            &snapshot.program,
            &snapshot.store,
            request,
            scratch,
            decision,
        );
        let namer = Namer {
            program: &snapshot.program,
            store: &snapshot.store,
            request,
        };
        let metrics = &state.metrics;
        let counter = if decision.allow {
            &metrics.allowed
        } else {
            &metrics.denied
        };
        counter.inc();
        if !decision.errors.is_empty() {
            metrics.decisions_with_errors.inc();
        }
        let mut body = namer.decision_json(decision);
        // A principal or resource the decision found missing is the cause to name first.
        let causes = namer.missing_causes(decision);
        if let (false, Some(Json::Array(reasons))) = (causes.is_empty(), body.get_mut("reasons")) {
            for (index, cause) in causes.into_iter().enumerate() {
                reasons.insert(index, Json::String(cause));
            }
        }
        if explain && !decision.allow {
            // Which permits were candidates, and where each fell short.
            let candidates = authz_runtime::explain::candidates(
                &snapshot.program,
                &snapshot.store,
                request,
                scratch,
            );
            if let Some(members) = body.as_object_mut() {
                members.insert("candidates".to_string(), namer.candidates_json(&candidates));
            }
        }
        body
    });
    let latency = started.elapsed();
    state
        .metrics
        .observe_latency(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    let line = state.decision_log.as_ref().map(|_| {
        let namer = Namer {
            program: &snapshot.program,
            store: &snapshot.store,
            request,
        };
        let (principal, action, resource) = match json {
            Some(json) => (
                json.get("principal").cloned(),
                json.get("action").cloned(),
                json.get("resource").cloned(),
            ),
            None => (
                Some(namer.entity_json(request.principal)),
                Some(Json::from(namer.text(request.action.id))),
                Some(namer.entity_json(request.resource)),
            ),
        };
        Line::new()
            .time_now()
            .str("request_id", request_id)
            .json("principal", principal.as_ref())
            .json("action", action.as_ref())
            .json("resource", resource.as_ref())
            .json("decision", body.get("decision"))
            .json("policies", body.get("policies"))
            .json("errors", body.get("errors"))
            .u64(
                "latency_us",
                u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            )
            .u64("generation", snapshot.generation)
            .finish()
    });
    (body, line)
}

fn request_id(request: &hyper::Request<Incoming>) -> String {
    request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty() && value.len() <= 128)
        .map_or_else(
            || format!("r{}", REQUEST_IDS.fetch_add(1, Ordering::Relaxed)),
            str::to_string,
        )
}

fn ready(state: &AppState) -> Response<Full<Bytes>> {
    let snapshot = state.snapshot.load();
    let last_error = state
        .status
        .lock()
        .ok()
        .and_then(|status| status.last_error.clone());
    let mut body = json!({
        "ready": true,
        "policies": snapshot.program.policies.len(),
        "generation": snapshot.generation,
        "stale": last_error.is_some(),
        "last_error": last_error,
    });
    if let (Some(readiness), Some(members)) = (&state.readiness, body.as_object_mut()) {
        members.extend(readiness());
    }
    if let (Some(bundle), Some(members)) = (&state.bundle, body.as_object_mut()) {
        members.insert("bundle".to_string(), bundle.readiness());
    }
    json_response(StatusCode::OK, &body)
}

fn metrics(state: &AppState) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(state.metrics.render())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    response
}
