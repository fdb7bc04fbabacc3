//! Error codes of the HTTP API (design §3) and the JSON error body every non-2xx reply carries:
//! `{ "error": { "code": "snake_case", "message": "…" } }`.

use serde::{Deserialize, Serialize};

/// A machine-readable error code. Each maps to exactly one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request body or a parameter is malformed (400).
    BadRequest,
    /// A push batch frame is truncated or malformed (400).
    MalformedFrame,
    /// No `Authorization: Bearer` token was sent (401).
    MissingToken,
    /// The token is not a valid Hearth token: bad signature, algorithm or claims (401).
    InvalidToken,
    /// The token has expired (401).
    TokenExpired,
    /// The token was revoked by the workspace owner (401).
    TokenRevoked,
    /// The token's role may not do this (403).
    Forbidden,
    /// The token belongs to another workspace (403).
    WrongWorkspace,
    /// The workspace (or token) does not exist or was deleted (404).
    NotFound,
    /// The request conflicts with the stored state, e.g. a snapshot that covers unknown seqs (409).
    Conflict,
    /// The request body did not arrive within the server's deadline (408); retry.
    RequestTimeout,
    /// The body is larger than the configured limit (413).
    PayloadTooLarge,
    /// The workspace or the server is over its storage quota (507); the message gives the numbers.
    QuotaExceeded,
    /// Too many requests for this token; retry after the `Retry-After` seconds (429).
    RateLimited,
    /// The storage backend is unavailable; retry later (503).
    StorageUnavailable,
    /// An unexpected server error; details are in the server log, never in the reply (500).
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 16] = [
        Self::BadRequest,
        Self::MalformedFrame,
        Self::MissingToken,
        Self::InvalidToken,
        Self::TokenExpired,
        Self::TokenRevoked,
        Self::Forbidden,
        Self::WrongWorkspace,
        Self::NotFound,
        Self::Conflict,
        Self::RequestTimeout,
        Self::PayloadTooLarge,
        Self::QuotaExceeded,
        Self::RateLimited,
        Self::StorageUnavailable,
        Self::Internal,
    ];

    /// The HTTP status code this error is sent with.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest | Self::MalformedFrame => 400,
            Self::MissingToken | Self::InvalidToken | Self::TokenExpired | Self::TokenRevoked => {
                401
            }
            Self::Forbidden | Self::WrongWorkspace => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::RequestTimeout => 408,
            Self::PayloadTooLarge => 413,
            Self::QuotaExceeded => 507,
            Self::RateLimited => 429,
            Self::StorageUnavailable => 503,
            Self::Internal => 500,
        }
    }

    /// The snake_case wire name, as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::MalformedFrame => "malformed_frame",
            Self::MissingToken => "missing_token",
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::TokenRevoked => "token_revoked",
            Self::Forbidden => "forbidden",
            Self::WrongWorkspace => "wrong_workspace",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::RequestTimeout => "request_timeout",
            Self::PayloadTooLarge => "payload_too_large",
            Self::QuotaExceeded => "quota_exceeded",
            Self::RateLimited => "rate_limited",
            Self::StorageUnavailable => "storage_unavailable",
            Self::Internal => "internal",
        }
    }

    /// True when the client should stop syncing and tell the user (token or workspace gone),
    /// rather than retry with backoff.
    pub fn needs_user_action(self) -> bool {
        matches!(
            self,
            Self::InvalidToken
                | Self::TokenExpired
                | Self::TokenRevoked
                | Self::Forbidden
                | Self::WrongWorkspace
                | Self::NotFound
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The inner object of an error reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable message that says what to do.
    pub message: String,
}

/// The JSON body of every error reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

impl ErrorBody {
    /// Builds an error body.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes and statuses the README documents, parsed from its "Errors are …" paragraph:
    /// each run of backticked names is followed by its status in parentheses.
    fn documented_codes() -> Vec<(String, u16)> {
        let readme = include_str!("../../README.md");
        let start = readme.find("Errors are `").unwrap_or(0);
        let end = readme[start..]
            .find("— also")
            .map_or(readme.len(), |e| start + e);
        let text = &readme[start..end];
        let mut out = Vec::new();
        let mut pending: Vec<String> = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let tick = rest.find('`');
            let paren = rest.find('(');
            match (tick, paren) {
                (Some(t), p) if p.is_none_or(|p| t < p) => {
                    let Some(close) = rest[t + 1..].find('`') else {
                        break;
                    };
                    let name = &rest[t + 1..t + 1 + close];
                    if name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                        pending.push(name.to_owned());
                    }
                    rest = &rest[t + 2 + close..];
                }
                (_, Some(p)) => {
                    let digits: String = rest[p + 1..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    if let Ok(status) = digits.parse::<u16>() {
                        out.extend(pending.drain(..).map(|n| (n, status)));
                    }
                    rest = &rest[p + 1..];
                }
                _ => break,
            }
        }
        out
    }

    #[test]
    fn every_code_has_the_wire_name_and_status_the_readme_documents(
    ) -> Result<(), serde_json::Error> {
        let documented = documented_codes();
        assert_eq!(
            documented.len(),
            ErrorCode::ALL.len(),
            "the README documents {documented:?}; the enum has {} codes",
            ErrorCode::ALL.len()
        );
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code)?;
            let name = json.trim_matches('"');
            let Some((_, status)) = documented.iter().find(|(n, _)| n == name) else {
                panic!("{code:?} goes on the wire as {name:?}, which the README does not document");
            };
            assert_eq!(code.http_status(), *status, "{name}: README says {status}");
            assert_eq!(code.as_str(), name);
            let back: ErrorCode = serde_json::from_str(&json)?;
            assert_eq!(back, code);
        }
        Ok(())
    }

    #[test]
    fn error_body_has_the_documented_shape() -> Result<(), serde_json::Error> {
        let body = ErrorBody::new(ErrorCode::TokenRevoked, "ask the owner for a new link");
        let value = serde_json::to_value(&body)?;
        assert_eq!(value["error"]["code"], "token_revoked");
        assert_eq!(value["error"]["message"], "ask the owner for a new link");
        assert_eq!(ErrorCode::TokenRevoked.http_status(), 401);
        Ok(())
    }
}
