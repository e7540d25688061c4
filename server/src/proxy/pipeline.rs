//! The request pipeline: normalize → identify → route → decide → limit → rewrite headers →
//! forward → audit. One function per step, in that order; every early answer is a small JSON body
//! and is audited like the rest.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use authz_runtime::decision::Decision;
use authz_runtime::eval::{decide, Scratch};
use authz_runtime::explain::Namer;
use authz_runtime::schema::ValueType;
use authz_runtime::value::IpNet;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value as Json};

use super::assertion::{Asserted, AssertionSigner};
use super::config::{Mode, ProxyConfig};
use super::forward::{self, ForwardError, ProxyBody, UpstreamClient};
use super::headers;
use super::identity::mtls::PeerCertificate;
use super::identity::{Authenticator, AUTH_METHOD_HEADER};
use super::limits::{self, Limiters};
use super::normalize;
use super::shared_limits::{Declared, SharedLimits, Unavailable};
use crate::serve::decision_log::Line;
use crate::serve::state::{AppState, Snapshot};

/// Everything the pipeline shares.
pub struct ProxyState {
    /// Snapshot, metrics, decision log and reloads, as for `authz serve`.
    pub app: Arc<AppState>,
    /// The proxy's settings.
    pub config: ProxyConfig,
    /// Trusted proxy ranges.
    pub trusted: Vec<IpNet>,
    /// Credential verification.
    pub authenticator: Authenticator,
    /// Signs the identity assertion sent upstream, when configured.
    pub assertion: Option<AssertionSigner>,
    /// The headers the proxy sets from verified identity (the identity headers and the
    /// assertion's), removed from incoming requests in every spelling.
    pub stripped_headers: Vec<String>,
    /// Upstreams by path prefix, longest first: (prefix, `scheme://authority`, name).
    pub upstreams: Vec<(String, String, String)>,
    /// The pooled upstream client.
    pub client: UpstreamClient,
    /// Rate limiters, rebuilt when the policy generation changes.
    pub limiters: Mutex<(u64, Arc<Limiters>)>,
    /// Rate limits kept in Redis, shared with other replicas; when set, `limiters` is unused.
    pub shared_limits: Option<SharedLimits>,
}

/// What the audit line records of one request.
struct Verdict {
    status: u16,
    decision: &'static str,
    principal: Json,
    action: Json,
    resource: Json,
    policies: Json,
    errors: Json,
    reason: Option<String>,
}

impl Verdict {
    fn early(status: StatusCode, reason: &str) -> Verdict {
        Verdict {
            status: status.as_u16(),
            decision: "deny",
            principal: Json::Null,
            action: Json::Null,
            resource: Json::Null,
            policies: json!([]),
            errors: json!([]),
            reason: Some(reason.to_string()),
        }
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<(Scratch, Decision)> = std::cell::RefCell::new((Scratch::new(), Decision::default()));
}

/// Answers one request. `client_cert` is the connection's verified TLS client certificate: it
/// names the principal of requests without a bearer token or API key (a credential in the
/// request wins, and the audit line records both).
pub async fn handle(
    state: Arc<ProxyState>,
    peer: SocketAddr,
    client_cert: Option<Arc<PeerCertificate>>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    // What the audit line records of the request as it came, taken only when there is a log.
    let audited = state.app.decision_log.is_some().then(|| {
        let request_id = request
            .headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty() && value.len() <= 128)
            .map(str::to_string);
        (
            request.method().as_str().to_string(),
            request.uri().to_string(),
            request_id,
        )
    });
    let (response, verdict) = pipeline(&state, peer, client_cert.as_deref(), request).await;
    if let (Some(log), Some((method, target, request_id))) = (&state.app.decision_log, audited) {
        let mut line = Line::new()
            .u64(
                "time",
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
            )
            .opt_str("request_id", request_id.as_deref())
            .str("client", &peer.ip().to_string())
            .str("method", &method)
            .str("target", &target)
            .u64("status", u64::from(verdict.status))
            .str("decision", verdict.decision)
            .json("principal", Some(&verdict.principal))
            .json("action", Some(&verdict.action))
            .json("resource", Some(&verdict.resource))
            .json("policies", Some(&verdict.policies))
            .json("errors", Some(&verdict.errors))
            .opt_str("reason", verdict.reason.as_deref())
            .u64("latency_us", started.elapsed().as_micros() as u64);
        if let Some(cert) = &client_cert {
            line = line.opt_str("client_cert", cert.name.as_deref());
        }
        log.record(line.finish()).await;
    }
    Ok(response)
}

