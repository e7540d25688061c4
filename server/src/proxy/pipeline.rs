//! The request pipeline: normalize → route → count the attempt (`on attempts` limits) → identify →
//! decide → limit → rewrite headers → forward → audit. One function per step, in that order, over one request's [`Verdict`] (what
//! the audit line will record, filled in as the steps learn it); a step that answers early
//! returns a [`Refusal`], which [`handle`] turns into the answer and audits like the rest.
//!
//! Values pass between steps typed: the verified [`Identity`] is shared (`Arc`) with its header
//! values ready, the decision request is built by the runtime's [`RequestBuilder`] from the
//! route, the identity and the context plan derived at install, and the decision is read through
//! its indexes. JSON is written only at the edges: the answer's body and the audit line.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authz_runtime::decision::Decision;
use authz_runtime::eval::{attempt_obligations, decide, Scratch};
use authz_runtime::explain::{write_json_string, ErrorOrigin, Namer};
use authz_runtime::json::RequestError;
use authz_runtime::request::Request as DecisionRequest;
use authz_runtime::request_builder::RequestBuilder;
use authz_runtime::value::{IpNet, TypeId, Value};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::assertion::{Asserted, AssertionSigner};
use super::config::{EntityRef, Mode, ProxyConfig};
use super::context_plan::{ContextError, Inputs};
use super::forward::{self, ForwardError, ProxyBody, UpstreamClient};
use super::framing::Verdicts;
use super::headers::{self, HeaderPolicy};
use super::identity::mtls::PeerCertificate;
use super::identity::{Authenticator, Identity};
use super::limits;
use super::normalize::{self, Normalized};
use super::request_id;
use super::schema_check::ProxyPlan;
use super::shared_limits::{Declared, SharedLimits, Unavailable};
use super::upstream_headers::UpstreamHeaders;
use crate::host::decision_log::Line;
use crate::host::metrics::{LimitLabel, RequestLabels, UpstreamLabel};
use crate::host::providers;
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
    /// The clock the `now` context source reads.
    pub clock: crate::host::clock::Clock,
    /// Rate limits kept in Redis, shared with other replicas; when set, the in-memory limiters
    /// of the [`ProxyPlan`] are unused.
    pub shared_limits: Option<SharedLimits>,
}

/// Who a request is made by, as the steps after identification see it.
#[derive(Clone)]
enum Principal {
    /// Established by a verified credential (a token, an API key, a client certificate).
    Verified(Arc<Identity>),
    /// No credential, and `[proxy.anonymous]` names the principal.
    Anonymous,
}

/// An error in the audit line, in one shape whatever raised it: `{"code", "message", "at"}`,
/// `at` naming the policy (`policy:ID`), the limit (`limit:NAME`) or the request's field
/// (`context.amount`) concerned.
struct AuditError {
    code: Cow<'static, str>,
    message: String,
    at: Option<String>,
}

impl AuditError {
    fn from_request(error: RequestError) -> AuditError {
        AuditError {
            code: Cow::Borrowed(error.code()),
            message: error.message,
            at: (!error.field.is_empty()).then_some(error.field),
        }
    }
}

/// What the route gave: the action and the resource, in terms of the set routed with.
#[derive(Debug)]
struct Routed {
    snapshot: Arc<Snapshot>,
    /// The action's index in the schema.
    action: usize,
    resource_type: TypeId,
    resource_id: Box<str>,
}

impl Routed {
    fn action_name(&self) -> &str {
        self.snapshot
            .program
            .schema
            .actions
            .get(self.action)
            .map_or("", |action| action.name.as_str())
    }

    fn resource_type_name(&self) -> &str {
        self.snapshot.program.schema.type_name(self.resource_type)
    }
}

/// What the audit line records of one request, filled in by the steps as they learn it.
struct Verdict {
    status: u16,
    decision: &'static str,
    principal: Option<Principal>,
    routed: Option<Routed>,
    /// The decision request, once built: its context is what the policies saw.
    request: Option<DecisionRequest>,
    /// The determining policies, by index into the routed set's policies.
    determining: Vec<u32>,
    errors: Vec<AuditError>,
    reason: Option<String>,
    /// The precise error code of a refusal (`authz::proxy::…`), also in its body.
    code: Option<Cow<'static, str>>,
    /// The route's method and pattern (`GET /docs/{id}`) once routed, for the metrics.
    route: Option<Arc<str>>,
    /// The upstream's name once chosen, for the metrics.
    upstream: Option<Arc<str>>,
}

impl Verdict {
    fn new() -> Verdict {
        Verdict {
            status: 200,
            decision: "deny",
            principal: None,
            routed: None,
            request: None,
            determining: Vec::new(),
            errors: Vec::new(),
            reason: None,
            code: None,
            route: None,
            upstream: None,
        }
    }
}

/// What the client reads of a refusal.
#[derive(Debug)]
enum Says {
    /// An error: `{"decision": "deny", "error": {"code", "message"}}`.
    Error {
        code: Cow<'static, str>,
        message: Cow<'static, str>,
    },
    /// A denial by the policies or a limit: `{"decision": "deny", "reasons": [...]}`.
    Denied { reasons: Vec<String> },
    /// A failure after the request was allowed (the upstream's, or signing the assertion):
    /// `{"error": {"code", "message"}}`.
    Failure {
        code: &'static str,
        message: &'static str,
    },
}

/// An early answer: the request goes no further than the step that refuses it.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    /// `deny` or `limited` in the audit line; an upstream failure keeps `allow`.
    decision: &'static str,
    says: Says,
    /// What the audit line records as `reason` when it is more precise than what the client
    /// reads (`missing claim `tenant``).
    detail: Option<String>,
    /// Headers of the answer (`Retry-After`, the rate limit headers).
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Whether the connection is closed after the answer: the client's framing cannot be
    /// trusted to say where its next request starts.
    close: bool,
}

