//! The request pipeline: normalize → identify → route → decide → limit → rewrite headers →
//! forward → audit. One function per step, in that order; every early answer is a small JSON body
//! and is audited like the rest.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
use super::framing::Verdicts;
use super::headers::{self, HeaderPolicy};
use super::identity::mtls::PeerCertificate;
use super::identity::{Authenticator, AUTH_METHOD_HEADER};
use super::limits::{self, Limiters};
use super::normalize;
use super::request_id;
use super::shared_limits::{Declared, SharedLimits, Unavailable};
use super::upstream_headers::UpstreamHeaders;
use crate::host::decision_log::Line;
use crate::host::metrics::{LimitLabel, RequestLabels, UpstreamLabel};
use crate::host::state::{AppState, Snapshot};

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
    /// What is removed from (or refused in) incoming headers: the proxy's identity headers,
    /// the assertion's, the mapped upstream headers, well-known identity and forwarding
    /// headers, method overrides.
    pub header_policy: HeaderPolicy,
    /// Headers set upstream from verified identity (`[upstream_headers]`).
    pub upstream_headers: UpstreamHeaders,
    /// Upstreams by path prefix, longest first: (prefix, `scheme://authority`, name).
    pub upstreams: Vec<(String, String, Arc<str>)>,
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
    /// The decision's context, as the policies saw it (`null` before a decision).
    context: Json,
    /// The principal entity the credential defined, when it carried attributes (`null` when
    /// the principal is a stored entity).
    principal_entity: Json,
    policies: Json,
    /// The `@reason`s of a denial.
    reasons: Json,
    errors: Json,
    reason: Option<String>,
    /// The precise error code of a refusal (`authz::proxy::…`), also in its body.
    code: Option<String>,
    /// The route's method and pattern (`GET /docs/{id}`) once routed, for the metrics.
    route: Option<Arc<str>>,
    /// The upstream's name once chosen, for the metrics.
    upstream: Option<Arc<str>>,
}

impl Verdict {
    fn early(status: StatusCode, reason: &str) -> Verdict {
        Verdict {
            status: status.as_u16(),
            decision: "deny",
            principal: Json::Null,
            action: Json::Null,
            resource: Json::Null,
            context: Json::Null,
            principal_entity: Json::Null,
            policies: json!([]),
            reasons: json!([]),
            errors: json!([]),
            reason: Some(reason.to_string()),
            code: None,
            route: None,
            upstream: None,
        }
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<(Scratch, Decision)> = std::cell::RefCell::new((Scratch::new(), Decision::default()));
}

/// What the pipeline knows of the connection a request came on.
#[derive(Clone)]
pub struct Connection {
    /// The peer's address.
    pub peer: SocketAddr,
    /// The verified TLS client certificate: it names the principal of requests without a
    /// bearer token or API key (a credential in the request wins, and the audit line records
    /// both).
    pub client_cert: Option<Arc<PeerCertificate>>,
    /// The framing verdicts of the connection's request heads.
    pub framing: Arc<Verdicts>,
    /// `https` on the TLS listener, `http` otherwise.
    pub scheme: &'static str,
}

/// Answers one request that came on `connection`.
pub async fn handle(
    state: Arc<ProxyState>,
    connection: Connection,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let Connection {
        peer,
        client_cert,
        framing,
        scheme,
    } = connection;
    let started = Instant::now();
    let mut request = request;
    let request_id = request_id::of(request.headers_mut());
    // What the audit line records of the request as it came (in `ext_authz` mode behind a
    // gateway, the original request it names), taken only when there is a log.
    let peer_trusted = headers::is_trusted(peer.ip(), &state.trusted);
    let original = original_request(
        &request,
        state.config.proxy.mode == Mode::ExtAuthz && peer_trusted,
    );
    let audited = state.app.decision_log.is_some().then(|| {
        original.clone().unwrap_or_else(|_| {
            (
                request.method().as_str().to_string(),
                request.uri().to_string(),
            )
        })
    });
    let answer = async {
        match framing.next() {
            Ok(()) => {
                let connection = (peer, peer_trusted, client_cert.as_deref(), scheme);
                pipeline(&state, connection, original, request).await
            }
            Err(error) => {
                let code = format!("authz::proxy::{}", error.code());
                refuse_and_close(StatusCode::BAD_REQUEST, &code, &error.to_string())
            }
        }
    };
    let (mut response, mut verdict) = request_id::CURRENT.scope(request_id.clone(), answer).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(request_id::HEADER, value);
    }
    if state.config.proxy.mode == Mode::ExtAuthz {
        gateway_status(&mut response, &mut verdict);
    }
    state
        .app
        .metrics
        .proxy_requests
        .get_or_create(&RequestLabels {
            status: verdict.status,
            decision: verdict.decision,
            route: verdict.route.take().unwrap_or_else(empty_label),
            upstream: verdict.upstream.take().unwrap_or_else(empty_label),
        })
        .inc();
    if let (Some(log), Some((method, target))) = (&state.app.decision_log, audited) {
        let mut line = Line::new()
            .time_now()
            .str("request_id", &request_id)
            .str("client", &peer.ip().to_string())
            .str("method", &method)
            .str("target", &target)
            .u64("status", u64::from(verdict.status))
            .str("decision", verdict.decision)
            .json("principal", Some(&verdict.principal))
            .json("action", Some(&verdict.action))
            .json("resource", Some(&verdict.resource))
            .json("context", Some(&verdict.context))
            .json("principal_entity", Some(&verdict.principal_entity))
            .json("policies", Some(&verdict.policies))
            .json("reasons", Some(&verdict.reasons))
            .json("errors", Some(&verdict.errors))
            .opt_str("reason", verdict.reason.as_deref())
            .opt_str("code", verdict.code.as_deref())
            .u64("latency_us", started.elapsed().as_micros() as u64);
        if let Some(cert) = &client_cert {
            line = line.opt_str("client_cert", cert.name.as_deref());
        }
        log.record(line.finish()).await;
    }
    Ok(response)
}

