//! Entity providers: where the entities a request needs come from when the store does not have
//! them (the order created a second ago lives in its service, not in `entities.json`).
//!
//! `[[entity_provider]]` names, per entity type, an HTTP endpoint: for an entity `Order("o-7")`
//! that the request names as its principal or resource, that is neither in the store nor among
//! the request's own entities, the server calls `GET {url}/o-7` (the id percent-encoded). The
//! answer is the entity in the entities format (an object, or an array whose entities come with
//! it, such as its parents), and it must be the entity asked for. It is checked against the
//! schema as the request's own entities are, when the request is built; a `404` means the entity
//! does not exist.
//!
//! Answers are cached per entity for `ttl_seconds` (a `404` for `negative_ttl_seconds`), at most
//! `max_entries` per provider; concurrent requests for the same entity share one fetch. A
//! provider that does not answer within `timeout_ms`, answers another status, or answers
//! something that is not the entity fails the request closed, with an error naming the entity and
//! the provider, in the decision, the audit line and `authz_entity_provider_lookups_total`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authz_runtime::json::PreparedEntities;
use authz_runtime::request::Request;
use authz_runtime::request_builder::{knows, with_entities};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use serde::Deserialize;
use serde_json::Value as Json;

use super::metrics::{Metrics, ProviderLabel};
use super::state::Snapshot;

/// The largest answer accepted from a provider, in bytes.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// `[[entity_provider]]`
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The entity type it provides.
    #[serde(rename = "type")]
    pub ty: String,
    /// The base URL; an entity is fetched from `{url}/{id}`.
    pub url: String,
    /// How long to wait for an answer, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How long an answered entity is served from the cache, in seconds.
    #[serde(default = "default_ttl_seconds")]
    pub ttl_seconds: u64,
    /// How long a `404` is remembered, in seconds.
    #[serde(default = "default_negative_ttl_seconds")]
    pub negative_ttl_seconds: u64,
    /// The most entities cached.
    #[serde(default = "default_max_entries")]
    pub max_entries: usize,
}

fn default_timeout_ms() -> u64 {
    1_000
}
fn default_ttl_seconds() -> u64 {
    30
}
fn default_negative_ttl_seconds() -> u64 {
    5
}
fn default_max_entries() -> usize {
    10_000
}

/// Why a provider could not say what an entity is: the request fails closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the entity provider for `{entity}` ({url}) failed: {problem}")]
pub struct ProviderError {
    /// The entity, as written in a policy: `Order("o-7")`.
    pub entity: String,
    /// The URL called.
    pub url: String,
    /// What went wrong.
    pub problem: String,
}

impl ProviderError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        "authz::provider::failed"
    }
}

/// A cached answer.
#[derive(Clone)]
enum Cached {
    Found(Arc<PreparedEntities>),
    Missing,
}

