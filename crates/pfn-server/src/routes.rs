//! The HTTP routes: the page and its assets, `GET /api/models` and `POST /api/predict`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

use crate::admission::{Admission, ServerLimits};
use crate::api::{parse_request, validate, Limits, ModelsResponse, MAX_BODY_BYTES};
use crate::catalog::ModelCatalog;
use crate::error::ApiError;
use crate::page;
use crate::predict::predict;

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The models.
    pub catalog: Arc<ModelCatalog>,
    /// Compute slots, queue and timeouts.
    pub admission: Arc<Admission>,
}

/// [`router_with_limits`] with the default [`ServerLimits`].
pub fn router(catalog: Arc<ModelCatalog>) -> Router {
    router_with_limits(catalog, ServerLimits::default())
}

/// The router of the server: `/`, `/app.js`, `/style.css`, `/api/models`, `/api/predict`;
/// anything else is a JSON 404. Predictions are admitted as `limits` says (see
/// [`crate::admission`]).
pub fn router_with_limits(catalog: Arc<ModelCatalog>, limits: ServerLimits) -> Router {
    let admission = Arc::new(Admission::new(limits));
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/style.css", get(style_css))
        .route("/api/models", get(models).fallback(method_not_allowed))
        .route(
            "/api/predict",
            post(predict_handler).fallback(method_not_allowed),
        )
        .fallback(not_found)
        .with_state(AppState { catalog, admission })
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", page::INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", page::APP_JS)
}

async fn style_css() -> Response {
    asset("text/css; charset=utf-8", page::STYLE_CSS)
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(s) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            s,
        )
            .into_response(),
        Err(e) => ApiError::Internal(format!("cannot serialise the answer: {e}")).into_response(),
    }
}

async fn models(State(state): State<AppState>) -> Response {
    let body = ModelsResponse {
        models: state
            .catalog
            .entries()
            .iter()
            .map(|e| e.info.clone())
            .collect(),
        skipped: state.catalog.skipped().to_vec(),
        limits: Limits::default(),
    };
    json(&body)
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > MAX_BODY_BYTES {
            return Err(ApiError::BodyTooLarge {
                size: len,
                limit: MAX_BODY_BYTES,
            });
        }
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::BodyTooLarge {
            size: MAX_BODY_BYTES + 1,
            limit: MAX_BODY_BYTES,
        })
}

async fn predict_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match predict_inner(state, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn predict_inner(
    state: AppState,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let timeout = state.admission.limits().body_timeout;
    let bytes = tokio::time::timeout(timeout, read_body(&headers, body))
        .await
        .map_err(|_| ApiError::RequestTimeout {
            seconds: timeout.as_secs_f64(),
        })??;
    let request = parse_request(&bytes)?;
    let catalog = Arc::clone(&state.catalog);
    let entry = catalog
        .get(&request.model)
        .ok_or_else(|| ApiError::UnknownModel {
            name: request.model.clone(),
            available: catalog
                .entries()
                .iter()
                .map(|e| e.info.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?
        .clone();
    if !entry.info.supported {
        return Err(ApiError::UnsupportedModel {
            name: entry.info.name.clone(),
            reason: entry.info.unsupported_reason.clone().unwrap_or_default(),
        });
    }
    let valid = validate(request, &entry.info)?;
    let permit = state.admission.admit().await?;
    let answer = tokio::task::spawn_blocking(move || {
        let answer = predict(&entry, &valid);
        drop(permit);
        answer
    })
    .await
    .map_err(|e| ApiError::Internal(format!("prediction task failed: {e}")))??;
    Ok(json(&answer))
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let allowed = if uri.path() == "/api/predict" {
        "POST"
    } else {
        "GET"
    };
    let body = serde_json::json!({
        "error": {
            "code": "method_not_allowed",
            "message": format!("{method} is not allowed on {}; use {allowed}", uri.path()),
        }
    });
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::ALLOW, allowed),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn not_found(method: Method, uri: Uri) -> Response {
    ApiError::NotFound {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
    .into_response()
}
