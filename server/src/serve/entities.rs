//! The entity data API: the entities policies read, changed through HTTP as well as through the
//! entities file.
//!
//! - `GET /v1/entities` lists every entity being served, in the entities format, with the
//!   generation; `GET /v1/entities/{type}/{id}` returns one.
//! - `POST /v1/entities` upserts a batch (a JSON array in the entities format): an entity of the
//!   same type and id is replaced, the others are added.
//! - `PUT /v1/entities` replaces all of them.
//! - `DELETE /v1/entities/{type}/{id}` deletes one.
//!
//! A write is validated against the schema exactly as the entities file is, and with the same
//! errors (they name the entity and the attribute); it is all or nothing: the new store is built
//! whole, checked by the host like any other set, persisted to the entities file (through a
//! temporary file and a rename) and only then installed, as a new generation, before the answer,
//! so the very next decision sees it. Writes take `Authorization: Bearer <admin token>`, and
//! reads too when a token is configured; with no token, writes are off. Writes need
//! `policies.entities`, the file that keeps them across restarts.

use std::sync::Arc;

use authz_lang::SourceFile;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value as Json};

use super::api_error::{json_response, ApiError};
use super::http::read_body;
use super::policies::{authorize, authorize_read, persist};
use crate::host::state::{self, AppState, LoadError, Snapshot};

/// Every entity of a snapshot, in the entities format.
fn all(snapshot: &Snapshot) -> Vec<Json> {
    match authz_runtime::json::entities_to_json(&snapshot.program, &snapshot.store) {
        Json::Array(entities) => entities,
        _ => Vec::new(),
    }
}

/// Whether an entity in the entities format is `ty` / `id`.
fn is(entity: &Json, ty: &str, id: &str) -> bool {
    entity.get("type").and_then(Json::as_str) == Some(ty)
        && entity.get("id").and_then(Json::as_str) == Some(id)
}

/// `GET /v1/entities`
pub fn list(
    state: &AppState,
    request: &Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    authorize_read(state, request)?;
    let snapshot = state.snapshot.load();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "generation": snapshot.generation, "entities": all(&snapshot) }),
    ))
}

/// `GET /v1/entities/{type}/{id}`
pub fn get(
    state: &AppState,
    request: &Request<Incoming>,
    ty: &str,
    id: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    authorize_read(state, request)?;
    let snapshot = state.snapshot.load();
    let entity = all(&snapshot)
        .into_iter()
        .find(|entity| is(entity, ty, id))
        .ok_or_else(|| missing(ty, id))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "generation": snapshot.generation, "entity": entity }),
    ))
}

fn missing(ty: &str, id: &str) -> ApiError {
    ApiError::NotFoundNamed {
        code: "authz::api::no_such_entity",
        message: format!("no entity `{ty}::{id:?}` is being served"),
    }
}

/// What a write does to the entities being served.
enum Change {
    /// Adds the batch's entities, replacing those of the same type and id.
    Upsert(Vec<Json>),
    /// Serves exactly the batch.
    Replace(Vec<Json>),
    /// Removes one entity.
    Delete { ty: String, id: String },
}

/// `POST /v1/entities`
pub async fn upsert(
    state: &Arc<AppState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    authorize(state, &request)?;
    let batch = read_batch(state, request).await?;
    write(state, Change::Upsert(batch)).await
}

/// `PUT /v1/entities`
pub async fn replace(
    state: &Arc<AppState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    authorize(state, &request)?;
    let batch = read_batch(state, request).await?;
    write(state, Change::Replace(batch)).await
}

/// `DELETE /v1/entities/{type}/{id}`
pub async fn delete(
    state: &Arc<AppState>,
    request: Request<Incoming>,
    ty: &str,
    id: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    authorize(state, &request)?;
    write(
        state,
        Change::Delete {
            ty: ty.to_string(),
            id: id.to_string(),
        },
    )
    .await
}

/// The name under which a request body's errors are reported.
const BODY: &str = "request body";

