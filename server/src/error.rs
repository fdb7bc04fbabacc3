//! [`ApiError`]: every error a request can meet, mapped to HTTP in one place. Internal details
//! are logged, never sent.

use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use shared_schema::{ErrorBody, ErrorCode};
use thiserror::Error;

/// An error reply.
#[derive(Debug, Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The code (decides the status).
    pub code: ErrorCode,
    /// A message that says what to do.
    pub message: String,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        self.status_code().as_u16()
    }

    /// The JSON body sent for this error (`{"error":{"code","message"}}`).
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&ErrorBody::new(self.code, self.message.clone())).unwrap_or_default()
    }

    /// 400 bad_request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// 403 forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// 413 payload_too_large.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than the limit of {limit} bytes: send smaller batches"),
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::new(ErrorCode::NotFound, "no such workspace"),
            StoreError::Deleted => Self::new(
                ErrorCode::NotFound,
                "this workspace was deleted by its owner; local copies are kept",
            ),
            StoreError::Conflict(m) => Self::new(ErrorCode::Conflict, m),
            StoreError::Revoked => Self::new(
                ErrorCode::TokenRevoked,
                "this token was revoked (by a rotation that finished first); use the newest token",
            ),
            StoreError::Quota {
                scope,
                used,
                adding,
                limit,
            } => Self::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "the {scope} storage quota is {limit} bytes; {used} are used and this needs \
                     {adding} more: compact or delete data, or ask the operator for more space"
                ),
            ),
            StoreError::BadSeq(m) => Self::bad_request(m),
            StoreError::BatchFailed(e) => {
                tracing::warn!(error = %e, "push failed with its batch");
                Self::new(
                    ErrorCode::StorageUnavailable,
                    "storage is unavailable; retry later with the same keys (never stored twice)",
                )
            }
            StoreError::Database(e) => {
                tracing::error!(error = %e, "database error");
                Self::new(
                    ErrorCode::StorageUnavailable,
                    "storage is unavailable; retry later",
                )
            }
            other => {
                tracing::error!(error = %other, "storage error");
                Self::new(ErrorCode::Internal, "internal error; see the server log")
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after {
            res.insert_header(("Retry-After", secs.to_string()));
        }
        res.content_type("application/json").body(self.body())
    }
}