/// The empty label value (not routed, or not forwarded).
fn empty_label() -> Arc<str> {
    static EMPTY: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    Arc::clone(EMPTY.get_or_init(|| Arc::from("")))
}

thread_local! {
    /// Each route's metrics label (`GET /docs/{id}`), made once per policy generation and
    /// thread rather than per request.
    static ROUTE_LABELS: std::cell::RefCell<(u64, Vec<Arc<str>>)> =
        const { std::cell::RefCell::new((0, Vec::new())) };
}

/// The metrics label of `route`, a route of `snapshot`'s table.
fn route_label(snapshot: &Snapshot, route: &authz_runtime::route::Route) -> Arc<str> {
    let routes = snapshot.program.routes.routes();
    let index = routes.iter().position(|other| std::ptr::eq(other, route));
    ROUTE_LABELS.with(|cell| {
        let mut labels = cell.borrow_mut();
        if labels.0 != snapshot.generation || labels.1.len() != routes.len() {
            *labels = (
                snapshot.generation,
                routes
                    .iter()
                    .map(|route| Arc::from(format!("{} {}", route.method, route.path)))
                    .collect(),
            );
        }
        index
            .and_then(|index| labels.1.get(index))
            .cloned()
            .unwrap_or_else(|| Arc::from(format!("{} {}", route.method, route.path)))
    })
}

/// Moves a member out of a JSON object (`null` when absent).
fn take(object: &mut Json, key: &str) -> Json {
    object
        .as_object_mut()
        .and_then(|members| members.remove(key))
        .unwrap_or(Json::Null)
}