/// Moves a member out of a JSON object (`null` when absent).
fn take(object: &mut Json, key: &str) -> Json {
    object
        .as_object_mut()
        .and_then(|members| members.remove(key))
        .unwrap_or(Json::Null)
}

fn json_response(status: StatusCode, body: &Json) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn refuse(status: StatusCode, code: &str, message: &str) -> (Response<ProxyBody>, Verdict) {
    let body = json!({ "decision": "deny", "error": { "code": code, "message": message } });
    (
        json_response(status, &body),
        Verdict::early(status, message),
    )
}

async fn pipeline(
    state: &ProxyState,
    peer: SocketAddr,
    client_cert: Option<&PeerCertificate>,
    mut request: Request<Incoming>,
) -> (Response<ProxyBody>, Verdict) {
    let ext_authz = state.config.proxy.mode == Mode::ExtAuthz;
    let peer_trusted = headers::is_trusted(peer.ip(), &state.trusted);

    // 1. Normalize, once: route, decide and forward the same path.
    let (method, target) = original_request(&request, ext_authz && peer_trusted);
    let host = request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let normalized = match normalize::normalize(&method, &target, host.as_deref()) {
        Ok(normalized) => normalized,
        Err(error) => {
            let code = format!("authz::proxy::{}", error.code());
            return refuse(StatusCode::BAD_REQUEST, &code, &error.to_string());
        }
    };

    // Header hygiene before anything reads them.
    let headers_mut = request.headers_mut();
    headers::remove_hop_by_hop(headers_mut);
    headers::strip_identity_headers(
        headers_mut,
        &state.config.proxy.identity_header_prefix,
        &state.stripped_headers,
    );
    let client_ip = headers::forwarded(headers_mut, peer.ip(), &state.trusted, host.as_deref());

    // 2. Identify.
    let identity = match state.authenticator.authenticate(request.headers()).await {
        Ok(Some(identity)) => Some(identity),
        Ok(None) => match client_cert.map(PeerCertificate::request_identity) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(identity))) => Some(identity),
            Some(Err(error)) => {
                tracing::info!(reason = %error, code = error.code(), "client certificate names no principal");
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "authz::proxy::client_certificate",
                    "the client certificate names no principal",
                );
            }
        },
        Err(error) => {
            tracing::info!(reason = %error, "credential rejected");
            return refuse(
                StatusCode::UNAUTHORIZED,
                error.code(),
                error.client_message(),
            );
        }
    };
    let principal = match (&identity, &state.config.proxy.anonymous) {
        (Some(identity), _) => identity.principal.clone(),
        (None, Some(anonymous)) => json!({ "type": anonymous.ty, "id": anonymous.id }),
        (None, None) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "authz::proxy::no_credentials",
                "credentials are required",
            )
        }
    };

    // 3. Route.
    let snapshot = state.app.snapshot.load_full();
    let segments: Vec<&str> = normalized.segments();
    let Some(route) = snapshot.program.routes.find(&method, &segments) else {
        let (response, mut verdict) = refuse(
            StatusCode::FORBIDDEN,
            "authz::proxy::no_route",
            "no route matches this request",
        );
        verdict.principal = principal;
        return (response, verdict);
    };
    let action = snapshot
        .store
        .interner
        .resolve(route.route.action.id)
        .unwrap_or("")
        .to_string();
    let resource = json!({
        "type": snapshot.program.schema.type_name(route.route.resource_type),
        "id": route.resource_id,
    });

    // 4. Decide.
    let mut decision_request = json!({
        "principal": principal,
        "action": action,
        "resource": resource,
        "context": context(state, &snapshot, &action, &method, normalized.path(), normalized.query(), request.headers(), client_ip),
    });
    // A token that carries attributes defines its principal for this request (the entity it
    // describes replaces a stored one); a token without mapped attributes names a stored entity.
    let carries_attributes = identity
        .as_ref()
        .and_then(|identity| identity.entity.get("attrs"))
        .and_then(Json::as_object)
        .is_some_and(|attrs| !attrs.is_empty());
    if let (true, Some(identity), Some(object)) = (
        carries_attributes,
        &identity,
        decision_request.as_object_mut(),
    ) {
        object.insert("entities".to_string(), json!([identity.entity]));
    }
    let loaded = match authz_runtime::json::load_request_value(
        &snapshot.program,
        &snapshot.store,
        &decision_request,
    ) {
        Ok(loaded) => loaded,
        Err(errors) => {
            // Fail closed: a request the schema does not describe is denied.
            let detail: Vec<String> = errors.iter().map(ToString::to_string).collect();
            tracing::info!(errors = ?detail, "the request does not fit the schema; denied");
            let (response, mut verdict) = refuse(
                StatusCode::FORBIDDEN,
                "authz::proxy::invalid_request",
                "the request cannot be authorized",
            );
            verdict.principal = take(&mut decision_request, "principal");
            verdict.action = json!(action);
            verdict.resource = take(&mut decision_request, "resource");
            verdict.errors = json!(detail);
            return (response, verdict);
        }
    };
    let mut explained = SCRATCH.with(|cell| {
        let mut buffers = cell.borrow_mut();
        let (scratch, decision) = &mut *buffers;
        decide(
            &snapshot.program,
            &snapshot.store,
            &loaded,
            scratch,
            decision,
        );
        let counter = if decision.allow {
            &state.app.metrics.allowed
        } else {
            &state.app.metrics.denied
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Namer {
            program: &snapshot.program,
            store: &snapshot.store,
            request: &loaded,
        }
        .decision_json(decision)
    });
    let mut verdict = Verdict {
        status: 200,
        decision: "allow",
        principal: take(&mut decision_request, "principal"),
        action: json!(action),
        resource: take(&mut decision_request, "resource"),
        policies: take(&mut explained, "policies"),
        errors: take(&mut explained, "errors"),
        reason: None,
    };
    if explained.get("decision").and_then(Json::as_str) != Some("allow") {
        let reasons = match take(&mut explained, "reasons") {
            Json::Null => json!([]),
            reasons => reasons,
        };
        verdict.status = 403;
        verdict.decision = "deny";
        let body = json!({ "decision": "deny", "reasons": reasons });
        return (json_response(StatusCode::FORBIDDEN, &body), verdict);
    }

    // 5. Limit.
    let limit = match enforce_limits(state, &snapshot, &explained).await {
        Ok(limit) => limit,
        Err(Unavailable) => {
            // Gateways treat a 5xx from their authorization service as a failure that
            // `failure_mode_allow` may let through: in `ext_authz` mode the refusal is a 429.
            let status = if ext_authz {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            verdict.status = status.as_u16();
            verdict.decision = "limited";
            verdict.reason = Some("rate limits unavailable".to_string());
            let body = json!({ "decision": "deny", "reasons": ["rate limits are unavailable; try again shortly"] });
            let mut response = json_response(status, &body);
            response
                .headers_mut()
                .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
            return (response, verdict);
        }
    };
    if let Some(limit) = &limit {
        if !limit.allowed {
            verdict.status = 429;
            verdict.decision = "limited";
            verdict.reason = Some(format!("limit `{}`", limit.limit));
            let body = json!({ "decision": "deny", "reasons": [format!("rate limit `{}` exceeded", limit.limit)] });
            let mut response = json_response(StatusCode::TOO_MANY_REQUESTS, &body);
            rate_limit_headers(response.headers_mut(), limit);
            return (response, verdict);
        }
    }

    // 6. Rewrite headers: set identity headers only from verified identity.
    if let Some(identity) = &identity {
        for (name, value) in &identity.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                request.headers_mut().insert(name, value);
            }
        }
    }

    if ext_authz {
        let mut response = json_response(StatusCode::OK, &json!({ "decision": "allow" }));
        if let Err(detail) = assert_identity(
            state,
            response.headers_mut(),
            &identity,
            &verdict,
            &action,
            (&method, &normalized, None),
        ) {
            return cannot_assert(&detail, verdict);
        }
        for (name, value) in request.headers() {
            if name
                .as_str()
                .starts_with(&state.config.proxy.identity_header_prefix)
            {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
        if let Some(limit) = &limit {
            rate_limit_headers(response.headers_mut(), limit);
        }
        return (response, verdict);
    }

    // 7. Forward.
    let Some((_, base, name)) = state
        .upstreams
        .iter()
        .find(|(prefix, _, _)| path_has_prefix(normalized.path(), prefix))
    else {
        verdict.status = 502;
        return (
            json_response(
                StatusCode::BAD_GATEWAY,
                &json!({ "error": { "code": "authz::proxy::no_upstream", "message": "no upstream serves this path" } }),
            ),
            verdict,
        );
    };
    let uri = format!("{base}{}", normalized.path_and_query());
    let Ok(uri) = uri.parse::<hyper::Uri>() else {
        verdict.status = 502;
        return (
            json_response(
                StatusCode::BAD_GATEWAY,
                &json!({ "error": { "code": "authz::proxy::upstream", "message": "bad gateway" } }),
            ),
            verdict,
        );
    };
    if let Err(detail) = assert_identity(
        state,
        request.headers_mut(),
        &identity,
        &verdict,
        &action,
        (&method, &normalized, Some(name.as_str())),
    ) {
        return cannot_assert(&detail, verdict);
    }
    *request.uri_mut() = uri;
    *request.version_mut() = hyper::Version::HTTP_11;
    let timeout = Duration::from_millis(state.config.proxy.upstream_timeout_ms);
    match forward::forward(&state.client, request, timeout).await {
        Ok(mut response) => {
            if let Some(limit) = &limit {
                rate_limit_headers(response.headers_mut(), limit);
            }
            verdict.status = response.status().as_u16();
            (response, verdict)
        }
        Err(ForwardError::Timeout) => {
            tracing::warn!(upstream = %name, "upstream timed out");
            verdict.status = 504;
            (
                json_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    &json!({ "error": { "code": "authz::proxy::upstream_timeout", "message": "the upstream did not answer in time" } }),
                ),
                verdict,
            )
        }
        Err(ForwardError::ClientStalled) => {
            verdict.status = 408;
            verdict.reason = Some("the client stalled while sending its body".to_string());
            let mut response = json_response(
                StatusCode::REQUEST_TIMEOUT,
                &json!({ "error": { "code": "authz::proxy::request_timeout", "message": "the request body did not arrive in time" } }),
            );
            response
                .headers_mut()
                .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
            (response, verdict)
        }
        Err(ForwardError::Unavailable(detail)) => {
            tracing::warn!(upstream = %name, %detail, "upstream unavailable");
            verdict.status = 502;
            (
                json_response(
                    StatusCode::BAD_GATEWAY,
                    &json!({ "error": { "code": "authz::proxy::upstream_unavailable", "message": "the upstream is unavailable" } }),
                ),
                verdict,
            )
        }
    }
}

