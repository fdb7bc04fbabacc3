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

    /// Takes one live event of a stream whose tentative records are in `held` (one per
    /// stream: a new stream starts a new one). A tentative record (`shared_schema::live`) that
    /// follows the cursor, or the last held record, and whose chain verifies is held and shown
    /// ([`Live::Held`]), never stored; the marker that follows stores the held records it
    /// confirms (the one at its seq has its chain) in one transaction with the new cursor, exactly
    /// as a pulled page. [`Live::Pull`] when the caller must pull instead — a marker or seq past what this stored
    /// (nothing held, a gap, a damaged or tampered record, a failed commit's records), or another
    /// tab's worker moved the cursor first; [`Live::Current`] when the event announces nothing
    /// past the cursor (the head sent when a stream opens, a replay) or is a tentative record not
    /// taken (its marker then makes the caller pull). A tampered record is never shown or stored:
    /// the pull that follows verifies what the server really has.
    ///
    /// `verified` gets a record's update as soon as its chain verifies, before it is stored, so
    /// the tabs can show it: it is what the pusher sent and the server is storing (the chain
    /// proves it), and if it is never stored here the cursor stays put and the next pull fetches
    /// what the server really has. It is not called for an update this core pushed itself
    /// ([`Live::Echo`]). The cursor comes from the core's memory when it has one; a stale one
    /// only makes the store refuse the page, and the caller pulls.
    pub async fn take_live(
        &self,
        ws: &str,
        event: &LiveEvent,
        held: &mut live::Held,
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
        if event.tentative {
            if event.seq <= from.0 {
                return Ok(Live::Current);
            }
            let Ok(update) = held.hold(event, from.0, from.1) else {
                return Ok(Live::Current);
            };
            let bytes = update.bytes.clone();
            if !self.knows_epoch_of(ws, &bytes).await? {
                *held = live::Held::default();
                return Ok(Live::Current);
            }
            if !self.pushed.borrow().contains(&digest(&bytes)) {
                verified(&bytes);
            }
            return Ok(Live::Held);
        }
        let records = held.confirm(event, from.0, from.1);
        if records.is_empty() {
            return Ok(if event.seq <= from.0 {
                Live::Current
            } else {
                Live::Pull
            });
        }
        let Some(last) = records.last().map(|r| (r.seq, r.chain)) else {
            return Ok(Live::Pull);
        };
        let echo = records
            .iter()
            .all(|r| self.pushed.borrow().contains(&digest(&r.bytes)));
        let page = Page {
            from,
            to: last,
            chains: records.iter().map(|r| (r.seq, r.chain)).collect(),
            records: records
                .into_iter()
                .map(|r| RemoteRecord {
                    seq: r.seq,
                    kind: PullRecordKind::Update,
                    bytes: r.bytes,
                })
                .collect(),
        };
        let stored = self.store.store_page(ws, &page).await?;
        self.remember(ws, stored.then_some(page.to));
        Ok(if !stored || event.seq > last.0 {
            Live::Pull
        } else if echo {
            Live::Echo
        } else {
            Live::Stored(
                page.records
                    .into_iter()
                    .map(|r| r.bytes)
                    .next_back()
                    .unwrap_or_default(),
            )
        })
    }

    /// Whether this device holds the key epoch `bytes` are sealed under (or they are not
    /// sealed). Storage is read only when the epoch is newer than the last one seen; a record
    /// under an epoch this device lacks is pulled, so the pull learns the keys first.
    async fn knows_epoch_of(&self, ws: &str, bytes: &[u8]) -> Result<bool, SyncError> {
        let Some(epoch) = shared_schema::seal::epoch_of(bytes) else {
            return Ok(true);
        };
        if self
            .epochs
            .borrow()
            .get(ws)
            .is_some_and(|known| epoch <= *known)
        {
            return Ok(true);
        }
        if let Some(record) = self.store.get_workspace(ws).await? {
            self.note_epoch(&record);
            if keys::lacks_epoch(&record, std::iter::once(bytes)) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
