//! Pushing: pending updates in batches, each acknowledged only once the server stored it, never
//! an encrypted notebook's update in the clear; and the owner's compaction snapshot.

use super::*;

impl<S: Store, T: Transport> SyncCore<S, T> {
    /// Pushes pending updates in batches; each is acknowledged only after the server stored it.
    /// A batch the server finds too large is halved; a single update it refuses stops sync.
    pub async fn push(&self, ws: &str, progress: &dyn Fn(u64, u64)) -> Result<usize, SyncError> {
        let mut read = self.store.pending_to_push(ws).await?;
        let (record, remote) = remote_from(ws, read.record.take())?;
        self.push_from(ws, &record, &remote, read.pending, progress, true)
            .await
    }

    /// Pushes `pending` (in key order), then — with `refill` — whatever is pending in storage
    /// after each acknowledged batch, storing each acknowledgement before the next batch;
    /// without it, only `pending`, and the acknowledgements are left for [`Self::settle`] (the
    /// staged edits of [`Self::push_round`]).
    pub(super) async fn push_from(
        &self,
        ws: &str,
        record: &WorkspaceRecord,
        remote: &Remote,
        mut pending: Vec<PendingUpdate>,
        progress: &dyn Fn(u64, u64),
        refill: bool,
    ) -> Result<usize, SyncError> {
        if !record.role.can_write() {
            return Ok(0);
        }
        let mut limit = MAX_BATCH;
        let mut pushed = 0;
        loop {
            never_in_the_clear(record, &mut pending);
            if pending.is_empty() {
                return Ok(pushed);
            }
            let bytes_left: usize = pending.iter().map(|p| p.bytes.len()).sum();
            progress(pending.len() as u64, bytes_left as u64);
            let sizes: Vec<(usize, usize)> = pending
                .iter()
                .map(|p| (p.key.len(), p.bytes.len()))
                .collect();
            let n = batch_len(&sizes, limit);
            let batch = &pending[..n];
            let records: Vec<PushRecord> = batch
                .iter()
                .map(|p| PushRecord {
                    key: p.key.as_bytes().to_vec(),
                    bytes: p.bytes.clone(),
                })
                .collect();
            let body = frame::encode_push_batch(&records).map_err(|e| {
                SyncError::stop(StopReason::TooLarge, format!("an edit cannot be sent: {e}"))
            })?;
            {
                // Before the request: the live channel may bring them back before the reply.
                let mut pushed = self.pushed.borrow_mut();
                for r in &records {
                    if pushed.len() == ECHOES {
                        pushed.pop_front();
                    }
                    pushed.push_back(digest(&r.bytes));
                }
            }
            let size = body.len();
            match self.transport.push(remote, body).await {
                Ok(reply) => {
                    if reply.seqs.len() != n {
                        return Err(TransportError::Network(format!(
                            "the server acknowledged {} of {n} updates",
                            reply.seqs.len()
                        ))
                        .into());
                    }
                    let acks: Vec<(String, u64)> = batch
                        .iter()
                        .map(|p| p.key.clone())
                        .zip(reply.seqs)
                        .collect();
                    // On the server whatever happens to storage now: later staged edits may go.
                    self.staging
                        .borrow_mut()
                        .acked(ws, acks.iter().map(|(k, _)| k.as_str()));
                    pushed += n;
                    if !refill {
                        self.unstored
                            .borrow_mut()
                            .entry(ws.to_owned())
                            .or_default()
                            .extend(acks);
                        pending.drain(..n);
                        continue;
                    }
                    self.store.acknowledge(ws, &acks).await?;
                }
                Err(TransportError::Api {
                    code: ErrorCode::PayloadTooLarge,
                    message,
                    ..
                }) => {
                    if n == 1 {
                        return Err(SyncError::stop(
                            StopReason::TooLarge,
                            format!(
                                "an edit of {size} bytes is over the server's limit: {message}"
                            ),
                        ));
                    }
                    limit = size / 2;
                }
                Err(e) => return Err(e.into()),
            }
            if refill {
                pending = self.store.pending_to_push(ws).await?.pending;
            }
        }
    }

    /// Uploads the compaction snapshot the engine left in the outbox (master devices only).
    pub async fn upload_snapshot(&self, ws: &str) -> Result<bool, SyncError> {
        let Some((covers, bytes)) = self.store.outbox(ws).await? else {
            return Ok(false);
        };
        let (record, remote) = remote_of(&self.store, ws).await?;
        if record.role != Role::Master {
            self.store.clear_outbox(ws, covers).await?;
            return Ok(false);
        }
        match self.transport.put_snapshot(&remote, covers, bytes).await {
            Ok(()) => {}
            // A newer snapshot is stored, or this one is over the limit: the log stays as it is.
            Err(TransportError::Api {
                code: ErrorCode::Conflict | ErrorCode::PayloadTooLarge,
                ..
            }) => {}
            Err(e) => return Err(e.into()),
        }
        self.store.clear_outbox(ws, covers).await?;
        Ok(true)
    }
}

/// Keeps the pending updates of an encrypted notebook that may be sent: those before the first
/// plain one. A notebook that gained keys has its plain updates from before sealed by the page's
/// engine (`Store::reseal_pending`); until then they wait — nothing goes to the server in the
/// clear once a notebook has keys.
fn never_in_the_clear(record: &WorkspaceRecord, pending: &mut Vec<PendingUpdate>) {
    if record.keys.is_some() {
        let plain = pending
            .iter()
            .position(|p| !shared_schema::seal::is_sealed(&p.bytes));
        if let Some(first) = plain {
            pending.truncate(first);
        }
    }
}