/// Adds the signed identity assertion to `headers` when one is configured: for an allowed
/// request, about to be forwarded to `upstream` (or answered 200 in `ext_authz` mode).
fn assert_identity(
    state: &ProxyState,
    headers: &mut hyper::HeaderMap,
    identity: &Option<super::identity::Identity>,
    verdict: &Verdict,
    action: &str,
    (method, normalized, upstream): (&str, &normalize::Normalized, Option<&str>),
) -> Result<(), String> {
    let Some(signer) = &state.assertion else {
        return Ok(());
    };
    let auth = identity.as_ref().and_then(|identity| {
        identity
            .headers
            .iter()
            .find(|(name, _)| name == AUTH_METHOD_HEADER)
            .map(|(_, value)| value.as_str())
    });
    let value = signer.sign(&Asserted {
        principal: &verdict.principal,
        auth,
        action,
        resource: &verdict.resource,
        policies: &verdict.policies,
        method,
        path: normalized.path(),
        query: normalized.query().unwrap_or(""),
        upstream,
    })?;
    headers.insert(signer.header_name().clone(), value);
    Ok(())
}

/// Signing failed although the key signed at start: nothing is forwarded unvouched.
fn cannot_assert(detail: &str, mut verdict: Verdict) -> (Response<ProxyBody>, Verdict) {
    tracing::error!(%detail, "cannot sign the identity assertion");
    verdict.status = 500;
    verdict.reason = Some("cannot sign the identity assertion".to_string());
    (
        json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({ "error": { "code": "authz::proxy::internal", "message": "internal error" } }),
        ),
        verdict,
    )
}