/// A JSON answer of the proxy's own; an object gets the request's id (`request_id`), so that a
/// refusal can be found again in the audit log.
fn json_response(status: StatusCode, body: &Json) -> Response<ProxyBody> {
    let text = match (body, request_id::CURRENT.try_with(Clone::clone)) {
        (Json::Object(members), Ok(id)) => {
            let mut members = members.clone();
            members.insert("request_id".to_string(), Json::String(id));
            Json::Object(members).to_string()
        }
        _ => body.to_string(),
    };
    let mut response = Response::new(
        Full::new(Bytes::from(text))
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
    let mut verdict = Verdict::early(status, message);
    verdict.code = Some(code.to_string());
    (json_response(status, &body), verdict)
}

/// A refusal after which the connection is closed: the client's framing cannot be trusted to
/// say where its next request starts.
fn refuse_and_close(
    status: StatusCode,
    code: &str,
    message: &str,
) -> (Response<ProxyBody>, Verdict) {
    let (mut response, verdict) = refuse(status, code, message);
    response
        .headers_mut()
        .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    (response, verdict)
}

/// In `ext_authz` mode every refusal is a 401 or a 403, the only denials gateways such as nginx
/// `auth_request` understand (any other status becomes a 500 there, and Envoy may let a 5xx
/// through under `failure_mode_allow`); the precise status and code stay in the body and the
/// audit line.
fn gateway_status(response: &mut Response<ProxyBody>, verdict: &mut Verdict) {
    let status = response.status();
    if status.is_success() || status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN
    {
        return;
    }
    if verdict.code.is_none() {
        verdict.code = Some(format!("http_{}", status.as_u16()));
    }
    verdict.reason.get_or_insert_with(|| {
        status
            .canonical_reason()
            .unwrap_or("refused")
            .to_ascii_lowercase()
    });
    *response.status_mut() = StatusCode::FORBIDDEN;
    verdict.status = StatusCode::FORBIDDEN.as_u16();
}

/// The pipeline's steps for one request. `connection` is the peer, whether it is a trusted
/// proxy, its client certificate and the listener's scheme; `original` the method and target to
/// authorize (see [`original_request`]), read once by [`handle`].
async fn pipeline(
    state: &ProxyState,
    connection: (SocketAddr, bool, Option<&PeerCertificate>, &'static str),
    original: Result<(String, String), &'static str>,
    mut request: Request<Incoming>,
) -> (Response<ProxyBody>, Verdict) {
    let (peer, peer_trusted, client_cert, scheme) = connection;
    let ext_authz = state.config.proxy.mode == Mode::ExtAuthz;

    // 1. Normalize, once: route, decide and forward the same path, for the one Host.
    let host = match normalize::host(request.headers()) {
        Ok(host) => host.to_string(),
        Err(error) => {
            let code = format!("authz::proxy::{}", error.code());
            return refuse_and_close(StatusCode::BAD_REQUEST, &code, &error.to_string());
        }
    };
    let (method, target) = match original {
        Ok(original) => original,
        Err(name) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "authz::proxy::ambiguous_original_request",
                &format!(
                    "the original request is named ambiguously (`{name}` repeated, missing or \
                     next to another gateway's headers)"
                ),
            );
        }
    };
    let normalized = match normalize::normalize(&method, &target, Some(&host)) {
        Ok(normalized) => normalized,
        Err(error) => {
            let code = format!("authz::proxy::{}", error.code());
            return refuse(StatusCode::BAD_REQUEST, &code, &error.to_string());
        }
    };
    if let Some(name) = normalized.method_override_parameter() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "authz::proxy::method_override",
            &format!("the query parameter `{name}` (a method override) is not accepted"),
        );
    }

    // Header hygiene before anything reads them.
    let headers_mut = request.headers_mut();
    headers::remove_hop_by_hop(headers_mut);
    if ext_authz && peer_trusted {
        // The gateway's own account of the original request, read above.
        for name in ORIGINAL_REQUEST_HEADERS {
            headers_mut.remove(name);
        }
    }
    if let Err(refused) = state
        .header_policy
        .clean(headers_mut, peer_trusted, ext_authz)
    {
        let code = format!("authz::proxy::{}", refused.code());
        return refuse(StatusCode::BAD_REQUEST, &code, &refused.message());
    }
    let client_ip = headers::forwarded(headers_mut, peer.ip(), &state.trusted, Some(&host), scheme);

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
            // The client reads a fixed sentence; the audit line the precise failure
            // (`missing claim `tenant``, `token expired`).
            let (response, mut verdict) = refuse(
                StatusCode::UNAUTHORIZED,
                error.code(),
                error.client_message(),
            );
            verdict.reason = Some(error.to_string());
            return (response, verdict);
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
    if !routes_alike_in_every_reading(&snapshot.program.routes, &method, &normalized, route) {
        let (response, mut verdict) = refuse(
            StatusCode::BAD_REQUEST,
            "authz::proxy::ambiguous_path",
            "the path routes differently once Unicode-normalized or case-folded, as some servers read it",
        );
        verdict.principal = principal;
        return (response, verdict);
    }
    let route_label = route_label(&snapshot, route.route);
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
    let inputs = Inputs {
        method: &method,
        path: normalized.path(),
        query: normalized.query(),
        headers: request.headers(),
        client_ip,
    };
    let context = match context(state, &snapshot, &action, &inputs) {
        Ok(context) => context,
        Err(ambiguous) => {
            let (response, mut verdict) = refuse(
                StatusCode::BAD_REQUEST,
                ambiguous.code(),
                &ambiguous.to_string(),
            );
            verdict.principal = principal;
            verdict.action = json!(action);
            verdict.resource = resource;
            return (response, verdict);
        }
    };
    let mut decision_request = json!({
        "principal": principal,
        "action": action,
        "resource": resource,
        "context": context,
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
    let deciding = Instant::now();
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
        counter.inc();
        state
            .app
            .metrics
            .observe_latency(u64::try_from(deciding.elapsed().as_micros()).unwrap_or(u64::MAX));
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
        context: take(&mut decision_request, "context"),
        principal_entity: match take(&mut decision_request, "entities") {
            Json::Array(mut entities) if !entities.is_empty() => entities.swap_remove(0),
            _ => Json::Null,
        },
        policies: take(&mut explained, "policies"),
        reasons: json!([]),
        errors: take(&mut explained, "errors"),
        reason: None,
        code: None,
        route: Some(route_label),
        upstream: None,
    };
    if explained.get("decision").and_then(Json::as_str) != Some("allow") {
        let reasons = match take(&mut explained, "reasons") {
            Json::Null => json!([]),
            reasons => reasons,
        };
        verdict.status = 403;
        verdict.decision = "deny";
        let texts: Vec<&str> = reasons
            .as_array()
            .map(|reasons| reasons.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        if !texts.is_empty() {
            verdict.reason = Some(texts.join("; "));
        }
        verdict.reasons = reasons.clone();
        let body = json!({ "decision": "deny", "reasons": reasons });
        return (json_response(StatusCode::FORBIDDEN, &body), verdict);
    }

    // 5. Limit.
    let limit = match enforce_limits(state, &snapshot, &explained).await {
        Ok(limit) => limit,
        Err(Unavailable) => {
            // In `ext_authz` mode `gateway_status` makes this a 403: gateways treat a 5xx from
            // their authorization service as a failure that `failure_mode_allow` may let through.
            let status = StatusCode::SERVICE_UNAVAILABLE;
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
            state
                .app
                .metrics
                .limit_hits
                .get_or_create(&LimitLabel {
                    limit: limit.limit.to_string(),
                })
                .inc();
            verdict.status = 429;
            verdict.decision = "limited";
            verdict.reason = Some(format!("limit `{}`", limit.limit));
            let body = json!({ "decision": "deny", "reasons": [format!("rate limit `{}` exceeded", limit.limit)] });
            let mut response = json_response(StatusCode::TOO_MANY_REQUESTS, &body);
            rate_limit_headers(response.headers_mut(), limit);
            return (response, verdict);
        }
    }

    // 6. Rewrite headers: set identity headers only from verified identity; the verified
    // credential itself goes no further unless its source says so.
    if let Some(identity) = &identity {
        if !identity.forward_credential {
            request.headers_mut().remove(hyper::header::AUTHORIZATION);
            if let Some(header) = state.authenticator.api_key_header() {
                request.headers_mut().remove(header);
            }
        }
        for (name, value) in &identity.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                request.headers_mut().insert(name, value);
            }
        }
    }
    state.upstream_headers.apply(
        request.headers_mut(),
        identity.as_ref(),
        &Namer {
            program: &snapshot.program,
            store: &snapshot.store,
            request: &loaded,
        },
        loaded.principal,
    );

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
            let mapped = state
                .upstream_headers
                .names()
                .any(|mapped| mapped == name.as_str());
            if mapped
                || name
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
        (&method, &normalized, Some(&**name)),
    ) {
        return cannot_assert(&detail, verdict);
    }
    *request.uri_mut() = uri;
    *request.version_mut() = hyper::Version::HTTP_11;
    let timeout = Duration::from_millis(state.config.proxy.upstream_timeout_ms);
    verdict.upstream = Some(Arc::clone(name));
    let forwarding = Instant::now();
    let forwarded = forward::forward(&state.client, request, timeout).await;
    state
        .app
        .metrics
        .upstream_duration
        .get_or_create(&UpstreamLabel {
            upstream: Arc::clone(name),
        })
        .observe(forwarding.elapsed().as_secs_f64());
    match forwarded {
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
        Err(ForwardError::InvalidBody(detail)) => {
            tracing::info!(%detail, "the client's body is not validly framed");
            verdict.status = 400;
            verdict.code = Some("authz::proxy::invalid_body".to_string());
            verdict.reason = Some("the request body is not validly framed".to_string());
            let mut response = json_response(
                StatusCode::BAD_REQUEST,
                &json!({ "error": { "code": "authz::proxy::invalid_body", "message": "the request body is not validly framed" } }),
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

/// The headers in which gateways name the original request in `ext_authz` mode.
const ORIGINAL_REQUEST_HEADERS: [&str; 4] = [
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-original-uri",
    "x-original-method",
];

/// The method and target to authorize: the request's own, or in `ext_authz` mode behind a trusted
/// peer, the original request's from `X-Forwarded-Method`/`X-Forwarded-Uri` (Traefik) or
/// `X-Original-Method`/`X-Original-URI` (nginx `auth_request`).
///
/// Gateways pass the client's own headers on to the check, and each sets only its own family of
/// names: a client could add the other family to name a target it is not requesting. So a request
/// that carries both families, repeats one of the headers, or names a method without a target is
/// ambiguous and refused.
fn original_request(
    request: &Request<Incoming>,
    trust_forwarded: bool,
) -> Result<(String, String), &'static str> {
    let own = (
        request.method().as_str().to_string(),
        request.uri().to_string(),
    );
    if !trust_forwarded {
        return Ok(own);
    }
    let headers = request.headers();
    let mut present = [false; ORIGINAL_REQUEST_HEADERS.len()];
    for (slot, name) in present.iter_mut().zip(ORIGINAL_REQUEST_HEADERS) {
        let mut values = headers.get_all(name).iter();
        *slot = values.next().is_some();
        if values.next().is_some() {
            return Err(name);
        }
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let [forwarded_uri, forwarded_method, original_uri, original_method] = present;
    let (target, method) = match (
        forwarded_uri || forwarded_method,
        original_uri || original_method,
    ) {
        (false, false) => return Ok(own),
        (true, true) => return Err("x-original-uri"),
        (true, false) => ("x-forwarded-uri", "x-forwarded-method"),
        (false, true) => ("x-original-uri", "x-original-method"),
    };
    let Some(target) = header(target) else {
        return Err(target);
    };
    match headers.get(method) {
        None => Ok((own.0, target)),
        Some(value) => match value.to_str() {
            Ok(method) => Ok((method.to_string(), target)),
            Err(_) => Err(method),
        },
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

/// What the context sources read: the request as normalized and cleaned.
struct Inputs<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a hyper::HeaderMap,
    client_ip: IpAddr,
}

/// A context source that the request answers in more than one way.
#[derive(Debug, thiserror::Error)]
enum Ambiguous {
    /// A query parameter the policy reads, repeated or spelt so that servers read it apart.
    #[error("the query parameter `{0}` is repeated or ambiguous (read by the policy)")]
    Query(String),
    /// A header the policy reads, repeated or spelt so that servers read it apart.
    #[error("the header `{0}` is repeated or ambiguous (read by the policy)")]
    Header(String),
}

impl Ambiguous {
    fn code(&self) -> &'static str {
        match self {
            Ambiguous::Query(_) => "authz::proxy::ambiguous_query",
            Ambiguous::Header(_) => "authz::proxy::ambiguous_header",
        }
    }
}

/// The decision context for `action`: every field of its context type that the configuration maps
/// to a source (`field` or, inside a record, `field.sub`), typed per the schema. Fields that cannot
/// be filled are left out (the request then fails validation and is denied: fail closed); a
/// source the request answers ambiguously refuses it.
fn context(
    state: &ProxyState,
    snapshot: &Snapshot,
    action: &str,
    inputs: &Inputs<'_>,
) -> Result<Json, Ambiguous> {
    let schema = &snapshot.program.schema;
    let layout = snapshot
        .store
        .interner
        .get(action)
        .and_then(|sym| schema.action(sym))
        .and_then(|def| schema.layout(def.context));
    let Some(layout) = layout else {
        return Ok(Json::Object(serde_json::Map::new()));
    };
    let source = |source: &str| -> Result<Option<String>, Ambiguous> {
        Ok(match source {
            "client_ip" => Some(headers::canonical_ip(inputs.client_ip).to_string()),
            "method" => Some(inputs.method.to_string()),
            "path" => Some(inputs.path.to_string()),
            other => {
                if let Some(header) = other.strip_prefix("header:") {
                    header_value(inputs.headers, header)?
                } else if let Some(name) = other.strip_prefix("query:") {
                    match inputs.query {
                        Some(query) => query_value(query, name)?,
                        None => None,
                    }
                } else {
                    None
                }
            }
        })
    };
    record(state, schema, layout, "", &source, 0)
}

/// The fields of one record layout that the configuration maps, under the dotted `prefix`.
fn record(
    state: &ProxyState,
    schema: &authz_runtime::schema::Schema,
    layout: &authz_runtime::schema::Layout,
    prefix: &str,
    source: &dyn Fn(&str) -> Result<Option<String>, Ambiguous>,
    depth: usize,
) -> Result<Json, Ambiguous> {
    let mut out = serde_json::Map::new();
    for field in &layout.fields {
        let name = schema.attr_name(field.attr);
        let key = format!("{prefix}{name}");
        let value = match &field.ty {
            ValueType::Record(inner) if depth < 4 => match schema.layout(*inner) {
                Some(inner) => Some(record(
                    state,
                    schema,
                    inner,
                    &format!("{key}."),
                    source,
                    depth + 1,
                )?)
                .filter(|value| value.as_object().is_some_and(|fields| !fields.is_empty())),
                None => None,
            },
            ty => match state.config.context.get(&key) {
                Some(from) => source(from)?.and_then(|text| typed(ty, text)),
                None => None,
            },
        };
        if let Some(value) = value {
            out.insert(name.to_string(), value);
        }
    }
    Ok(Json::Object(out))
}

/// A header or query value read as the schema's type: exactly as sent (no trimming), so that
/// the upstream's parser reads the same value or none.
fn typed(ty: &ValueType, text: String) -> Option<Json> {
    match ty {
        ValueType::Long => {
            let digits = text.strip_prefix('-').unwrap_or(&text);
            if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            text.parse::<i64>().ok().map(Json::from)
        }
        ValueType::Bool => match text.as_str() {
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

/// The one value of header `name`: `None` when absent; ambiguous when it is repeated, or sent
/// only in a spelling (`x_mfa`, `X.Mfa`) that servers folding `_` and `.` read as `name`.
fn header_value(headers: &hyper::HeaderMap, name: &str) -> Result<Option<String>, Ambiguous> {
    let ambiguous = || Ambiguous::Header(name.to_string());
    let mut found: Option<&HeaderValue> = None;
    let mut count = 0usize;
    for (header, value) in headers {
        if !headers::same_name(header.as_str(), name) {
            continue;
        }
        count += 1;
        if !header.as_str().eq_ignore_ascii_case(name) || count > 1 {
            return Err(ambiguous());
        }
        found = Some(value);
    }
    match found {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|text| Some(text.to_string()))
            .map_err(|_| ambiguous()),
    }
}

/// The one value of query parameter `name`, decoded as `application/x-www-form-urlencoded`.
/// `None` when absent. Ambiguous when a server could read another value or several: the name
/// appears more than once however spelt (decoded up to three times, in any case, with PHP's `.`
/// and space for `_` and a `[]` suffix), appears only in such another spelling, the query uses
/// `;` as a separator (which some servers split on), or the value still holds a percent escape
/// once decoded (which a server decoding twice reads differently).
fn query_value(query: &str, name: &str) -> Result<Option<String>, Ambiguous> {
    let ambiguous = || Ambiguous::Query(name.to_string());
    if query.contains(';') {
        return Err(ambiguous());
    }
    let wanted = fold_parameter(name);
    let mut found: Option<String> = None;
    let mut count = 0usize;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let mut spelling = key.into_owned();
        let mut matched = None;
        for level in 0..3 {
            if fold_parameter(&spelling) == wanted {
                matched = Some(level == 0 && spelling == name);
                break;
            }
            let decoded = percent_decode(&spelling);
            if decoded == spelling {
                break;
            }
            spelling = decoded;
        }
        let Some(exact) = matched else {
            continue;
        };
        count += 1;
        if !exact || count > 1 || has_escape(&value) {
            return Err(ambiguous());
        }
        found = Some(value.into_owned());
    }
    Ok(found)
}

/// A parameter name as lenient servers compare it: trimmed, lower-case, `.` and space as `_`,
/// without a trailing `[...]`.
fn fold_parameter(name: &str) -> String {
    let name = match name.find('[') {
        Some(start) if name.ends_with(']') => name.get(..start).unwrap_or(name),
        _ => name,
    };
    name.trim()
        .chars()
        .map(|c| match c {
            '.' | ' ' => '_',
            other => other,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// Percent-decodes text once (invalid escapes stay as they are; invalid UTF-8 is replaced).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether text holds `%` followed by two hex digits.
fn has_escape(text: &str) -> bool {
    text.as_bytes().windows(3).any(
        |window| matches!(window, [b'%', high, low] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit()),
    )
}

/// Whether the path routes to the same route and resource under each other reading a server
/// may apply to it: Unicode compatibility normalization (NFKC), which must not change the route
/// nor the resource id, and case-insensitive routing, which must pick the same route.
pub(crate) fn routes_alike_in_every_reading(
    routes: &authz_runtime::route::RouteTable,
    method: &str,
    normalized: &normalize::Normalized,
    chosen: authz_runtime::route::RouteMatch<'_>,
) -> bool {
    let same_route = |other: Option<authz_runtime::route::RouteMatch<'_>>| {
        other.is_some_and(|other| std::ptr::eq(other.route, chosen.route))
    };
    let nfkc = normalized.nfkc_segments();
    if let Some(reading) = &nfkc {
        let segments: Vec<&str> = reading.iter().map(String::as_str).collect();
        let found = routes.find(method, &segments);
        if !same_route(found) || found.is_some_and(|found| found.resource_id != chosen.resource_id)
        {
            return false;
        }
    }
    let segments: Vec<&str> = match &nfkc {
        Some(reading) => reading.iter().map(String::as_str).collect(),
        None => normalized.segments(),
    };
    if segments.iter().all(|segment| !has_case(segment)) {
        return true;
    }
    same_route(routes.find_ignoring_case(method, &segments))
}

/// Whether text holds a letter that case folding changes.
fn has_case(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_uppercase() || (!c.is_ascii() && c.to_lowercase().ne(std::iter::once(c))))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn query(query: &str) -> Result<Option<String>, String> {
        query_value(query, "amount").map_err(|ambiguous| ambiguous.code().to_string())
    }

    #[test]
    fn a_query_parameter_is_read_once_decoded() {
        assert_eq!(query("amount=100"), Ok(Some("100".to_string())));
        assert_eq!(query("amou%6Et=100"), Ok(Some("100".to_string())));
        assert_eq!(query("amount=1%30"), Ok(Some("10".to_string())));
        assert_eq!(query("tag=a&tag=b"), Ok(None));
        assert_eq!(query(""), Ok(None));
    }

    #[test]
    fn a_query_parameter_a_server_could_read_otherwise_is_ambiguous() {
        for text in [
            "amount=100&amount=40000000",
            "amount=100&AMOUNT=4",
            "amount=100&amount[]=4",
            "amount=100&amount%5B%5D=4",
            "amount=100&amou%256Et=4",
            "AMOUNT=100",
            "amount=100;amount=4",
            "amount=1%2530",
            "amount=1&%20amount=2",
            "amount=1&amount+=2",
        ] {
            assert_eq!(
                query(text),
                Err("authz::proxy::ambiguous_query".to_string()),
                "{text}"
            );
        }
    }
}
