//! Tokens: minting and verifying JWTs (HS256 pinned; `iss`, `aud`, `ws`, `role`, `exp` checked),
//! and the per-request revocation check with a short cache. Rate limits are in [`crate::limits`].

use crate::error::ApiError;
use crate::store::{Storage, TokenRow, TokenState};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use shared_schema::claims::{AUDIENCE, ISSUER};
use shared_schema::{Claims, ErrorCode, Role};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a revocation lookup is cached. A revoke on this process clears its entry at once;
/// other processes see it within this time.
pub const REVOCATION_CACHE: Duration = Duration::from_secs(5);

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Signs and verifies tokens, and remembers revocations briefly.
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    cache: Mutex<HashMap<String, (TokenState, Instant)>>,
}

/// The longest a token may be minted for (ten years).
pub const MAX_EXPIRES_IN: u64 = 10 * 365 * 24 * 3600;

/// The shortest accepted JWT secret.
pub const MIN_SECRET_BYTES: usize = 32;

impl Auth {
    /// New with an HS256 secret.
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["sub", "iss", "aud"]);
        validation.leeway = 0;
        validation.validate_exp = true;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Mints a token row and its JWT.
    pub fn mint(
        &self,
        ws: &str,
        role: Role,
        expires_in: Option<u64>,
        label: &str,
    ) -> Result<(TokenRow, String), ApiError> {
        if expires_in.is_some_and(|s| s == 0 || s > MAX_EXPIRES_IN) {
            return Err(ApiError::bad_request(format!(
                "expires_in must be 1–{MAX_EXPIRES_IN} seconds (or absent for no expiry)"
            )));
        }
        let now = now_secs();
        let exp = expires_in.map(|s| now.saturating_add(i64::try_from(s).unwrap_or(0)));
        let row = TokenRow {
            id: uuid::Uuid::new_v4().simple().to_string(),
            workspace_id: ws.to_owned(),
            role,
            label: label.to_owned(),
            created_at: now,
            expires_at: exp,
            revoked_at: None,
        };
        let jwt = self.sign(&row)?;
        Ok((row, jwt))
    }

    /// The JWT of a token row (deterministic: signing the same row again gives the same token).
    pub fn sign(&self, row: &TokenRow) -> Result<String, ApiError> {
        let claims = Claims {
            sub: row.id.clone(),
            ws: row.workspace_id.clone(),
            role: row.role,
            iat: u64::try_from(row.created_at).unwrap_or(0),
            exp: row.expires_at.and_then(|e| u64::try_from(e).ok()),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| {
            tracing::error!(error = %e, "cannot sign a token");
            ApiError::new(ErrorCode::Internal, "cannot sign a token")
        })
    }

    /// Checks a bearer token's signature, algorithm, claims, expiry and workspace — not whether it
    /// was revoked (see [`Self::verify`]).
    pub fn decode(&self, header: Option<&str>, ws: &str) -> Result<Claims, ApiError> {
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::MissingToken,
                    "send the workspace token as 'Authorization: Bearer TOKEN'",
                )
            })?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => ApiError::new(
                    ErrorCode::TokenExpired,
                    "this link has expired; ask the owner for a new one",
                ),
                _ => ApiError::new(
                    ErrorCode::InvalidToken,
                    "the token is not valid for this server",
                ),
            })?;
        let claims = data.claims;
        if claims.ws != ws {
            return Err(ApiError::new(
                ErrorCode::WrongWorkspace,
                "this token belongs to another workspace",
            ));
        }
        Ok(claims)
    }

    /// Verifies a bearer token for workspace `ws`: signature, algorithm, claims, expiry,
    /// workspace, then revocation (cached briefly).
    pub async fn verify(
        &self,
        header: Option<&str>,
        ws: &str,
        store: &dyn Storage,
    ) -> Result<Claims, ApiError> {
        let claims = self.decode(header, ws)?;
        match self.token_state(&claims.sub, store).await? {
            TokenState::Active => {}
            TokenState::Revoked => {
                return Err(ApiError::new(
                    ErrorCode::TokenRevoked,
                    "this token was revoked by the owner; your local copy stays readable",
                ))
            }
            TokenState::WorkspaceDeleted => {
                return Err(ApiError::new(
                    ErrorCode::NotFound,
                    "this workspace was deleted by its owner; local copies are kept",
                ))
            }
            TokenState::Unknown => {
                return Err(ApiError::new(
                    ErrorCode::InvalidToken,
                    "the token is not valid for this server",
                ))
            }
        }
        Ok(claims)
    }

    async fn token_state(&self, id: &str, store: &dyn Storage) -> Result<TokenState, ApiError> {
        if let Ok(cache) = self.cache.lock() {
            if let Some((state, at)) = cache.get(id) {
                if at.elapsed() < REVOCATION_CACHE {
                    return Ok(*state);
                }
            }
        }
        let state = store.token_state(id).await?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 100_000 {
                cache.clear();
            }
            cache.insert(id.to_owned(), (state, Instant::now()));
        }
        Ok(state)
    }

    /// Forgets cached states (after a revoke, rotate or delete on this process).
    pub fn invalidate(&self, ids: &[String]) {
        if let Ok(mut cache) = self.cache.lock() {
            if ids.is_empty() {
                cache.clear();
            }
            for id in ids {
                cache.remove(id);
            }
        }
    }
}

/// Requires the master role.
pub fn require_master(claims: &Claims) -> Result<(), ApiError> {
    if claims.role.is_master() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only the workspace owner (master token) may do this",
        ))
    }
}

/// Requires write access.
pub fn require_write(claims: &Claims) -> Result<(), ApiError> {
    if claims.role.can_write() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this token is read-only; ask the owner for a write link",
        ))
    }
}

/// Loads the JWT secret: configured, or generated once into `data_dir/jwt-secret` (mode 0600).
pub fn load_secret(
    configured: Option<&str>,
    data_dir: &std::path::Path,
) -> std::io::Result<Vec<u8>> {
    if let Some(s) = configured {
        if s.len() < MIN_SECRET_BYTES {
            return Err(std::io::Error::other(format!(
                "the JWT secret is {} bytes; use at least {MIN_SECRET_BYTES} random bytes \
                 (e.g. `openssl rand -hex 32`), or leave it unset to generate one",
                s.len()
            )));
        }
        return Ok(s.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt-secret");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() >= MIN_SECRET_BYTES => return Ok(bytes),
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} is shorter than 32 bytes: delete it to generate a new one (all tokens change)",
                path.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(data_dir)?;
    let mut secret = [0u8; 48];
    rand::Rng::fill(&mut rand::thread_rng(), &mut secret[..]);
    let encoded = hex::encode(secret);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&path)?;
    std::io::Write::write_all(&mut f, encoded.as_bytes())?;
    Ok(encoded.into_bytes())
}