impl Refusal {
    /// An error refusal with `code` and the `message` the client reads.
    fn error(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Refusal {
        Refusal {
            status,
            decision: "deny",
            says: Says::Error {
                code: code.into(),
                message: message.into(),
            },
            detail: None,
            headers: Vec::new(),
            close: false,
        }
    }

    /// The same, and the connection closed after it.
    fn closing(self) -> Refusal {
        Refusal {
            close: true,
            ..self
        }
    }

    /// A refusal of the upstream's making, after the request was allowed.
    fn upstream(status: StatusCode, code: &'static str, message: &'static str) -> Refusal {
        Refusal {
            status,
            decision: "allow",
            says: Says::Failure { code, message },
            detail: None,
            headers: Vec::new(),
            close: false,
        }
    }

    /// The answer, with the request's id in its body, and what the audit line records of it.
    fn answer(self, request_id: &str, verdict: &mut Verdict) -> Response<ProxyBody> {
        verdict.status = self.status.as_u16();
        verdict.decision = self.decision;
        let mut body = String::with_capacity(128);
        match &self.says {
            Says::Error { code, message } => {
                body.push_str("{\"decision\":\"deny\",\"error\":{\"code\":");
                write_json_string(&mut body, code);
                body.push_str(",\"message\":");
                write_json_string(&mut body, message);
                body.push('}');
                verdict.code = Some(code.clone());
                verdict.reason = Some(self.detail.unwrap_or_else(|| message.to_string()));
            }
            Says::Denied { reasons } => {
                body.push_str("{\"decision\":\"deny\",\"reasons\":[");
                for (index, reason) in reasons.iter().enumerate() {
                    if index > 0 {
                        body.push(',');
                    }
                    write_json_string(&mut body, reason);
                }
                body.push(']');
                verdict.reason = self
                    .detail
                    .or_else(|| (!reasons.is_empty()).then(|| reasons.join("; ")));
            }
            Says::Failure { code, message } => {
                body.push_str("{\"error\":{\"code\":");
                write_json_string(&mut body, code);
                body.push_str(",\"message\":");
                write_json_string(&mut body, message);
                body.push('}');
                verdict.code = Some(Cow::Borrowed(code));
                verdict.reason = self.detail;
            }
        }
        body.push_str(",\"request_id\":");
        write_json_string(&mut body, request_id);
        body.push('}');
        let mut response = json_response(self.status, body);
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        if self.close {
            headers.insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
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

/// What the steps know of the request beyond its head: where it came from and what it names.
struct Exchange<'a> {
    state: &'a ProxyState,
    peer: SocketAddr,
    /// Whether the peer is a trusted proxy.
    peer_trusted: bool,
    client_cert: Option<&'a PeerCertificate>,
    scheme: &'static str,
    request_id: &'a str,
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
    let mut verdict = Verdict::new();
    let answered = match framing.next() {
        Ok(()) => {
            let exchange = Exchange {
                state: &state,
                peer,
                peer_trusted,
                client_cert: client_cert.as_deref(),
                scheme,
                request_id: &request_id,
            };
            pipeline(&exchange, original, request, &mut verdict).await
        }
        Err(error) => Err(Refusal::error(
            StatusCode::BAD_REQUEST,
            format!("authz::proxy::{}", error.code()),
            error.to_string(),
        )
        .closing()),
    };
    let mut response = match answered {
        Ok(response) => response,
        Err(refusal) => refusal.answer(&request_id, &mut verdict),
    };
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
        let line = audit_line(
            &state,
            &verdict,
            &request_id,
            peer.ip(),
            (&method, &target),
            client_cert.as_deref(),
        )
        .u64("latency_us", started.elapsed().as_micros() as u64);
        log.record(line.finish()).await;
    }
    Ok(response)
}

/// The audit line of a request, up to its latency.
fn audit_line(
    state: &ProxyState,
    verdict: &Verdict,
    request_id: &str,
    client: IpAddr,
    (method, target): (&str, &str),
    client_cert: Option<&PeerCertificate>,
) -> Line {
    let routed = verdict.routed.as_ref();
    let namer = match (routed, &verdict.request) {
        (Some(routed), Some(request)) => Some(Namer {
            program: &routed.snapshot.program,
            store: &routed.snapshot.store,
            request,
        }),
        _ => None,
    };
    let mut line = Line::new()
        .time_now()
        .str("request_id", request_id)
        .with("client", |out| {
            write_json_string(out, &client.to_string());
        })
        .str("method", method)
        .str("target", target)
        .u64("status", u64::from(verdict.status))
        .str("decision", verdict.decision)
        .with("principal", |out| match &verdict.principal {
            Some(Principal::Verified(identity)) => {
                write_entity(out, &identity.principal_type, &identity.principal_id);
            }
            Some(Principal::Anonymous) => match &state.config.proxy.anonymous {
                Some(anonymous) => write_entity(out, &anonymous.ty, &anonymous.id),
                None => out.push_str("null"),
            },
            None => out.push_str("null"),
        })
        .with("action", |out| match routed {
            Some(routed) => write_json_string(out, routed.action_name()),
            None => out.push_str("null"),
        })
        .with("resource", |out| match routed {
            Some(routed) => write_entity(out, routed.resource_type_name(), &routed.resource_id),
            None => out.push_str("null"),
        })
        .with("context", |out| match (&namer, &verdict.request) {
            (Some(namer), Some(request)) => {
                namer.write_json(out, Value::Record(request.context));
            }
            _ => out.push_str("null"),
        })
        .with("principal_entity", |out| match &verdict.principal {
            Some(Principal::Verified(identity)) if identity.prepared_entity.is_some() => {
                use std::fmt::Write as _;
                let _ = write!(out, "{}", identity.entity);
            }
            _ => out.push_str("null"),
        })
        .with("policies", |out| {
            out.push('[');
            if let Some(routed) = routed {
                for (index, policy) in verdict.determining.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    let id = routed
                        .snapshot
                        .program
                        .policies
                        .get(*policy as usize)
                        .map_or("?", |policy| policy.id.as_str());
                    write_json_string(out, id);
                }
            }
            out.push(']');
        })
        .with("reasons", |out| {
            out.push('[');
            if let (Some(routed), "deny") = (routed, verdict.decision) {
                let reasons = verdict
                    .determining
                    .iter()
                    .filter_map(|index| routed.snapshot.program.policies.get(*index as usize))
                    .filter(|policy| policy.effect == authz_runtime::program::Effect::Forbid)
                    .filter_map(|policy| policy.reason.as_deref());
                for (index, reason) in reasons.enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    write_json_string(out, reason);
                }
            }
            out.push(']');
        })
        .with("errors", |out| {
            out.push('[');
            for (index, error) in verdict.errors.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str("{\"code\":");
                write_json_string(out, &error.code);
                out.push_str(",\"message\":");
                write_json_string(out, &error.message);
                out.push_str(",\"at\":");
                match &error.at {
                    Some(at) => write_json_string(out, at),
                    None => out.push_str("null"),
                }
                out.push('}');
            }
            out.push(']');
        })
        .opt_str("reason", verdict.reason.as_deref())
        .opt_str("code", verdict.code.as_deref());
    if let Some(cert) = client_cert {
        line = line.opt_str("client_cert", cert.name.as_deref());
    }
    line
}

