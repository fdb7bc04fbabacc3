//! Pulling: pages after the cursor, each verified against the chain and stored in one
//! transaction with the new cursor; and live events whose inline record is the next one.

use super::*;

impl<S: Store, T: Transport> SyncCore<S, T> {
    /// Pulls every page after the cursor. Each page's chain is verified before anything is stored
    /// and the page is stored in one transaction with the new cursor. A gap or a bad chain is
    /// pulled once more before it stops sync as a mismatch. Returns (cursor, records stored).
    pub async fn pull(&self, ws: &str) -> Result<(u64, usize), SyncError> {
        let mut stored = 0;
        let mut retried = false;
        loop {
            let (record, remote) = remote_of(&self.store, ws).await?;
            stop_if_forked(&record)?;
            let from = (record.last_pulled_seq, record.chain_head);
            let pulled = self.transport.pull(&remote, from.0).await?;
            let records = frame::decode_pull_stream(&pulled.body)
                .map_err(|e| TransportError::Network(format!("a damaged pull page: {e}")))?;
            let page = match verify_page(from.0, from.1, &records) {
                Ok(page) => page,
                Err(_) if !retried => {
                    retried = true;
                    continue;
                }
                Err(e) => {
                    let message = match e {
                        PageError::Chain(c) => c.to_string(),
                        PageError::OutOfOrder { expected, got } => {
                            format!("the server skipped from seq {expected} to {got}")
                        }
                    };
                    return Err(SyncError::stop(StopReason::ChainMismatch, message));
                }
            };
            if page.seq == from.0 {
                self.remember(ws, Some(from));
                return Ok((from.0, stored));
            }
            let mut kept: Vec<RemoteRecord> = Vec::with_capacity(page.updates.len() + 1);
            if let Some(s) = page.snapshot {
                kept.push(RemoteRecord {
                    seq: s.seq,
                    kind: PullRecordKind::Snapshot,
                    bytes: s.bytes.clone(),
                });
            }
            kept.extend(page.updates.iter().map(|r| RemoteRecord {
                seq: r.seq,
                kind: PullRecordKind::Update,
                bytes: r.bytes.clone(),
            }));
            self.note_epoch(&record);
            if keys::lacks_epoch(&record, kept.iter().map(|r| r.bytes.as_slice())) {
                keys::refresh(&self.store, &self.transport, &remote, &record).await?;
            }
            let chains = page
                .snapshot
                .iter()
                .chain(page.updates.iter())
                .map(|r| (r.seq, r.chain))
                .collect();
            let to = (page.seq, page.chain);
            let n = kept.len();
            let page = Page {
                from,
                to,
                records: kept,
                chains,
            };
            if self.store.store_page(ws, &page).await? {
                self.remember(ws, Some(to));
                stored += n;
                retried = false;
                if let Some(report) = &self.pulled_page {
                    report(to.0, stored, pulled.head_seq);
                }
                if !pulled.more {
                    return Ok((to.0, stored));
                }
            } else {
                self.remember(ws, None);
            }
            // Otherwise another tab's worker stored a page first: pull again from its cursor.
        }
    }

    /// Takes one live event: stores its inline record when it is the next one after the cursor
    /// and its chain verifies (`shared_schema::live::accept`), in one transaction with the new
    /// cursor, exactly as a pulled page. [`Live::Pull`] when the caller must pull instead — no
    /// record, a gap, a damaged or tampered record, or another tab's worker moved the cursor
    /// first; [`Live::Current`] when the event announces nothing past the cursor (the head sent
    /// when a stream opens, a replay). A tampered record is never stored: the pull that follows
    /// verifies what the server really has.
    ///
    /// `verified` gets the record's update as soon as its chain verifies, before it is stored,
    /// so the tabs can show it while storage writes it: it is the server's own stored record
    /// (the chain proves it), and if this device fails to store it the cursor stays put and the
    /// next pull fetches it again. It is not called for an update this core pushed itself
    /// ([`Live::Echo`]). The cursor comes from the core's memory when it has one; a stale one
    /// only makes the store refuse the page, and the caller pulls.
    pub async fn take_live(
        &self,
        ws: &str,
        event: &LiveEvent,
        verified: &dyn Fn(&[u8]),
    ) -> Result<Live, SyncError> {
        let known = self.cursors.borrow().get(ws).copied();
        let from = match known {
            Some(c) => c,
            None => {
                let (record, _) = remote_of(&self.store, ws).await?;
                (record.last_pulled_seq, record.chain_head)
            }
        };
        if event.seq <= from.0 {
            return Ok(Live::Current);
        }
        let Ok(update) = live::accept(event, from.0, from.1) else {
            return Ok(Live::Pull);
        };
        if let Some(epoch) = shared_schema::seal::epoch_of(&update.bytes) {
            // Under an epoch this device may lack (checked in storage only when it is newer than
            // the last one seen): the pull learns the keys first.
            if self
                .epochs
                .borrow()
                .get(ws)
                .is_none_or(|known| epoch > *known)
            {
                if let Some(record) = self.store.get_workspace(ws).await? {
                    self.note_epoch(&record);
                    if keys::lacks_epoch(&record, std::iter::once(update.bytes.as_slice())) {
                        return Ok(Live::Pull);
                    }
                }
            }
        }
        let echo = self.pushed.borrow().contains(&digest(&update.bytes));
        if !echo {
            verified(&update.bytes);
        }
        let page = Page {
            from,
            to: (update.seq, update.chain),
            chains: vec![(update.seq, update.chain)],
            records: vec![RemoteRecord {
                seq: update.seq,
                kind: PullRecordKind::Update,
                bytes: update.bytes,
            }],
        };
        let stored = self.store.store_page(ws, &page).await?;
        self.remember(ws, stored.then_some(page.to));
        Ok(if stored && echo {
            Live::Echo
        } else if stored {
            Live::Stored(
                page.records
                    .into_iter()
                    .map(|r| r.bytes)
                    .next()
                    .unwrap_or_default(),
            )
        } else {
            Live::Pull
        })
    }
}
