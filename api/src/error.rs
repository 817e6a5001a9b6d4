//! The API's error type: every failure becomes a JSON body `{"error": …}` with the right status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A query or path parameter is malformed or out of range (400).
    #[error("{message}")]
    BadParam { parameter: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// Table endpoints without `--database-url` (503).
    #[error("no database configured: start the engine with --database-url to read tables")]
    NoDatabase,
    /// The store did not reach the requested source position in time (504).
    #[error("{message}")]
    Timeout { message: String, as_of: Value },
    #[error("database error: {0}")]
    Database(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad(parameter: &str, message: impl Into<String>) -> Self {
        ApiError::BadParam {
            parameter: parameter.to_string(),
            message: message.into(),
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ApiError::Database(e.to_string())
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The server's message (e.g. "relation does not exist") is more useful than Display's.
        match e.as_db_error() {
            Some(db) => ApiError::Database(db.message().to_string()),
            None => ApiError::Database(e.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadParam { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NoDatabase => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Database(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            ApiError::BadParam { parameter, message } => {
                json!({"error": message, "parameter": parameter})
            }
            ApiError::Timeout { message, as_of } => json!({"error": message, "as_of": as_of}),
            other => json!({"error": other.to_string()}),
        };
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized) {
            resp.insert_header(("WWW-Authenticate", "Bearer realm=\"shopstream\""));
        }
        if matches!(self, ApiError::Database(_)) {
            tracing::warn!(error = %self, "table read failed");
        }
        resp.json(body)
    }
}