/// Appends `{"type": …, "id": …}`.
fn write_entity(out: &mut String, ty: &str, id: &str) {
    out.push_str("{\"type\":");
    write_json_string(out, ty);
    out.push_str(",\"id\":");
    write_json_string(out, id);
    out.push('}');
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

/// A JSON answer of the proxy's own.
fn json_response(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body))
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
        verdict.code = Some(Cow::Owned(format!("http_{}", status.as_u16())));
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

/// The pipeline's steps for one request, in order.
async fn pipeline(
    exchange: &Exchange<'_>,
    original: Result<(String, String), &'static str>,
    mut request: Request<Incoming>,
    verdict: &mut Verdict,
) -> Result<Response<ProxyBody>, Refusal> {
    let state = exchange.state;
    let (method, normalized, host) = normalize_request(request.headers(), original)?;
    let client_ip = clean_headers(exchange, request.headers_mut(), &host)?;
    let snapshot = state.app.snapshot.load_full();
    let routed = verdict
        .routed
        .insert(route(&snapshot, &method, &normalized, &mut verdict.route)?);
    let inputs = Inputs {
        method: &method,
        path: normalized.path(),
        query: normalized.query(),
        headers: request.headers(),
        client_ip,
        clock: state.clock,
    };
    let attempt = count_attempt(state, routed, &inputs, &mut verdict.errors).await?;
    let principal = identify(exchange, inputs.headers).await?;
    verdict.principal = Some(principal.clone());
    let built = build_request(
        state.config.proxy.anonymous.as_ref(),
        routed,
        &principal,
        &inputs,
        &mut verdict.errors,
    )?;
    let completed = complete_request(state, &snapshot, built, &mut verdict.errors).await?;
    verdict.request = Some(completed);
    let obligations = decide_request(state, verdict)?;
    let limit = enforce_limits(state, &snapshot, &obligations)
        .await?
        .or(attempt);
    rewrite_headers(state, request.headers_mut(), &principal, verdict);
    if state.config.proxy.mode == Mode::ExtAuthz {
        return allow_at_gateway(
            exchange,
            &request,
            &principal,
            verdict,
            (&method, &normalized),
            limit,
        );
    }
    forward_request(
        exchange,
        request,
        &principal,
        verdict,
        (&method, &normalized),
        limit,
    )
    .await
}

/// An internal error: a state the pipeline cannot be in. Nothing is forwarded.
fn internal(detail: &str) -> Refusal {
    tracing::error!(%detail, "internal error in the pipeline");
    Refusal {
        detail: Some(detail.to_string()),
        ..Refusal::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "authz::proxy::internal",
            "internal error",
        )
    }
}

/// Step 1: Normalize, once: route, decide and forward the same path, for the one Host. Gives the
/// method authorized, the normalized target and the host.
fn normalize_request(
    headers: &hyper::HeaderMap,
    original: Result<(String, String), &'static str>,
) -> Result<(String, Normalized, String), Refusal> {
    let host = match normalize::host(headers) {
        Ok(host) => host.to_string(),
        Err(error) => {
            return Err(Refusal::error(
                StatusCode::BAD_REQUEST,
                format!("authz::proxy::{}", error.code()),
                error.to_string(),
            )
            .closing())
        }
    };
    let (method, target) = original.map_err(|name| {
        Refusal::error(
            StatusCode::BAD_REQUEST,
            "authz::proxy::ambiguous_original_request",
            format!(
                "the original request is named ambiguously (`{name}` repeated, missing or \
                 next to another gateway's headers)"
            ),
        )
    })?;
    let normalized = normalize::normalize(&method, &target, Some(&host)).map_err(|error| {
        Refusal::error(
            StatusCode::BAD_REQUEST,
            format!("authz::proxy::{}", error.code()),
            error.to_string(),
        )
    })?;
    if let Some(name) = normalized.method_override_parameter() {
        return Err(Refusal::error(
            StatusCode::BAD_REQUEST,
            "authz::proxy::method_override",
            format!("the query parameter `{name}` (a method override) is not accepted"),
        ));
    }
    Ok((method, normalized, host))
}

/// Header hygiene, before anything reads the headers: hop-by-hop, forwarding, identity and
/// override headers removed or refused. Gives the client's address (behind trusted proxies,
/// the forwarded one).
fn clean_headers(
    exchange: &Exchange<'_>,
    headers: &mut hyper::HeaderMap,
    host: &str,
) -> Result<IpAddr, Refusal> {
    let state = exchange.state;
    let ext_authz = state.config.proxy.mode == Mode::ExtAuthz;
    headers::remove_hop_by_hop(headers);
    if ext_authz && exchange.peer_trusted {
        // The gateway's own account of the original request, read by `original_request`.
        for name in ORIGINAL_REQUEST_HEADERS {
            headers.remove(name);
        }
    }
    state
        .header_policy
        .clean(headers, exchange.peer_trusted, ext_authz)
        .map_err(|refused| {
            Refusal::error(
                StatusCode::BAD_REQUEST,
                format!("authz::proxy::{}", refused.code()),
                refused.message(),
            )
        })?;
    Ok(headers::forwarded(
        headers,
        exchange.peer.ip(),
        &state.trusted,
        Some(host),
        exchange.scheme,
    ))
}

