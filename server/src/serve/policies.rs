//! The policy API: rules that change through HTTP as well as through files.
//!
//! `GET /v1/policies` lists the files being served with their policy ids; `GET /v1/policies/{name}`
//! returns one file's text. `PUT` and `DELETE /v1/policies/{name}` compile the changed set as a
//! whole and install it atomically, or answer 400 with the compiler's diagnostics and change
//! nothing. An accepted write is persisted to the policy directory (through a temporary file and
//! a rename), so a restart keeps it, and logged. Writes need `Authorization: Bearer <admin token>`;
//! with no token configured they are off.

use std::sync::Arc;

use authz_lang::SourceFile;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use super::api_error::{json_response, ApiError};
use super::http::read_body;
use crate::host::state::{self, AppState, LoadError};

/// `GET /v1/policies`
pub fn list(state: &AppState) -> Response<Full<Bytes>> {
    let snapshot = state.snapshot.load();
    let files: Vec<_> = snapshot
        .files
        .iter()
        .map(|file| {
            let ids: Vec<&str> = snapshot
                .program
                .policies
                .iter()
                .filter(|policy| policy_in_file(&policy.id, file, &snapshot.program))
                .map(|policy| policy.id.as_str())
                .collect();
            json!({ "name": file.name, "policies": ids })
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({ "generation": snapshot.generation, "files": files }),
    )
}

/// Whether the policy with this id was written in `file`: its id is `file:line`, or the file's
/// text has its `@id`.
fn policy_in_file(id: &str, file: &SourceFile, _program: &authz_runtime::program::Program) -> bool {
    if let Some((name, line)) = id.rsplit_once(':') {
        if name == file.name && line.chars().all(|c| c.is_ascii_digit()) {
            return true;
        }
    }
    file.text.contains(&format!("@id({id:?})"))
}

/// `GET /v1/policies/{name}`
pub fn get(state: &AppState, name: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let snapshot = state.snapshot.load();
    let file = snapshot
        .files
        .iter()
        .find(|file| file.name == name)
        .ok_or(ApiError::NotFound)?;
    let mut response = Response::new(Full::new(Bytes::from(file.text.clone())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

/// `PUT /v1/policies/{name}`: adds or replaces a file.
pub async fn put(
    state: &Arc<AppState>,
    request: Request<Incoming>,
    name: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    authorize(state, &request)?;
    validate_name(name)?;
    let body = read_body(request, state.config.api.max_body_bytes).await?;
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad("authz::api::not_utf8", "", "the policy text is not UTF-8"))?;
    write(state, name, Some(text)).await
}

/// `DELETE /v1/policies/{name}`: removes a file.
pub async fn delete(
    state: &Arc<AppState>,
    request: Request<Incoming>,
    name: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    authorize(state, &request)?;
    validate_name(name)?;
    if !state
        .snapshot
        .load()
        .files
        .iter()
        .any(|file| file.name == name)
    {
        return Err(ApiError::NotFound);
    }
    write(state, name, None).await
}

/// Compiles the set with `name` replaced by `text` (or removed), then persists and installs it.
async fn write(
    state: &Arc<AppState>,
    name: &str,
    text: Option<String>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let Some(dir) = state.policy_dir().map(std::path::Path::to_path_buf) else {
        return Err(ApiError::bad(
            "authz::api::no_policy_directory",
            "",
            "policy writes go to the policy directory, and there is none (the set comes from a bundle)",
        ));
    };
    let _guard = state.reload_lock.lock().await;
    let current = state.snapshot.load_full();
    let mut files: Vec<SourceFile> = current
        .files
        .iter()
        .filter(|file| file.name != name)
        .cloned()
        .collect();
    if let Some(text) = &text {
        files.push(SourceFile::new(name, text.clone()));
        files.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let entities = state.config.policies.entities.clone();
    let compiled =
        tokio::task::spawn_blocking(move || state::load_sources(files, entities.as_deref()))
            .await
            .map_err(|error| ApiError::Internal(error.to_string()))?;
    let rejected = |LoadError {
                        message,
                        diagnostics,
                    }| ApiError::BadRequest {
        code: "authz::api::policy_rejected".to_string(),
        field: "".to_string(),
        message: first_line(&message),
        details: diagnostics,
    };
    let mut snapshot = compiled.map_err(rejected)?;
    state.check_install(&mut snapshot).map_err(rejected)?;
    let path = dir.join(name);
    let persisted = match &text {
        Some(text) => persist(&path, text),
        None => std::fs::remove_file(&path),
    };
    persisted.map_err(|error| {
        ApiError::Internal(format!("cannot persist `{}`: {error}", path.display()))
    })?;
    let policies = snapshot.program.policies.len();
    state.install(snapshot);
    let action = if text.is_some() { "written" } else { "deleted" };
    tracing::info!(
        file = name,
        action,
        policies,
        "policy file changed through the API"
    );
    let generation = state.snapshot.load().generation;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "name": name, "result": action, "policies": policies, "generation": generation }),
    ))
}

fn first_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with('×'))
        .map_or_else(
            || {
                message
                    .lines()
                    .next()
                    .unwrap_or("the policy set does not compile")
                    .trim()
                    .to_string()
            },
            |line| line.trim_start_matches('×').trim().to_string(),
        )
}

/// Writes `text` to `path` through a temporary file and a rename, so a reader never sees half.
pub(crate) fn persist(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".authz-api.tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

/// Policy reads take the admin token when one is configured (policy text is sensitive); without
/// one they are open, as writes are then off.
pub fn authorize_read(state: &AppState, request: &Request<Incoming>) -> Result<(), ApiError> {
    if state.config.api.admin_token.is_none() {
        return Ok(());
    }
    authorize(state, request)
}

/// Checks the bearer token in constant time.
pub(crate) fn authorize(state: &AppState, request: &Request<Incoming>) -> Result<(), ApiError> {
    let Some(expected) = state.config.api.admin_token.as_deref() else {
        return Err(ApiError::WritesDisabled);
    };
    let given = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    let equal = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0;
    if equal {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// A policy file name: relative, `/`-separated, ending in `.authz`, without `..` or hidden parts.
fn validate_name(name: &str) -> Result<(), ApiError> {
    let valid = name.ends_with(".authz")
        && name.len() <= 200
        && name.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad(
            "authz::api::bad_name",
            "name",
            "a policy file name is a relative path of letters, digits, `-`, `_` and `.`, ending in `.authz`",
        ))
    }
}
