//! Errors: [`ServeError`] for starting the server, [`ApiError`] for one API request (a 4xx or 5xx
//! status with a JSON body `{"error": {"code": "...", "message": "..."}}`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The models directory cannot be read.
    #[error("cannot read the models directory {dir}: {source}")]
    ModelsDir {
        /// The directory.
        dir: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No model can be served.
    #[error("no servable model: {0}")]
    NoModels(String),
    /// Two models with one name.
    #[error("two models are called '{0}'")]
    DuplicateModel(String),
    /// An artifact that loads but cannot be served.
    #[error("model '{name}': {reason}")]
    BadModel {
        /// Model name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Binding or serving failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    /// Training the demo model failed.
    #[error(transparent)]
    Demo(#[from] crate::demo_model::DemoModelError),
}

/// A request the API refuses or could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not valid JSON for the endpoint.
    #[error("{0}")]
    MalformedJson(String),
    /// The body exceeds the size limit.
    #[error("request body of {size} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// Size of the body, or of the part read before stopping.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A field has an invalid value.
    #[error("{field}: {message}")]
    InvalidField {
        /// The field (JSON path, e.g. `grid.n` or `y[3]`).
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// `x` and `y` differ in length.
    #[error("x has {x} values but y has {y}; give one y per x")]
    LengthMismatch {
        /// Length of x.
        x: usize,
        /// Length of y.
        y: usize,
    },
    /// More points than allowed.
    #[error("{field}: {given} points given, the limit is {limit}{why}")]
    TooManyPoints {
        /// Which list.
        field: &'static str,
        /// How many were given.
        given: usize,
        /// The limit.
        limit: usize,
        /// Where the limit comes from.
        why: String,
    },
    /// No model of that name.
    #[error("unknown model '{name}'; available: {available}")]
    UnknownModel {
        /// Requested name.
        name: String,
        /// Comma-separated names.
        available: String,
    },
    /// The model exists but cannot be used for predictions here.
    #[error("model '{name}' cannot be used here: {reason}")]
    UnsupportedModel {
        /// Model name.
        name: String,
        /// Why.
        reason: String,
    },
    /// No such endpoint.
    #[error("no endpoint {method} {path}; see GET /api/models and POST /api/predict")]
    NotFound {
        /// HTTP method.
        method: String,
        /// Path.
        path: String,
    },
    /// Every compute slot is taken and the queue is full (or the wait was too long).
    #[error("the server is busy: every compute slot is taken and the queue is full; retry in {retry_after_secs} s")]
    Busy {
        /// The suggested wait (also sent as `Retry-After`).
        retry_after_secs: u32,
    },
    /// The request body did not arrive in time.
    #[error("the request body did not arrive within {seconds} s")]
    RequestTimeout {
        /// The limit.
        seconds: f64,
    },
    /// The computation failed.
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidField { .. }
            | Self::LengthMismatch { .. }
            | Self::TooManyPoints { .. }
            | Self::UnsupportedModel { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnknownModel { .. } | Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::InvalidField { .. } => "invalid_field",
            Self::LengthMismatch { .. } => "length_mismatch",
            Self::TooManyPoints { .. } => "too_many_points",
            Self::UnknownModel { .. } => "unknown_model",
            Self::UnsupportedModel { .. } => "unsupported_model",
            Self::NotFound { .. } => "not_found",
            Self::Busy { .. } => "busy",
            Self::RequestTimeout { .. } => "request_timeout",
            Self::Internal(_) => "internal",
        }
    }

    /// Shorthand for [`ApiError::InvalidField`].
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let field = match &self {
            Self::InvalidField { field, .. } => Some(field.as_str()),
            Self::TooManyPoints { field, .. } => Some(*field),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                field,
            },
        };
        let json = serde_json::to_string(&body).unwrap_or_else(|_| {
            "{\"error\":{\"code\":\"internal\",\"message\":\"error serialisation failed\"}}".into()
        });
        let mut response = (
            self.status(),
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response();
        if let Self::Busy { retry_after_secs } = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_secs),
            );
        }
        if let Self::RequestTimeout { .. } = self {
            // The rest of the body may still be on its way: do not reuse the connection.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}