/// Step 3: Identify: the credential in the headers, else the connection's client certificate, else
/// the anonymous principal when one is configured.
async fn identify(
    exchange: &Exchange<'_>,
    headers: &hyper::HeaderMap,
) -> Result<Principal, Refusal> {
    let state = exchange.state;
    let identity = match state.authenticator.authenticate(headers).await {
        Ok(Some(identity)) => Some(identity),
        Ok(None) => match exchange.client_cert.map(PeerCertificate::request_identity) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(identity))) => Some(identity),
            Some(Err(error)) => {
                tracing::info!(reason = %error, code = error.code(), "client certificate names no principal");
                return Err(Refusal::error(
                    StatusCode::UNAUTHORIZED,
                    "authz::proxy::client_certificate",
                    "the client certificate names no principal",
                ));
            }
        },
        Err(error) => {
            tracing::info!(reason = %error, "credential rejected");
            // The client reads a fixed sentence; the audit line the precise failure
            // (`missing claim `tenant``, `token expired`).
            return Err(Refusal {
                detail: Some(error.to_string()),
                ..Refusal::error(
                    StatusCode::UNAUTHORIZED,
                    error.code(),
                    error.client_message(),
                )
            });
        }
    };
    match (identity, &state.config.proxy.anonymous) {
        (Some(identity), _) => Ok(Principal::Verified(identity)),
        (None, Some(_)) => Ok(Principal::Anonymous),
        (None, None) => Err(Refusal::error(
            StatusCode::UNAUTHORIZED,
            "authz::proxy::no_credentials",
            "credentials are required",
        )),
    }
}

/// Step 2: Route: the route the method and path match, in every reading a server may give the path;
/// its action and resource.
fn route(
    snapshot: &Arc<Snapshot>,
    method: &str,
    normalized: &Normalized,
    label: &mut Option<Arc<str>>,
) -> Result<Routed, Refusal> {
    let segments: Vec<&str> = normalized.segments();
    let routes = &snapshot.program.routes;
    let Some(found) = routes.find(method, &segments) else {
        return Err(Refusal::error(
            StatusCode::FORBIDDEN,
            "authz::proxy::no_route",
            "no route matches this request",
        ));
    };
    if !routes_alike_in_every_reading(routes, method, normalized, found) {
        return Err(Refusal::error(
            StatusCode::BAD_REQUEST,
            "authz::proxy::ambiguous_path",
            "the path routes differently once Unicode-normalized or case-folded, as some servers read it",
        ));
    }
    *label = Some(route_label(snapshot, found.route));
    let Some(action) = snapshot.program.schema.action_index(found.route.action.id) else {
        return Err(internal("a route names an action the schema does not have"));
    };
    Ok(Routed {
        snapshot: Arc::clone(snapshot),
        action,
        resource_type: found.route.resource_type,
        resource_id: found.resource_id.into(),
    })
}

/// Step 2b: Count the attempt: the `on attempts` limits, before the credential is checked, so that
/// a client sending bad credentials is slowed like any other. Such limits read only the action
/// and the context, which the plan fills from the request alone. Gives the tightest limit's
/// state; an exhausted limit refuses the request before its credential is looked at.
async fn count_attempt(
    state: &ProxyState,
    routed: &Routed,
    inputs: &Inputs<'_>,
    errors: &mut Vec<AuditError>,
) -> Result<Option<limits::Verdict>, Refusal> {
    let snapshot = &*routed.snapshot;
    let program = &snapshot.program;
    if !program.has_attempt_limits() {
        return Ok(None);
    }
    let Some(plan) = snapshot.derived::<ProxyPlan>() else {
        return Err(internal(
            "the policy set was installed without the proxy's plan",
        ));
    };
    let Some(action) = program.schema.actions.get(routed.action) else {
        return Err(internal("the routed action is not in the schema"));
    };
    let mut builder = RequestBuilder::new(program, &snapshot.store);
    let context = build_context(plan, routed, &mut builder, inputs, errors)?;
    let attempt = builder.finish_attempt(action, context).map_err(|found| {
        errors.extend(found.into_iter().map(AuditError::from_request));
        invalid_request(errors)
    })?;
    let obligations = SCRATCH.with(|cell| {
        let mut buffers = cell.borrow_mut();
        let (scratch, decision) = &mut *buffers;
        attempt_obligations(program, &snapshot.store, &attempt, scratch, decision);
        let namer = Namer {
            program,
            store: &snapshot.store,
            request: &attempt,
        };
        errors.extend(namer.errors(decision).map(|(origin, error)| AuditError {
            code: Cow::Borrowed(error.code()),
            message: namer.error(error),
            at: Some(match origin {
                ErrorOrigin::Policy(id) => format!("policy:{id}"),
                ErrorOrigin::Limit(name) => format!("limit:{name}"),
            }),
        }));
        namer
            .obligations(decision)
            .map(|(limit, key)| Obligation {
                limit: limit.name.clone(),
                key,
            })
            .collect::<Vec<_>>()
    });
    enforce_limits(state, snapshot, &obligations).await
}

/// The context of the routed action, as the install-time plan reads it from the request: a source
/// answered two ways refuses the request (400), a value not of its field's type makes it invalid.
fn build_context(
    plan: &ProxyPlan,
    routed: &Routed,
    builder: &mut RequestBuilder<'_>,
    inputs: &Inputs<'_>,
    errors: &mut Vec<AuditError>,
) -> Result<authz_runtime::value::RecordRef, Refusal> {
    match plan.context.build(routed.action, builder, inputs) {
        Ok(context) => Ok(context),
        Err(ContextError::Ambiguous(ambiguous)) => Err(Refusal::error(
            StatusCode::BAD_REQUEST,
            ambiguous.code(),
            ambiguous.to_string(),
        )),
        Err(ContextError::Invalid(error)) => {
            errors.push(AuditError::from_request(error));
            Err(invalid_request(errors))
        }
        Err(ContextError::Internal(detail)) => Err(internal(detail)),
    }
}

/// The refusal of a request the schema does not describe: fail closed.
fn invalid_request(errors: &[AuditError]) -> Refusal {
    let detail: Vec<String> = errors
        .iter()
        .map(|error| match &error.at {
            Some(at) => format!("{at}: {}", error.message),
            None => error.message.clone(),
        })
        .collect();
    tracing::info!(errors = ?detail, "the request does not fit the schema; denied");
    Refusal::error(
        StatusCode::FORBIDDEN,
        "authz::proxy::invalid_request",
        "the request cannot be authorized",
    )
}