/// The method and target to authorize: the request's own, or in `ext_authz` mode behind a trusted
/// peer, the original request's from `X-Forwarded-Method`/`X-Forwarded-Uri` (Traefik) or
/// `X-Original-Method`/`X-Original-URI` (nginx `auth_request`).
fn original_request(request: &Request<Incoming>, trust_forwarded: bool) -> (String, String) {
    let own = (
        request.method().as_str().to_string(),
        request.uri().to_string(),
    );
    if !trust_forwarded {
        return own;
    }
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let target = header("x-forwarded-uri").or_else(|| header("x-original-uri"));
    let method = header("x-forwarded-method").or_else(|| header("x-original-method"));
    match target {
        Some(target) => (method.unwrap_or(own.0), target),
        None => own,
    }
}

fn path_has_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let prefix = prefix.trim_end_matches('/');
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The decision context for `action`: every field of its context type that the configuration maps
/// to a source (`field` or, inside a record, `field.sub`), typed per the schema. Fields that cannot
/// be filled are left out (the request then fails validation and is denied: fail closed).
#[allow(clippy::too_many_arguments)]
fn context(
    state: &ProxyState,
    snapshot: &Snapshot,
    action: &str,
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &hyper::HeaderMap,
    client_ip: IpAddr,
) -> Json {
    let schema = &snapshot.program.schema;
    let layout = snapshot
        .store
        .interner
        .get(action)
        .and_then(|sym| schema.action(sym))
        .and_then(|def| schema.layout(def.context));
    let Some(layout) = layout else {
        return Json::Object(serde_json::Map::new());
    };
    let source = |source: &str| -> Option<String> {
        match source {
            "client_ip" => Some(headers::canonical_ip(client_ip).to_string()),
            "method" => Some(method.to_string()),
            "path" => Some(path.to_string()),
            other => {
                if let Some(header) = other.strip_prefix("header:") {
                    headers
                        .get(header)
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_string)
                } else {
                    other
                        .strip_prefix("query:")
                        .and_then(|name| query.and_then(|query| query_value(query, name)))
                }
            }
        }
    };
    record(state, schema, layout, "", &source, 0)
}

