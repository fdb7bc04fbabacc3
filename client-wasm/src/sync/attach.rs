//! Attaching a notebook to a server: [`join`] a share link, [`connect`] a notebook of this
//! device, [`rotate`] the owner token — never weakening a token already stored.

use super::*;

/// Checks a share link's parts before anything is stored: a workspace id that is a UUID and a
/// token that looks like a JWT.
pub fn check_link(ws: &str, token: &str) -> Result<(), SyncError> {
    if uuid::Uuid::parse_str(ws).is_err() {
        return Err(SyncError::BadLink(format!(
            "“{}” is not a notebook id",
            ws.chars().take(40).collect::<String>()
        )));
    }
    let jwt_like = !token.is_empty()
        && token.len() <= 4096
        && token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !jwt_like {
        return Err(SyncError::BadLink("its access token is damaged".into()));
    }
    Ok(())
}

/// Joins a workspace from a share link: the id, token and key (`&k=`, the link's secret) are
/// checked, the token is verified with the server and the notebook's keys opened with the secret
/// ([`keys::learn`]), and only then stored — as a new workspace, or on an existing one only when
/// the token is stronger than the one already there (keys are added either way). Returns the
/// record as stored.
pub async fn join<S: Store, T: Transport>(
    store: &S,
    transport: &T,
    server_url: &str,
    ws: &str,
    token: &str,
    key: Option<&str>,
) -> Result<WorkspaceRecord, SyncError> {
    check_link(ws, token)?;
    let secret = key
        .map(shared_schema::seal::Secret::from_text)
        .transpose()
        .map_err(|e| SyncError::BadLink(e.to_string()))?;
    let remote = Remote {
        server_url: server_url.trim_end_matches('/').to_owned(),
        ws: ws.to_owned(),
        token: token.to_owned(),
    };
    let info = transport.join(&remote).await?;
    if info.workspace_id != ws {
        return Err(SyncError::BadLink(
            "the server answered for another notebook".into(),
        ));
    }
    let ring = keys::learn(ws, &info, secret)?;
    let record = WorkspaceRecord {
        role: info.role,
        token: Some(remote.token.clone()),
        server_url: Some(remote.server_url.clone()),
        keys: ring.clone(),
        ..WorkspaceRecord::new_local(ws, "Shared notebook")
    };
    if store.create_workspace(&record).await? {
        return Ok(record);
    }
    let held_plain = store
        .get_workspace(ws)
        .await?
        .is_some_and(|r| r.keys.is_none());
    if let Some(ring) = ring.clone() {
        store.update_workspace(ws, &Change::Keys(ring)).await?;
    }
    let change = if held_plain && ring.is_some() {
        // Encryption was turned on since this device joined: its plain link was revoked.
        Change::Relink {
            server_url: remote.server_url,
            token: remote.token,
            role: info.role,
        }
    } else {
        Change::Remote {
            server_url: remote.server_url,
            token: remote.token,
            role: info.role,
        }
    };
    match store.update_workspace(ws, &change).await? {
        Updated::Changed(r) | Updated::Unchanged(r) => Ok(r),
        Updated::Missing => Err(SyncError::stop(
            StopReason::Forgotten,
            "the notebook was removed while joining",
        )),
    }
}

/// Registers a local workspace on a server under its own id and stores the master token.
pub async fn connect<S: Store, T: Transport>(
    store: &S,
    transport: &T,
    server_url: &str,
    ws: &str,
) -> Result<WorkspaceRecord, SyncError> {
    let server_url = server_url.trim_end_matches('/');
    // The secret is stored before the server is asked, so a retry after a lost reply (even after
    // a reload) repeats the same create and gets the same master token.
    let fresh = format!(
        "{:016x}{:016x}",
        crate::ids::random_u64(),
        crate::ids::random_u64()
    );
    let record = match store
        .update_workspace(ws, &Change::CreationSecret(fresh))
        .await?
    {
        Updated::Changed(r) | Updated::Unchanged(r) => r,
        Updated::Missing => {
            return Err(SyncError::stop(
                StopReason::Forgotten,
                "the notebook was removed while connecting",
            ))
        }
    };
    let secret = record.creation_secret.unwrap_or_default();
    let created = transport.create(server_url, ws, &secret).await?;
    let change = Change::Remote {
        server_url: server_url.to_owned(),
        token: created.master_token,
        role: Role::Master,
    };
    match store.update_workspace(ws, &change).await? {
        Updated::Changed(r) | Updated::Unchanged(r) => Ok(r),
        Updated::Missing => Err(SyncError::stop(
            StopReason::Forgotten,
            "the notebook was removed while connecting",
        )),
    }
}

/// Rotates the master token; the new one replaces exactly the one the rotation was made with.
/// The rotation's id is stored before the server is asked, so a lost reply or a failed write is
/// finished later (by the next [`SyncCore::sync_once`]) with the same id and the same new token:
/// the only master token is never lost.
pub async fn rotate<S: Store, T: Transport>(
    store: &S,
    transport: &T,
    ws: &str,
) -> Result<(), SyncError> {
    let fresh = format!("{:016x}", crate::ids::random_u64());
    let record = match store
        .update_workspace(ws, &Change::BeginRotation(fresh))
        .await?
    {
        Updated::Changed(r) | Updated::Unchanged(r) => r,
        Updated::Missing => {
            return Err(SyncError::stop(
                StopReason::Forgotten,
                "this notebook was removed from this browser",
            ))
        }
    };
    let (Some(rotation_id), Some(old), Some(server_url)) =
        (record.rotating, record.token, record.server_url)
    else {
        return Err(SyncError::LocalOnly);
    };
    let remote = Remote {
        server_url,
        ws: ws.to_owned(),
        token: old.clone(),
    };
    let minted = transport.rotate(&remote, &rotation_id).await?;
    let change = Change::Token {
        old,
        new: minted.token,
    };
    match store.update_workspace(ws, &change).await? {
        Updated::Changed(_) => Ok(()),
        Updated::Unchanged(_) | Updated::Missing => Err(SyncError::stop(
            StopReason::InvalidToken,
            "the owner token was replaced on this device while rotating: rotate again",
        )),
    }
}