/// Reads a batch and validates it alone against the schema being served, so that its errors
/// name the batch's own entities (`the entity at index 2`, `User::"alice"`, its attribute).
async fn read_batch(state: &AppState, request: Request<Incoming>) -> Result<Vec<Json>, ApiError> {
    let body = read_body(request, state.config.api.max_body_bytes).await?;
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad("authz::api::not_utf8", "", "the body is not UTF-8"))?;
    let snapshot = state.snapshot.load_full();
    let source = SourceFile::new(BODY, text);
    let checked = {
        let source = source.clone();
        tokio::task::spawn_blocking(move || state::load_entities(&snapshot.program, &source))
            .await
            .map_err(|error| ApiError::Internal(error.to_string()))?
    };
    checked.map_err(|error| rejected("authz::api::entities_rejected", error))?;
    match serde_json::from_str(&source.text) {
        Ok(Json::Array(entities)) => Ok(entities),
        _ => Err(ApiError::Internal(
            "a batch that loads is not a JSON array".to_string(),
        )),
    }
}

/// A 400 carrying every diagnostic of a refused change; its message is the first one's.
fn rejected(
    code: &str,
    LoadError {
        message,
        diagnostics,
    }: LoadError,
) -> ApiError {
    let first = diagnostics
        .first()
        .and_then(|diagnostic| diagnostic.get("message"))
        .and_then(Json::as_str)
        .map(str::to_string);
    ApiError::BadRequest {
        code: code.to_string(),
        field: String::new(),
        message: first.unwrap_or_else(|| message.lines().next().unwrap_or("").trim().to_string()),
        details: diagnostics,
    }
}

/// Applies `change` to the entities being served, builds and checks the new snapshot, persists
/// its entities, and installs it.
async fn write(state: &Arc<AppState>, change: Change) -> Result<Response<Full<Bytes>>, ApiError> {
    let Some(path) = state.config.policies.entities.clone() else {
        return Err(ApiError::bad(
            "authz::api::no_entities_file",
            "",
            "entity writes are kept in the entities file, and none is configured (`policies.entities`)",
        ));
    };
    let _guard = state.reload_lock.lock().await;
    let current = state.snapshot.load_full();
    let mut entities = all(&current);
    let (result, count) = match change {
        Change::Upsert(batch) => {
            let count = batch.len();
            for entity in batch {
                let (ty, id) = (
                    entity.get("type").and_then(Json::as_str).unwrap_or(""),
                    entity.get("id").and_then(Json::as_str).unwrap_or(""),
                );
                match entities.iter_mut().find(|served| is(served, ty, id)) {
                    Some(served) => *served = entity,
                    None => entities.push(entity),
                }
            }
            ("upserted", count)
        }
        Change::Replace(batch) => {
            let count = batch.len();
            entities = batch;
            ("replaced", count)
        }
        Change::Delete { ty, id } => {
            let before = entities.len();
            entities.retain(|entity| !is(entity, &ty, &id));
            if entities.len() == before {
                return Err(missing(&ty, &id));
            }
            ("deleted", 1)
        }
    };
    let text = serde_json::to_string_pretty(&Json::Array(entities))
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    let files = current.files.clone();
    let name = path.display().to_string();
    let source = SourceFile::new(name, text);
    let built = {
        let source = source.clone();
        tokio::task::spawn_blocking(move || state::load_with_entities(files, Some(&source)))
            .await
            .map_err(|error| ApiError::Internal(error.to_string()))?
    };
    let mut snapshot = built.map_err(|error| rejected("authz::api::entities_rejected", error))?;
    state
        .check_install(&mut snapshot)
        .map_err(|error| rejected("authz::api::entities_rejected", error))?;
    persist(&path, &source.text).map_err(|error| {
        ApiError::Internal(format!("cannot persist `{}`: {error}", path.display()))
    })?;
    let served = snapshot.store.len();
    state.install(snapshot);
    let generation = state.snapshot.load().generation;
    tracing::info!(
        result,
        count,
        served,
        generation,
        "entities changed through the API"
    );
    Ok(json_response(
        StatusCode::OK,
        &json!({ "result": result, "count": count, "entities": served, "generation": generation }),
    ))
}