/// The fields of one record layout that the configuration maps, under the dotted `prefix`.
fn record(
    state: &ProxyState,
    schema: &authz_runtime::schema::Schema,
    layout: &authz_runtime::schema::Layout,
    prefix: &str,
    source: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Json {
    let mut out = serde_json::Map::new();
    for field in &layout.fields {
        let name = schema.attr_name(field.attr);
        let key = format!("{prefix}{name}");
        let value = match &field.ty {
            ValueType::Record(inner) if depth < 4 => schema
                .layout(*inner)
                .map(|inner| record(state, schema, inner, &format!("{key}."), source, depth + 1))
                .filter(|value| value.as_object().is_some_and(|fields| !fields.is_empty())),
            ty => state
                .config
                .context
                .get(&key)
                .and_then(|from| source(from))
                .and_then(|text| typed(ty, text)),
        };
        if let Some(value) = value {
            out.insert(name.to_string(), value);
        }
    }
    Json::Object(out)
}

/// A header or query value read as the schema's type.
fn typed(ty: &ValueType, text: String) -> Option<Json> {
    match ty {
        ValueType::Long => text.trim().parse::<i64>().ok().map(Json::from),
        ValueType::Bool => match text.trim() {
            "true" | "1" => Some(Json::Bool(true)),
            "false" | "0" => Some(Json::Bool(false)),
            _ => None,
        },
        ValueType::String | ValueType::Ip | ValueType::Timestamp | ValueType::Duration => {
            Some(Json::String(text))
        }
        _ => None,
    }
}

fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| value.to_string())
    })
}

/// Counts the request against the obligations of the decision.
async fn enforce_limits(
    state: &ProxyState,
    snapshot: &Snapshot,
    explained: &Json,
) -> Result<Option<limits::Verdict>, Unavailable> {
    let Some(obligations) = explained.get("obligations").and_then(Json::as_array) else {
        return Ok(None);
    };
    if obligations.is_empty() {
        return Ok(None);
    }
    let borrowed: Vec<limits::Obligation<'_>> = obligations
        .iter()
        .map(|o| limits::Obligation {
            limit: o.get("limit").and_then(Json::as_str).unwrap_or(""),
            key: o.get("key").and_then(Json::as_str).unwrap_or(""),
        })
        .collect();
    if let Some(shared) = &state.shared_limits {
        let declared: Vec<Declared<'_>> = snapshot
            .program
            .limits
            .iter()
            .map(|limit| Declared {
                name: &limit.name,
                count: limit.count,
                period_seconds: limit.period_seconds,
            })
            .collect();
        return shared.check(&declared, &borrowed).await;
    }
    let limiters = {
        let Ok(mut current) = state.limiters.lock() else {
            return Ok(None);
        };
        if current.0 != snapshot.generation {
            let declared: Vec<(String, u64, u64)> = snapshot
                .program
                .limits
                .iter()
                .map(|limit| (limit.name.clone(), limit.count, limit.period_seconds))
                .collect();
            let rebuilt = Limiters::new(&declared, Some(&current.1));
            *current = (snapshot.generation, Arc::new(rebuilt));
        }
        current.1.clone()
    };
    Ok(limiters.check(&borrowed))
}

fn rate_limit_headers(headers: &mut hyper::HeaderMap, limit: &limits::Verdict) {
    let mut set = |name: &'static str, value: u64| {
        if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
            headers.insert(name, value);
        }
    };
    set("ratelimit-limit", limit.count);
    set("ratelimit-remaining", limit.remaining);
    set("ratelimit-reset", limit.reset);
    if !limit.allowed {
        set("retry-after", limit.retry_after.max(1));
    }
}