/// Step 4: The decision request: the route's action and resource, the principal (with the entity its
/// credential defines, when it carries attributes), and the context the install-time plan reads
/// from the request. Errors that make it invalid are recorded in `errors`.
fn build_request(
    anonymous: Option<&EntityRef>,
    routed: &Routed,
    principal: &Principal,
    inputs: &Inputs<'_>,
    errors: &mut Vec<AuditError>,
) -> Result<DecisionRequest, Refusal> {
    let snapshot = &*routed.snapshot;
    let Some(plan) = snapshot.derived::<ProxyPlan>() else {
        return Err(internal(
            "the policy set was installed without the proxy's plan",
        ));
    };
    let schema = &snapshot.program.schema;
    let Some(action) = schema.actions.get(routed.action) else {
        return Err(internal("the routed action is not in the schema"));
    };
    let (principal_type, principal_id, prepared) = match principal {
        Principal::Verified(identity) => (
            &*identity.principal_type,
            &*identity.principal_id,
            identity.prepared_entity.as_ref(),
        ),
        Principal::Anonymous => match anonymous {
            Some(anonymous) => (anonymous.ty.as_str(), anonymous.id.as_str(), None),
            None => return Err(internal("an anonymous principal without `anonymous`")),
        },
    };
    let mut builder = RequestBuilder::new(&snapshot.program, &snapshot.store);
    let Some(ty) = schema
        .type_id(principal_type)
        .filter(|ty| *ty != schema.action_type)
    else {
        errors.push(AuditError {
            code: Cow::Borrowed("authz::request::unknown_type"),
            message: format!("unknown entity type `{principal_type}`"),
            at: Some("principal.type".to_string()),
        });
        return Err(invalid_request(errors));
    };
    let principal_uid = builder.entity(ty, principal_id);
    let resource_uid = builder.entity(routed.resource_type, &routed.resource_id);
    let context = build_context(plan, routed, &mut builder, inputs, errors)?;
    let entities = match prepared {
        None => Vec::new(),
        Some(prepared) => builder.entities(prepared).map_err(|found| {
            errors.extend(found.into_iter().map(AuditError::from_request));
            invalid_request(errors)
        })?,
    };
    builder
        .finish(principal_uid, action, resource_uid, context, entities)
        .map_err(|found| {
            errors.extend(found.into_iter().map(AuditError::from_request));
            invalid_request(errors)
        })
}

/// Step 4b: the entities the request's principal and resource need from entity providers. A
/// provider that fails refuses the request (fail closed, 503 so that clients retry), the audit
/// line naming the entity and the provider.
async fn complete_request(
    state: &ProxyState,
    snapshot: &Snapshot,
    request: DecisionRequest,
    errors: &mut Vec<AuditError>,
) -> Result<DecisionRequest, Refusal> {
    providers::complete(&state.app.providers, snapshot, request)
        .await
        .map_err(|error| {
            errors.push(AuditError {
                code: Cow::Borrowed(error.code()),
                message: error.to_string(),
                at: Some(format!("entity:{}", error.entity)),
            });
            Refusal {
                detail: Some(error.to_string()),
                ..Refusal::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "authz::proxy::entity_provider",
                    "an entity the decision needs is unavailable; try again shortly",
                )
            }
        })
}

/// One limit that applies to a request: the limit's name and the key it counts.
struct Obligation {
    limit: String,
    key: String,
}

/// Step 5: Decide. A denial is a refusal with the `@reason`s of the forbids that denied; an allowed
/// request gives the limits that apply to it.
fn decide_request(state: &ProxyState, verdict: &mut Verdict) -> Result<Vec<Obligation>, Refusal> {
    let (Some(routed), Some(request)) = (&verdict.routed, &verdict.request) else {
        return Err(internal("deciding a request that was not built"));
    };
    let snapshot = &*routed.snapshot;
    let deciding = Instant::now();
    let mut reasons = Vec::new();
    let mut obligations = Vec::new();
    let allowed = SCRATCH.with(|cell| {
        let mut buffers = cell.borrow_mut();
        let (scratch, decision) = &mut *buffers;
        decide(
            &snapshot.program,
            &snapshot.store,
            request,
            scratch,
            decision,
        );
        let metrics = &state.app.metrics;
        if decision.allow {
            metrics.allowed.inc();
        } else {
            metrics.denied.inc();
        }
        metrics.observe_latency(u64::try_from(deciding.elapsed().as_micros()).unwrap_or(u64::MAX));
        let namer = Namer {
            program: &snapshot.program,
            store: &snapshot.store,
            request,
        };
        verdict.determining.extend_from_slice(&decision.determining);
        verdict
            .errors
            .extend(namer.errors(decision).map(|(origin, error)| AuditError {
                code: Cow::Borrowed(error.code()),
                message: namer.error(error),
                at: Some(match origin {
                    ErrorOrigin::Policy(id) => format!("policy:{id}"),
                    ErrorOrigin::Limit(name) => format!("limit:{name}"),
                }),
            }));
        if decision.allow {
            // `on attempts` limits were counted before the credential was checked.
            obligations.extend(
                namer
                    .obligations(decision)
                    .filter(|(limit, _)| !limit.on_attempts)
                    .map(|(limit, key)| Obligation {
                        limit: limit.name.clone(),
                        key,
                    }),
            );
        } else {
            // A principal or resource the decision found missing is the cause to name first.
            reasons.extend(namer.missing_causes(decision));
            reasons.extend(namer.reasons(decision).map(str::to_string));
        }
        decision.allow
    });
    if !allowed {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            decision: "deny",
            says: Says::Denied { reasons },
            detail: None,
            headers: Vec::new(),
            close: false,
        });
    }
    verdict.decision = "allow";
    Ok(obligations)
}