struct Provider {
    config: ProviderConfig,
    entity_type: Arc<str>,
    cache: Mutex<HashMap<String, (Cached, Instant)>>,
    /// One fetch in flight per id: later requests wait for it, then read the cache.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The configured providers, by entity type.
pub struct Providers {
    by_type: HashMap<String, Provider>,
    client: Option<HttpClient>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Providers")
            .field("types", &self.by_type.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Providers {
    /// The providers of `configs`; the error names the entry at fault.
    pub fn new(configs: &[ProviderConfig], metrics: Arc<Metrics>) -> Result<Providers, String> {
        let mut by_type = HashMap::new();
        for (index, config) in configs.iter().enumerate() {
            let key = format!("entity_provider[{index}]");
            crate::outbound::checked_url(&config.url)
                .map_err(|problem| format!("`{key}.url`: {problem}"))?;
            if config.timeout_ms == 0 || config.max_entries == 0 {
                return Err(format!(
                    "`{key}`: `timeout_ms` and `max_entries` must be positive"
                ));
            }
            let provider = Provider {
                config: config.clone(),
                entity_type: Arc::from(config.ty.as_str()),
                cache: Mutex::new(HashMap::new()),
                in_flight: Mutex::new(HashMap::new()),
            };
            if by_type.insert(config.ty.clone(), provider).is_some() {
                return Err(format!("`{key}.type`: `{}` has two providers", config.ty));
            }
        }
        let client = if by_type.is_empty() {
            None
        } else {
            Some(
                crate::outbound::client()
                    .map_err(|problem| format!("entity providers: {problem}"))?,
            )
        };
        Ok(Providers {
            by_type,
            client,
            metrics: Some(metrics),
        })
    }

    /// Whether every provided type is an entity type of `schema`: checked whenever a set is
    /// installed.
    pub fn check(&self, schema: &authz_runtime::schema::Schema) -> Result<(), String> {
        for ty in self.by_type.keys() {
            if schema.type_id(ty).is_none_or(|id| id == schema.action_type) {
                return Err(format!(
                    "`entity_provider.type`: `{ty}` is not an entity type of the policies"
                ));
            }
        }
        Ok(())
    }

    /// The entity `ty` / `id` as its provider answers it: `None` when it does not exist (or no
    /// provider serves `ty`).
    pub async fn fetch(
        &self,
        ty: &str,
        id: &str,
    ) -> Result<Option<Arc<PreparedEntities>>, ProviderError> {
        let (Some(provider), Some(client)) = (self.by_type.get(ty), &self.client) else {
            return Ok(None);
        };
        if let Some(cached) = provider.cached(id) {
            self.count(provider, "cached");
            return Ok(found(cached));
        }
        let gate = {
            let mut in_flight = provider
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(in_flight.entry(id.to_string()).or_default())
        };
        let _turn = gate.lock().await;
        // Another request may have fetched it while this one waited.
        if let Some(cached) = provider.cached(id) {
            self.count(provider, "cached");
            return Ok(found(cached));
        }
        let answer = provider.fetch(client, id).await;
        {
            let mut in_flight = provider
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            in_flight.remove(id);
        }
        match answer {
            Ok(cached) => {
                self.count(
                    provider,
                    match cached {
                        Cached::Found(_) => "found",
                        Cached::Missing => "missing",
                    },
                );
                provider.remember(id, cached.clone());
                Ok(found(cached))
            }
            Err(problem) => {
                self.count(provider, "error");
                tracing::warn!(entity_type = ty, id, url = %provider.config.url, %problem, "entity provider failed");
                Err(ProviderError {
                    entity: format!("{ty}({id:?})"),
                    url: provider.url(id),
                    problem,
                })
            }
        }
    }

    fn count(&self, provider: &Provider, result: &'static str) {
        if let Some(metrics) = &self.metrics {
            metrics
                .provider_lookups
                .get_or_create(&ProviderLabel {
                    entity_type: Arc::clone(&provider.entity_type),
                    result,
                })
                .inc();
        }
    }
}

fn found(cached: Cached) -> Option<Arc<PreparedEntities>> {
    match cached {
        Cached::Found(entities) => Some(entities),
        Cached::Missing => None,
    }
}

impl Provider {
    fn url(&self, id: &str) -> String {
        let encoded: String =
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        format!("{}/{encoded}", self.config.url.trim_end_matches('/'))
    }

    /// The cached answer for `id`, while it is fresh.
    fn cached(&self, id: &str) -> Option<Cached> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (cached, expires) = cache.get(id)?;
        (Instant::now() < *expires).then(|| cached.clone())
    }

    /// Keeps an answer for its lifetime; a full cache first forgets what has expired, then, if
    /// still full, everything (a bound, not an LRU: providers are the slow path).
    fn remember(&self, id: &str, cached: Cached) {
        let lifetime = Duration::from_secs(match cached {
            Cached::Found(_) => self.config.ttl_seconds,
            Cached::Missing => self.config.negative_ttl_seconds,
        });
        if lifetime.is_zero() {
            return;
        }
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if cache.len() >= self.config.max_entries {
            cache.retain(|_, (_, expires)| now < *expires);
            if cache.len() >= self.config.max_entries {
                cache.clear();
            }
        }
        cache.insert(id.to_string(), (cached, now + lifetime));
    }

    /// Calls the provider for `id`.
    async fn fetch(&self, client: &HttpClient, id: &str) -> Result<Cached, String> {
        let url = self.url(id);
        let request = hyper::Request::get(url.as_str())
            .header(hyper::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|error| format!("cannot build the request: {error}"))?;
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let crate::outbound::Answer { status, body, .. } =
            crate::outbound::call(client, request, timeout, MAX_ANSWER_BYTES).await?;
        if status == hyper::StatusCode::NOT_FOUND {
            return Ok(Cached::Missing);
        }
        if status != hyper::StatusCode::OK {
            return Err(format!("status {status}"));
        }
        let json: Json = serde_json::from_slice(&body)
            .map_err(|error| format!("the answer is not JSON: {error}"))?;
        let entities = match json {
            Json::Array(items) => items,
            object @ Json::Object(_) => vec![object],
            _ => return Err("the answer is neither an entity nor a list of entities".to_string()),
        };
        let names_it = |entity: &Json| {
            entity.get("type").and_then(Json::as_str) == Some(self.config.ty.as_str())
                && entity.get("id").and_then(Json::as_str) == Some(id)
        };
        if !entities.first().is_some_and(names_it) {
            return Err(format!(
                "the answer is not the entity asked for (its first entity must be `{}` with id {id:?})",
                self.config.ty
            ));
        }
        let prepared = PreparedEntities::from_value(&Json::Array(entities))
            .map_err(|error| format!("{}: {}", error.field, error.message))?;
        Ok(Cached::Found(Arc::new(prepared)))
    }
}

/// Completes `request` with the entities its principal and resource need from `providers`:
/// those neither in the store nor among the request's own. A principal or resource no provider
/// knows stays missing, and the decision reports it (`Namer::missing_causes`).
pub async fn complete(
    providers: &Providers,
    snapshot: &Snapshot,
    mut request: Request,
) -> Result<Request, ProviderError> {
    if providers.by_type.is_empty() {
        return Ok(request);
    }
    let (program, store) = (&snapshot.program, &snapshot.store);
    let parts = [request.principal, request.resource];
    for (index, uid) in parts.into_iter().enumerate() {
        if (index == 1 && uid == request.principal) || knows(store, &request, uid) {
            continue;
        }
        let ty = program.schema.type_name(uid.ty);
        let Some(provider) = providers.by_type.get(ty) else {
            continue;
        };
        let id = store
            .interner
            .resolve(uid.id)
            .or_else(|| request.strings.resolve(uid.id))
            .unwrap_or_default()
            .to_string();
        let Some(prepared) = providers.fetch(ty, &id).await? else {
            continue;
        };
        // One answer at a time, so that an answer the schema refuses names its provider.
        request = with_entities(program, store, request, &[&*prepared]).map_err(|errors| {
            let detail = errors.first().map_or_else(String::new, |error| {
                format!("{}: {}", error.field, error.message)
            });
            ProviderError {
                entity: format!("{ty}({id:?})"),
                url: provider.url(&id),
                problem: format!("the answer does not fit the schema ({detail})"),
            }
        })?;
    }
    Ok(request)
}