/// Step 6: Limit: counts the request against the limits that apply to it. Gives the tightest limit's
/// state for the rate limit headers; an exhausted limit, or limits that cannot be counted
/// (Redis unavailable), refuse the request.
async fn enforce_limits(
    state: &ProxyState,
    snapshot: &Snapshot,
    obligations: &[Obligation],
) -> Result<Option<limits::Verdict>, Refusal> {
    if obligations.is_empty() {
        return Ok(None);
    }
    let borrowed: Vec<limits::Obligation<'_>> = obligations
        .iter()
        .map(|obligation| limits::Obligation {
            limit: &obligation.limit,
            key: &obligation.key,
        })
        .collect();
    let counted = match &state.shared_limits {
        Some(shared) => {
            let declared: Vec<Declared<'_>> =
                snapshot.program.limits.iter().map(Declared::of).collect();
            shared.check(&declared, &borrowed).await
        }
        None => match snapshot.derived::<ProxyPlan>() {
            Some(plan) => Ok(plan.limiters.check(&borrowed)),
            None => {
                return Err(internal(
                    "the policy set was installed without its limiters",
                ))
            }
        },
    };
    let limit = match counted {
        Ok(limit) => limit,
        Err(Unavailable) => {
            // In `ext_authz` mode `gateway_status` makes this a 403: gateways treat a 5xx from
            // their authorization service as a failure that `failure_mode_allow` may let through.
            return Err(Refusal {
                status: StatusCode::SERVICE_UNAVAILABLE,
                decision: "limited",
                says: Says::Denied {
                    reasons: vec!["rate limits are unavailable; try again shortly".to_string()],
                },
                detail: Some("rate limits unavailable".to_string()),
                headers: vec![(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"))],
                close: false,
            });
        }
    };
    if let Some(limit) = limit.as_ref().filter(|limit| !limit.allowed) {
        state
            .app
            .metrics
            .limit_hits
            .get_or_create(&LimitLabel {
                limit: limit.limit.to_string(),
            })
            .inc();
        return Err(Refusal {
            status: StatusCode::TOO_MANY_REQUESTS,
            decision: "limited",
            says: Says::Denied {
                reasons: vec![format!("rate limit `{}` exceeded", limit.limit)],
            },
            detail: Some(format!("limit `{}`", limit.limit)),
            headers: rate_limit_headers(limit),
            close: false,
        });
    }
    Ok(limit)
}

/// Step 7: Rewrite headers: identity headers only from verified identity; the verified credential
/// itself goes no further unless its source says so; `[upstream_headers]` from the identity and
/// the principal as the decision saw it.
fn rewrite_headers(
    state: &ProxyState,
    headers: &mut hyper::HeaderMap,
    principal: &Principal,
    verdict: &Verdict,
) {
    let identity = match principal {
        Principal::Verified(identity) => Some(&**identity),
        Principal::Anonymous => None,
    };
    if let Some(identity) = identity {
        if !identity.forward_credential {
            headers.remove(hyper::header::AUTHORIZATION);
            if let Some(header) = state.authenticator.api_key_header() {
                headers.remove(header);
            }
        }
        for (name, value) in &identity.headers {
            headers.insert(name.clone(), value.clone());
        }
    }
    if let (Some(routed), Some(request)) = (&verdict.routed, &verdict.request) {
        state.upstream_headers.apply(
            headers,
            identity,
            &Namer {
                program: &routed.snapshot.program,
                store: &routed.snapshot.store,
                request,
            },
            request.principal,
        );
    }
}

/// Step 8a: In `ext_authz` mode: the allow answer, carrying the identity headers (and the assertion)
/// for the gateway to add to the request it forwards.
fn allow_at_gateway(
    exchange: &Exchange<'_>,
    request: &Request<Incoming>,
    principal: &Principal,
    verdict: &Verdict,
    (method, normalized): (&str, &Normalized),
    limit: Option<limits::Verdict>,
) -> Result<Response<ProxyBody>, Refusal> {
    let state = exchange.state;
    let mut body = String::from("{\"decision\":\"allow\",\"request_id\":");
    write_json_string(&mut body, exchange.request_id);
    body.push('}');
    let mut response = json_response(StatusCode::OK, body);
    assert_identity(
        state,
        response.headers_mut(),
        principal,
        verdict,
        (method, normalized, None),
    )?;
    let prefix = &state.config.proxy.identity_header_prefix;
    for (name, value) in request.headers() {
        let mapped = state
            .upstream_headers
            .names()
            .any(|mapped| mapped == name.as_str());
        if mapped || name.as_str().starts_with(prefix.as_str()) {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    if let Some(limit) = &limit {
        for (name, value) in rate_limit_headers(limit) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}

/// Step 8b: Forward to the upstream with the longest matching prefix; its answer is the response.
async fn forward_request(
    exchange: &Exchange<'_>,
    mut request: Request<Incoming>,
    principal: &Principal,
    verdict: &mut Verdict,
    (method, normalized): (&str, &Normalized),
    limit: Option<limits::Verdict>,
) -> Result<Response<ProxyBody>, Refusal> {
    let state = exchange.state;
    let Some((_, base, name)) = state
        .upstreams
        .iter()
        .find(|(prefix, _, _)| path_has_prefix(normalized.path(), prefix))
    else {
        return Err(Refusal::upstream(
            StatusCode::BAD_GATEWAY,
            "authz::proxy::no_upstream",
            "no upstream serves this path",
        ));
    };
    let Ok(uri) = format!("{base}{}", normalized.path_and_query()).parse::<hyper::Uri>() else {
        return Err(Refusal::upstream(
            StatusCode::BAD_GATEWAY,
            "authz::proxy::upstream",
            "bad gateway",
        ));
    };
    assert_identity(
        state,
        request.headers_mut(),
        principal,
        verdict,
        (method, normalized, Some(&**name)),
    )?;
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
                for (name, value) in rate_limit_headers(limit) {
                    response.headers_mut().insert(name, value);
                }
            }
            verdict.status = response.status().as_u16();
            Ok(response)
        }
        Err(ForwardError::Timeout) => {
            tracing::warn!(upstream = %name, "upstream timed out");
            Err(Refusal::upstream(
                StatusCode::GATEWAY_TIMEOUT,
                "authz::proxy::upstream_timeout",
                "the upstream did not answer in time",
            ))
        }
        Err(ForwardError::ClientStalled) => Err(Refusal {
            detail: Some("the client stalled while sending its body".to_string()),
            ..Refusal::upstream(
                StatusCode::REQUEST_TIMEOUT,
                "authz::proxy::request_timeout",
                "the request body did not arrive in time",
            )
            .closing()
        }),
        Err(ForwardError::InvalidBody(detail)) => {
            tracing::info!(%detail, "the client's body is not validly framed");
            Err(Refusal {
                detail: Some("the request body is not validly framed".to_string()),
                ..Refusal::upstream(
                    StatusCode::BAD_REQUEST,
                    "authz::proxy::invalid_body",
                    "the request body is not validly framed",
                )
                .closing()
            })
        }
        Err(ForwardError::Unavailable(detail)) => {
            tracing::warn!(upstream = %name, %detail, "upstream unavailable");
            Err(Refusal::upstream(
                StatusCode::BAD_GATEWAY,
                "authz::proxy::upstream_unavailable",
                "the upstream is unavailable",
            ))
        }
    }
}

/// Adds the signed identity assertion to `headers` when one is configured: for an allowed
/// request, about to be forwarded to `upstream` (or answered 200 in `ext_authz` mode). Signing
/// that fails although the key signed at start refuses the request: nothing is forwarded
/// unvouched.
fn assert_identity(
    state: &ProxyState,
    headers: &mut hyper::HeaderMap,
    principal: &Principal,
    verdict: &Verdict,
    (method, normalized, upstream): (&str, &Normalized, Option<&str>),
) -> Result<(), Refusal> {
    let Some(signer) = &state.assertion else {
        return Ok(());
    };
    let Some(routed) = &verdict.routed else {
        return Err(internal(
            "asserting the identity of a request that was not routed",
        ));
    };
    let (principal_json, auth) = match principal {
        Principal::Verified(identity) => (identity.principal.clone(), Some(identity.method)),
        Principal::Anonymous => (
            state.config.proxy.anonymous.as_ref().map_or(
                serde_json::Value::Null,
                |anonymous| serde_json::json!({ "type": anonymous.ty, "id": anonymous.id }),
            ),
            None,
        ),
    };
    let resource = serde_json::json!({
        "type": routed.resource_type_name(),
        "id": &*routed.resource_id,
    });
    let policies = serde_json::Value::Array(
        verdict
            .determining
            .iter()
            .filter_map(|index| routed.snapshot.program.policies.get(*index as usize))
            .map(|policy| serde_json::Value::String(policy.id.clone()))
            .collect(),
    );
    let value = signer
        .sign(&Asserted {
            principal: &principal_json,
            auth,
            action: routed.action_name(),
            resource: &resource,
            policies: &policies,
            method,
            path: normalized.path(),
            query: normalized.query().unwrap_or(""),
            upstream,
        })
        .map_err(|detail| {
            tracing::error!(%detail, "cannot sign the identity assertion");
            Refusal {
                detail: Some("cannot sign the identity assertion".to_string()),
                ..Refusal::upstream(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "authz::proxy::internal",
                    "internal error",
                )
            }
        })?;
    headers.insert(signer.header_name().clone(), value);
    Ok(())
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

/// The rate limit headers of the tightest limit that applies: `RateLimit-Limit`, `-Remaining`,
/// `-Reset`, and `Retry-After` once it is exhausted.
fn rate_limit_headers(limit: &limits::Verdict) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::with_capacity(4);
    let mut set = |name: &'static str, value: u64| {
        headers.push((HeaderName::from_static(name), HeaderValue::from(value)));
    };
    set("ratelimit-limit", limit.count);
    set("ratelimit-remaining", limit.remaining);
    set("ratelimit-reset", limit.reset);
    if !limit.allowed {
        set("retry-after", limit.retry_after.max(1));
    }
    headers
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::host::state;
    use crate::proxy::context_plan::ContextPlan;
    use crate::proxy::identity::principal_entity;
    use crate::proxy::limits::Limiters;

    /// The shop example, installed with the context mapping of its `proxy.toml`.
    fn shop() -> Arc<Snapshot> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop");
        let mut snapshot = state::load(&dir, Some(&dir.join("entities.json"))).unwrap();
        let mapping: BTreeMap<String, String> = [
            ("mfa", "header:x-mfa"),
            ("amount", "query:amount"),
            ("client.ip", "client_ip"),
            ("client.userAgent", "header:user-agent"),
        ]
        .into_iter()
        .map(|(field, source)| (field.to_string(), source.to_string()))
        .collect();
        let plan = ProxyPlan {
            context: ContextPlan::derive(&mapping, &snapshot.program.schema).unwrap(),
            limiters: Arc::new(Limiters::new(&[], None)),
        };
        snapshot.derived = Some(Arc::new(plan));
        Arc::new(snapshot)
    }

    fn headers(pairs: &[(&str, &str)]) -> hyper::HeaderMap {
        let mut map = hyper::HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn code(refusal: &Refusal) -> String {
        match &refusal.says {
            Says::Error { code, .. } => code.to_string(),
            Says::Failure { code, .. } => code.to_string(),
            Says::Denied { reasons } => format!("denied {reasons:?}"),
        }
    }

    fn get(target: &str) -> Result<(String, String), &'static str> {
        Ok(("GET".to_string(), target.to_string()))
    }

    #[test]
    fn normalize_gives_one_reading_of_the_target_or_refuses_it() {
        let host = headers(&[("host", "shop.example")]);
        let (method, normalized, name) = normalize_request(&host, get("/orders/./o-1")).unwrap();
        assert_eq!(
            (method.as_str(), normalized.path(), name.as_str()),
            ("GET", "/orders/o-1", "shop.example")
        );

        let two_hosts = headers(&[("host", "a.example"), ("host", "b.example")]);
        let refusal = normalize_request(&two_hosts, get("/")).unwrap_err();
        assert_eq!(refusal.status, StatusCode::BAD_REQUEST);
        assert!(
            refusal.close,
            "a request with two hosts ends the connection"
        );

        let refusal = normalize_request(&host, get("/orders/o-1?_method=DELETE")).unwrap_err();
        assert_eq!(code(&refusal), "authz::proxy::method_override");
        let refusal = normalize_request(&host, Err("x-original-uri")).unwrap_err();
        assert_eq!(code(&refusal), "authz::proxy::ambiguous_original_request");
    }

    #[test]
    fn route_gives_the_action_and_resource_or_refuses() {
        let snapshot = shop();
        let host = headers(&[("host", "shop.example")]);
        let (method, normalized, _) = normalize_request(&host, get("/orders/o-100")).unwrap();
        let mut label = None;
        let routed = route(&snapshot, &method, &normalized, &mut label).unwrap();
        assert_eq!(routed.action_name(), "readOrder");
        assert_eq!(
            (routed.resource_type_name(), &*routed.resource_id),
            ("Order", "o-100")
        );
        assert_eq!(label.as_deref(), Some("GET /orders/{id}"));

        let (method, normalized, _) = normalize_request(&host, get("/nowhere")).unwrap();
        let refusal = route(&snapshot, &method, &normalized, &mut None).unwrap_err();
        assert_eq!(
            (refusal.status, code(&refusal)),
            (StatusCode::FORBIDDEN, "authz::proxy::no_route".to_string())
        );
    }

    fn routed(snapshot: &Arc<Snapshot>, method: &str, target: &str) -> Routed {
        let host = headers(&[("host", "shop.example")]);
        let original = Ok((method.to_string(), target.to_string()));
        let (method, normalized, _) = normalize_request(&host, original).unwrap();
        route(snapshot, &method, &normalized, &mut None).unwrap()
    }

    fn inputs<'a>(headers: &'a hyper::HeaderMap, query: Option<&'a str>) -> Inputs<'a> {
        Inputs {
            method: "POST",
            path: "/orders/o-100/refunds",
            query,
            headers,
            client_ip: "192.0.2.1".parse().unwrap(),
            clock: crate::host::clock::Clock::System,
        }
    }

    #[test]
    fn the_decision_request_is_built_from_the_route_the_identity_and_the_plan() {
        let snapshot = shop();
        let refund = routed(&snapshot, "POST", "/orders/o-100/refunds?amount=5");
        let carol = Principal::Verified(Arc::new(Identity::new(
            principal_entity("User", "carol", serde_json::Map::new()),
            "jwt",
            None,
        )));
        let sent = headers(&[("x-mfa", "true"), ("user-agent", "t")]);
        let mut errors = Vec::new();
        let request = build_request(
            None,
            &refund,
            &carol,
            &inputs(&sent, Some("amount=5")),
            &mut errors,
        )
        .unwrap();
        assert!(errors.is_empty());
        assert!(request.entities.is_none(), "carol is a stored entity");

        // A missing field fails closed, and the audit line names it.
        let refusal =
            build_request(None, &refund, &carol, &inputs(&sent, None), &mut errors).unwrap_err();
        assert_eq!(code(&refusal), "authz::proxy::invalid_request");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].at.as_deref(), Some("context.amount"));

        // An anonymous principal without `[proxy.anonymous]` is an internal error.
        let refusal = build_request(
            None,
            &refund,
            &Principal::Anonymous,
            &inputs(&sent, Some("amount=5")),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(refusal.status, StatusCode::INTERNAL_SERVER_ERROR);

        // A credential's attributes of the wrong type fail the request, naming the attribute.
        let mut attributes = serde_json::Map::new();
        attributes.insert("tier".to_string(), serde_json::json!(7));
        let typed_wrong = Principal::Verified(Arc::new(Identity::new(
            principal_entity("User", "dave", attributes),
            "jwt",
            None,
        )));
        let mut errors = Vec::new();
        let refusal = build_request(
            None,
            &refund,
            &typed_wrong,
            &inputs(&sent, Some("amount=5")),
            &mut errors,
        )
        .unwrap_err();
        assert_eq!(code(&refusal), "authz::proxy::invalid_request");
        assert!(
            errors
                .iter()
                .any(|error| error.at.as_deref() == Some("entities[0].attrs.tier")),
            "{:?}",
            errors.iter().map(|error| &error.at).collect::<Vec<_>>()
        );
    }

    fn body(response: Response<ProxyBody>) -> serde_json::Value {
        use std::future::Future as _;
        // A body of the proxy's own is complete: collecting it is ready at once.
        let mut collecting = std::pin::pin!(response.into_body().collect());
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        let std::task::Poll::Ready(Ok(collected)) = collecting.as_mut().poll(&mut context) else {
            panic!("the body was not ready");
        };
        let bytes = collected.to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_refusal_answers_json_with_the_request_id_and_fills_the_verdict() {
        let mut verdict = Verdict::new();
        let refusal = Refusal {
            detail: Some("missing claim `tenant`".to_string()),
            ..Refusal::error(StatusCode::UNAUTHORIZED, "missing_claim", "invalid token")
        };
        let response = refusal.answer("req-1", &mut verdict);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            body(response),
            serde_json::json!({"decision": "deny", "error": {"code": "missing_claim", "message": "invalid token"}, "request_id": "req-1"})
        );
        assert_eq!(
            (
                verdict.status,
                verdict.decision,
                verdict.code.as_deref(),
                verdict.reason.as_deref()
            ),
            (
                401,
                "deny",
                Some("missing_claim"),
                Some("missing claim `tenant`")
            )
        );

        let mut verdict = Verdict::new();
        let denied = Refusal {
            status: StatusCode::FORBIDDEN,
            decision: "deny",
            says: Says::Denied {
                reasons: vec![
                    "tenants are isolated".to_string(),
                    "a \"quoted\" one".to_string(),
                ],
            },
            detail: None,
            headers: Vec::new(),
            close: false,
        };
        let response = denied.answer("req-2", &mut verdict);
        assert!(response.headers().get(hyper::header::CONNECTION).is_none());
        assert_eq!(
            body(response),
            serde_json::json!({"decision": "deny", "reasons": ["tenants are isolated", "a \"quoted\" one"], "request_id": "req-2"})
        );
        assert_eq!(
            verdict.reason.as_deref(),
            Some("tenants are isolated; a \"quoted\" one")
        );

        let mut verdict = Verdict::new();
        let closing = Refusal::upstream(
            StatusCode::BAD_REQUEST,
            "authz::proxy::invalid_body",
            "the request body is not validly framed",
        )
        .closing();
        let response = closing.answer("req-3", &mut verdict);
        assert_eq!(response.headers()[hyper::header::CONNECTION], "close");
        assert_eq!(
            body(response),
            serde_json::json!({"error": {"code": "authz::proxy::invalid_body", "message": "the request body is not validly framed"}, "request_id": "req-3"})
        );
        assert_eq!(verdict.decision, "allow");
    }
}
