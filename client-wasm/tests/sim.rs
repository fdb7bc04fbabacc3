//! Deterministic fault simulation of the client sync core (issue: "no acknowledged edit ever lost").
//!
//! Per seed (300–400 steps): 3 devices × 2 tabs (engines sharing one store, like tabs sharing
//! IndexedDB; tab 0 stages its edits, and tab 1 shows them before they are stored), two sync
//! cores per device behind a simulated lock (the worker of whichever tab holds it), and the
//! server's twin ([`MemoryServer`], running the server's own log rules). A seeded scheduler
//! interleaves a device's tasks at every await point of its store and transport, and can crash the
//! device at any of them (everything not committed is dropped, engines are reopened). The transport
//! loses requests, loses replies after commit, delivers twice, answers 5xx after commit, 429 and 413;
//! a hostile writer pushes garbage; quota fills and flaps (a staged write can fail after its
//! update went out); tokens rotate; notebooks are forgotten and
//! re-joined; backups are imported; snapshots uploaded; the server clock jumps past retention.
//! Then everything heals and syncs until quiet, and the invariants are checked.
//!
//! Devices 0 and 1 keep their notebook in the browser store's twin ([`MemoryStore`]); device 2 is
//! a native client (`hearth`), on client-native's SQLite store (in memory: the same SQL, no fsync).
//!
//! `HEARTH_SIM_SEEDS=N` runs N seeds (default 500, split over 4 tests), `HEARTH_SIM_SEED=S` one seed.
//! A failure prints its seed and the command that replays it.
#![cfg(not(target_arch = "wasm32"))]

use client_wasm::storage::{
    Appended, Change, Compaction, LoadedState, MemoryStore, Merge, OpenCache, Page, PendingUpdate,
    Since, Staged, StorageError, Store, ToPush, Updated, WorkspaceRecord,
};
use client_wasm::sync::memory::{Limits, MemoryServer};
use client_wasm::sync::{self, Pulled, Remote, SyncCore, Transport, TransportError};
use client_wasm::Engine;
use shared_schema::api::{
    CreatedWorkspace, JoinInfo, MintTokenRequest, MintedToken, PushReply, PutKeys, TokenList,
};
use shared_schema::backup::{self, BackupHeader};
use shared_schema::frame::{self, PushRecord};
use shared_schema::model::Field;
use shared_schema::sync::StopReason;
use shared_schema::{ErrorCode, Role};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

const SERVER: &str = "http://sim";

// ---------------------------------------------------------------------------------------------
// Randomness and scheduling

/// xorshift64*: the one source of randomness of a run.
#[derive(Clone)]
struct Rng(Rc<Cell<u64>>);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(Rc::new(Cell::new(
            seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        )))
    }
    fn next(&self) -> u64 {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A device's await points: each may yield (so the scheduler interleaves the device's tasks) or,
/// once a crash is armed, hang forever (the scheduler then drops every task of the device).
struct Sched {
    rng: Rng,
    crash_in: Cell<Option<u32>>,
    crashed: Cell<bool>,
}

struct Point<'a> {
    sched: &'a Sched,
    yielded: bool,
}

impl Future for Point<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let s = self.sched;
        if s.crashed.get() {
            return Poll::Pending;
        }
        if self.yielded {
            return Poll::Ready(());
        }
        if let Some(n) = s.crash_in.get() {
            if n == 0 {
                s.crashed.set(true);
                return Poll::Pending;
            }
            s.crash_in.set(Some(n - 1));
        }
        if s.rng.chance(30) {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(())
    }
}

impl Sched {
    fn point(&self) -> Point<'_> {
        Point {
            sched: self,
            yielded: false,
        }
    }
}

type Task<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Polls the tasks in a seeded order until all finish; true if the device crashed meanwhile (the
/// unfinished tasks are dropped: what they had not committed is gone).
fn run_tasks(sched: &Sched, mut tasks: Vec<Task<'_>>) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    while !tasks.is_empty() {
        let i = sched.rng.below(tasks.len() as u64) as usize;
        if tasks[i].as_mut().poll(&mut cx).is_ready() {
            drop(tasks.swap_remove(i));
        }
        if sched.crashed.get() {
            return true;
        }
    }
    false
}

/// Runs one future to completion with no faults (setup and healing).
fn block<T>(f: impl Future<Output = T>) -> T {
    futures::executor::block_on(f)
}

// ---------------------------------------------------------------------------------------------
// The device's store and transport, with await points and faults

/// A device's storage: the browser store's twin, or a native client's SQLite file.
#[derive(Clone)]
enum Disk {
    Browser(MemoryStore),
    Native(client_native::SqliteStore),
}

impl Disk {
    /// Fills (or frees) the browser store's quota; a native disk does not fill up here.
    fn set_quota_full(&self, full: bool) {
        if let Disk::Browser(s) = self {
            s.set_quota_full(full);
        }
    }
}

macro_rules! on_disk {
    ($self:ident . $m:ident ( $($a:expr),* )) => {
        match $self {
            Disk::Browser(s) => s.$m($($a),*).await,
            Disk::Native(s) => s.$m($($a),*).await,
        }
    };
}

impl Store for Disk {
    async fn create_workspace(&self, r: &WorkspaceRecord) -> Result<bool, StorageError> {
        on_disk!(self.create_workspace(r))
    }
    async fn get_workspace(&self, id: &str) -> Result<Option<WorkspaceRecord>, StorageError> {
        on_disk!(self.get_workspace(id))
    }
    async fn list_workspaces(&self) -> Result<Vec<WorkspaceRecord>, StorageError> {
        on_disk!(self.list_workspaces())
    }
    async fn update_workspace(&self, id: &str, c: &Change) -> Result<Updated, StorageError> {
        on_disk!(self.update_workspace(id, c))
    }
    async fn delete_workspace(&self, id: &str) -> Result<(), StorageError> {
        on_disk!(self.delete_workspace(id))
    }
    async fn load_since(
        &self,
        id: &str,
        since: &Since,
    ) -> Result<Option<LoadedState>, StorageError> {
        on_disk!(self.load_since(id, since))
    }
    async fn append_pending(
        &self,
        id: &str,
        b: &[u8],
        m: Option<Merge<'_>>,
        st: Staged<'_>,
    ) -> Result<Appended, StorageError> {
        on_disk!(self.append_pending(id, b, m, st))
    }
    async fn pending(&self, id: &str) -> Result<Vec<PendingUpdate>, StorageError> {
        on_disk!(self.pending(id))
    }
    async fn pending_to_push(&self, id: &str) -> Result<ToPush, StorageError> {
        on_disk!(self.pending_to_push(id))
    }
    async fn acknowledge(&self, id: &str, acks: &[(String, u64)]) -> Result<(), StorageError> {
        on_disk!(self.acknowledge(id, acks))
    }
    async fn store_page(&self, id: &str, page: &Page) -> Result<bool, StorageError> {
        on_disk!(self.store_page(id, page))
    }
    async fn received_len(&self, id: &str) -> Result<usize, StorageError> {
        on_disk!(self.received_len(id))
    }
    async fn compact(&self, id: &str, c: &Compaction) -> Result<bool, StorageError> {
        on_disk!(self.compact(id, c))
    }
    async fn save_open_cache(&self, id: &str, cache: &OpenCache) -> Result<(), StorageError> {
        on_disk!(self.save_open_cache(id, cache))
    }
    async fn open_cache(&self, id: &str) -> Result<Option<OpenCache>, StorageError> {
        on_disk!(self.open_cache(id))
    }
    async fn quarantine(&self, id: &str, seqs: &[u64]) -> Result<(), StorageError> {
        on_disk!(self.quarantine(id, seqs))
    }
    async fn reseal_pending(
        &self,
        id: &str,
        sealed: &[client_wasm::storage::PendingUpdate],
    ) -> Result<usize, StorageError> {
        on_disk!(self.reseal_pending(id, sealed))
    }
    async fn outbox(&self, id: &str) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        on_disk!(self.outbox(id))
    }
    async fn clear_outbox(&self, id: &str, covers: u64) -> Result<(), StorageError> {
        on_disk!(self.clear_outbox(id, covers))
    }
}

#[derive(Clone)]
struct SimStore {
    inner: Disk,
    sched: Rc<Sched>,
}

macro_rules! at_point {
    ($self:ident . $m:ident ( $($a:expr),* )) => {{
        $self.sched.point().await;
        $self.inner.$m($($a),*).await
    }};
}

impl Store for SimStore {
    async fn create_workspace(&self, r: &WorkspaceRecord) -> Result<bool, StorageError> {
        at_point!(self.create_workspace(r))
    }
    async fn get_workspace(&self, id: &str) -> Result<Option<WorkspaceRecord>, StorageError> {
        at_point!(self.get_workspace(id))
    }
    async fn list_workspaces(&self) -> Result<Vec<WorkspaceRecord>, StorageError> {
        at_point!(self.list_workspaces())
    }
    async fn update_workspace(&self, id: &str, c: &Change) -> Result<Updated, StorageError> {
        at_point!(self.update_workspace(id, c))
    }
    async fn delete_workspace(&self, id: &str) -> Result<(), StorageError> {
        at_point!(self.delete_workspace(id))
    }
    async fn load_since(
        &self,
        id: &str,
        since: &Since,
    ) -> Result<Option<LoadedState>, StorageError> {
        at_point!(self.load_since(id, since))
    }
    async fn append_pending(
        &self,
        id: &str,
        b: &[u8],
        m: Option<Merge<'_>>,
        st: Staged<'_>,
    ) -> Result<Appended, StorageError> {
        self.sched.point().await;
        // A staged write whose commit fails after the update was handed over (the tab closed
        // mid-flush, or the disk filled at commit): the worker and the other tab have it,
        // storage does not.
        if let Some(stage) = st.filter(|_| self.sched.rng.chance(5)) {
            // Under the key reserved ahead, or the next one (as the store would allocate).
            let (key, after) = match stage.ahead {
                Some(a) => (a.key.to_owned(), a.after.map(str::to_owned)),
                None => {
                    let next = self
                        .inner
                        .get_workspace(id)
                        .await?
                        .map_or(0, |r| r.next_pending);
                    let pending = self.inner.pending(id).await?;
                    let key =
                        client_wasm::storage::pending_key(next, client_wasm::ids::random_u64());
                    (key, pending.iter().map(|p| p.key.clone()).max())
                }
            };
            let update = PendingUpdate {
                key,
                bytes: b.to_vec(),
            };
            (stage.hand)(&update, after.as_deref());
            return Err(StorageError::QuotaExceeded);
        }
        self.inner.append_pending(id, b, m, st).await
    }
    async fn pending(&self, id: &str) -> Result<Vec<PendingUpdate>, StorageError> {
        at_point!(self.pending(id))
    }
    async fn pending_to_push(&self, id: &str) -> Result<ToPush, StorageError> {
        at_point!(self.pending_to_push(id))
    }
    async fn acknowledge(&self, id: &str, acks: &[(String, u64)]) -> Result<(), StorageError> {
        at_point!(self.acknowledge(id, acks))
    }
    async fn store_page(&self, id: &str, page: &Page) -> Result<bool, StorageError> {
        at_point!(self.store_page(id, page))
    }
    async fn received_len(&self, id: &str) -> Result<usize, StorageError> {
        at_point!(self.received_len(id))
    }
    async fn compact(&self, id: &str, c: &Compaction) -> Result<bool, StorageError> {
        at_point!(self.compact(id, c))
    }
    async fn save_open_cache(&self, id: &str, cache: &OpenCache) -> Result<(), StorageError> {
        at_point!(self.save_open_cache(id, cache))
    }
    async fn open_cache(&self, id: &str) -> Result<Option<OpenCache>, StorageError> {
        at_point!(self.open_cache(id))
    }
    async fn quarantine(&self, id: &str, seqs: &[u64]) -> Result<(), StorageError> {
        at_point!(self.quarantine(id, seqs))
    }
    async fn reseal_pending(
        &self,
        id: &str,
        sealed: &[client_wasm::storage::PendingUpdate],
    ) -> Result<usize, StorageError> {
        at_point!(self.reseal_pending(id, sealed))
    }
    async fn outbox(&self, id: &str) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        at_point!(self.outbox(id))
    }
    async fn clear_outbox(&self, id: &str, covers: u64) -> Result<(), StorageError> {
        at_point!(self.clear_outbox(id, covers))
    }
}

/// Network faults of one device.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    LostRequest,
    LostReply,
    Duplicate,
    ServerErrorAfterCommit,
    RateLimited,
    TooLarge,
}

struct SimTransport {
    server: MemoryServer,
    sched: Rc<Sched>,
    online: Rc<Cell<bool>>,
    faulty: Rc<Cell<bool>>,
}

impl SimTransport {
    fn fault(&self) -> Option<Fault> {
        if !self.faulty.get() || !self.sched.rng.chance(25) {
            return None;
        }
        Some(match self.sched.rng.below(6) {
            0 => Fault::LostRequest,
            1 => Fault::LostReply,
            2 => Fault::Duplicate,
            3 => Fault::ServerErrorAfterCommit,
            4 => Fault::RateLimited,
            _ => Fault::TooLarge,
        })
    }

    /// Sends a call through the faulty network; `call` reaches the server.
    async fn call<T, F, Fut>(&self, mutating: bool, call: F) -> Result<T, TransportError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        self.sched.point().await;
        if !self.online.get() {
            return Err(TransportError::Network("offline".into()));
        }
        let api = |code: ErrorCode| TransportError::Api {
            status: code.http_status(),
            code,
            message: "simulated".into(),
        };
        let fault = self.fault();
        let out = match fault {
            Some(Fault::LostRequest) => return Err(TransportError::Network("lost".into())),
            Some(Fault::RateLimited) => return Err(api(ErrorCode::RateLimited)),
            Some(Fault::TooLarge) if mutating => return Err(api(ErrorCode::PayloadTooLarge)),
            Some(Fault::Duplicate) => {
                let _ = call().await;
                call().await
            }
            _ => call().await,
        };
        // The reply travels back: a crash here loses it after the server committed.
        self.sched.point().await;
        match fault {
            Some(Fault::LostReply) => Err(TransportError::Network("reply lost".into())),
            Some(Fault::ServerErrorAfterCommit) => Err(api(ErrorCode::StorageUnavailable)),
            _ => out,
        }
    }
}

impl Transport for SimTransport {
    async fn push(&self, r: &Remote, body: Vec<u8>) -> Result<PushReply, TransportError> {
        self.call(true, || self.server.push(r, body.clone())).await
    }
    async fn pull(&self, r: &Remote, after: u64) -> Result<Pulled, TransportError> {
        self.call(false, || self.server.pull(r, after)).await
    }
    async fn put_snapshot(&self, r: &Remote, c: u64, b: Vec<u8>) -> Result<(), TransportError> {
        self.call(true, || self.server.put_snapshot(r, c, b.clone()))
            .await
    }
    async fn join(&self, r: &Remote) -> Result<JoinInfo, TransportError> {
        self.call(false, || self.server.join(r)).await
    }
    async fn create(
        &self,
        url: &str,
        ws: &str,
        secret: &str,
    ) -> Result<CreatedWorkspace, TransportError> {
        self.call(false, || self.server.create(url, ws, secret))
            .await
    }
    async fn rotate(&self, r: &Remote, id: &str) -> Result<MintedToken, TransportError> {
        self.call(true, || self.server.rotate(r, id)).await
    }
    async fn mint(
        &self,
        r: &Remote,
        req: &MintTokenRequest,
    ) -> Result<MintedToken, TransportError> {
        self.call(true, || self.server.mint_token(r, req)).await
    }
    async fn put_keys(&self, r: &Remote, keys: &PutKeys) -> Result<(), TransportError> {
        self.call(true, || self.server.put_keys(r, keys)).await
    }
    async fn list_tokens(&self, r: &Remote) -> Result<TokenList, TransportError> {
        self.call(false, || self.server.list_tokens(r)).await
    }
    async fn revoke(&self, r: &Remote, id: &str) -> Result<(), TransportError> {
        self.call(true, || Transport::revoke(&self.server, r, id))
            .await
    }
}

/// A write link made on the owner's device (store `owner`): its token and key, as a person
/// would paste them.
fn invite(
    server: &MemoryServer,
    owner: &Disk,
    ws: &str,
    role: Role,
) -> Result<(String, Option<String>), String> {
    let request = MintTokenRequest {
        role,
        expires_in: None,
        label: "sim".into(),
    };
    let shared =
        block(sync::keys::share(owner, server, ws, &request)).map_err(|e| e.to_string())?;
    Ok((shared.minted.token, shared.key.map(|k| k.to_text())))
}

/// Joins `store` to `ws` with a new link of `role` made on the owner's device.
fn join_with_link(
    server: &MemoryServer,
    owner: &Disk,
    store: &impl Store,
    ws: &str,
    role: Role,
) -> Result<(), String> {
    let (token, key) = invite(server, owner, ws, role)?;
    block(sync::join(
        store,
        server,
        SERVER,
        ws,
        &token,
        key.as_deref(),
    ))
    .map(|_| ())
    .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Devices

/// `Staged` broadcasts in flight: each update with the newest other pending key.
type Channel = RefCell<Vec<(PendingUpdate, Option<String>)>>;

/// What one tab's broadcasts bring the other, in order: its edits about to be written (`Shown`:
/// shown at once) and stored (`Local`).
enum TabMsg {
    Shown(Vec<u8>),
    Local(PendingUpdate),
}

/// A tab hears what the other broadcast so far.
fn hear(tab: &Engine<SimStore>, inbox: &RefCell<Vec<TabMsg>>) {
    for msg in inbox.borrow_mut().drain(..) {
        match msg {
            TabMsg::Shown(bytes) => {
                if trace() {
                    eprintln!("  a tab shows {} bytes", bytes.len());
                }
                tab.show_unstored(&bytes);
            }
            TabMsg::Local(u) => {
                if trace() {
                    eprintln!("  a tab hears {} is stored", u.key);
                }
                // As the page does (`worker::tab::confirmed`): the key first.
                tab.heard_pending(&u.key);
                // As the page does (`worker::tab::confirmed`): nothing to import when it was
                // shown whole.
                if !tab.confirm_stored(&u.bytes) {
                    tab.import_stored(&u.bytes);
                }
            }
        }
    }
}

struct Device {
    store: Disk,
    sched: Rc<Sched>,
    online: Rc<Cell<bool>>,
    faulty: Rc<Cell<bool>>,
    tabs: Vec<Engine<SimStore>>,
    cores: Vec<SyncCore<SimStore, SimTransport>>,
    /// Edits the tabs staged (the `Staged` broadcasts in flight to the syncing worker).
    staged: Rc<Channel>,
    /// Broadcasts in flight to each tab (from the other).
    inboxes: [Rc<RefCell<Vec<TabMsg>>>; 2],
    lock: usize,
    cursor: u64,
    joined: bool,
}

impl Device {
    fn new(server: &MemoryServer, rng: &Rng, native: bool) -> Result<Self, String> {
        let sched = Rc::new(Sched {
            rng: rng.clone(),
            crash_in: Cell::new(None),
            crashed: Cell::new(false),
        });
        let store = if native {
            Disk::Native(client_native::SqliteStore::in_memory().map_err(|e| e.to_string())?)
        } else {
            Disk::Browser(MemoryStore::new())
        };
        let online = Rc::new(Cell::new(true));
        let faulty = Rc::new(Cell::new(false));
        let cores = (0..2)
            .map(|_| {
                SyncCore::new(
                    SimStore {
                        inner: store.clone(),
                        sched: sched.clone(),
                    },
                    SimTransport {
                        server: server.clone(),
                        sched: sched.clone(),
                        online: online.clone(),
                        faulty: faulty.clone(),
                    },
                )
            })
            .collect();
        Ok(Self {
            store,
            sched,
            online,
            faulty,
            tabs: Vec::new(),
            cores,
            staged: Rc::new(RefCell::new(Vec::new())),
            inboxes: [
                Rc::new(RefCell::new(Vec::new())),
                Rc::new(RefCell::new(Vec::new())),
            ],
            lock: 0,
            cursor: 0,
            joined: false,
        })
    }

    fn sim_store(&self) -> SimStore {
        SimStore {
            inner: self.store.clone(),
            sched: self.sched.clone(),
        }
    }

    /// Opens both tabs from what is stored (start, or restart after a crash). Never fails.
    /// Tab 0 stages its edits (the page does while the live channel is up), tab 1 does not
    /// but shows tab 0's staged edits before they are stored.
    /// Staged broadcasts in flight are lost, and the workers restart knowing nothing of storage.
    fn open_tabs(&mut self, ws: &str) -> Result<(), String> {
        self.tabs.clear();
        self.staged.borrow_mut().clear();
        for inbox in &self.inboxes {
            inbox.borrow_mut().clear();
        }
        for core in &self.cores {
            core.forget_record(ws);
        }
        if !self.joined {
            return Ok(());
        }
        for t in 0..2 {
            let e = block(Engine::open(self.sim_store(), ws))
                .map_err(|e| format!("open failed: {e}"))?;
            // Tab 0 stages (the live channel is up); tab 1 does in half the runs (a second tab
            // of the web app) and otherwise writes as a tab without staging does.
            if t == 0 || self.sched.rng.chance(50) {
                let sink = self.staged.clone();
                e.set_stager(Some(Rc::new(
                    move |u: &PendingUpdate, after: Option<&str>| {
                        sink.borrow_mut()
                            .push((u.clone(), after.map(str::to_owned)))
                    },
                )));
                let other = self.inboxes[1 - t].clone();
                e.set_preview(Some(Rc::new(move |bytes: &[u8]| {
                    other.borrow_mut().push(TabMsg::Shown(bytes.to_vec()))
                })));
            }
            self.tabs.push(e);
        }
        Ok(())
    }

    fn cursor_now(&self, ws: &str) -> u64 {
        block(self.store.get_workspace(ws))
            .ok()
            .flatten()
            .map_or(0, |r| r.last_pulled_seq)
    }
}

/// What the run must keep: markers of edits whose call returned Ok.
#[derive(Default)]
struct Ledger {
    acked: RefCell<Vec<String>>,
    failures: RefCell<Vec<String>>,
}

/// The `Staged` broadcasts in flight reach the syncing worker.
fn deliver(core: &SyncCore<SimStore, SimTransport>, ws: &str, staged: &Channel) {
    for (u, after) in staged.borrow_mut().drain(..) {
        core.stage(ws, u, after);
    }
}

fn titles(e: &Engine<SimStore>) -> Vec<String> {
    e.notes().into_iter().map(|n| n.title).collect()
}

// ---------------------------------------------------------------------------------------------
// One run

fn run_seed(seed: u64) -> Result<(), String> {
    client_wasm::ids::seed(seed);
    let rng = Rng::new(seed);
    let server = MemoryServer::new();
    server.set_limits(Limits {
        max_push: 64 * 1024,
        max_pull: 16 * 1024,
        retention: 3600,
    });
    let ledger = Ledger::default();
    // Device 2 is a native client.
    let mut devices: Vec<Device> = (0..3)
        .map(|i| Device::new(&server, &rng, i == 2))
        .collect::<Result<_, _>>()?;

    // Device 0 owns the notebook; 1 and 2 join with write links.
    let ws = {
        let owner = &mut devices[0];
        let engine = block(Engine::create(owner.sim_store(), "Sim")).map_err(|e| e.to_string())?;
        let ws = engine.id();
        drop(engine);
        block(sync::connect(&owner.store, &server, SERVER, &ws)).map_err(|e| e.to_string())?;
        owner.joined = true;
        owner.open_tabs(&ws)?;
        ws
    };
    let owner_store = devices[0].store.clone();
    for d in devices.iter_mut().skip(1) {
        join_with_link(&server, &owner_store, &d.store, &ws, Role::Write)?;
        d.joined = true;
        d.open_tabs(&ws)?;
    }
    let hostile = server.mint(&ws, Role::Write);
    let hostile_remote = Remote {
        server_url: SERVER.into(),
        ws: ws.clone(),
        token: hostile,
    };
    let steps = 300 + rng.below(101);

    let mut marker = 0u64;
    for step in 0..steps {
        let di = rng.below(3) as usize;
        let action = rng.below(100);
        let d = &mut devices[di];
        if !d.joined && action >= 8 {
            continue;
        }
        if trace() {
            eprintln!("step {step}: device {di} action {action}");
        }
        match action {
            // Rejoin a forgotten notebook with a new link.
            0..=7 if !d.joined => {
                let joined = join_with_link(&server, &owner_store, &d.store, &ws, Role::Write);
                if joined.is_ok() {
                    d.joined = true;
                    d.cursor = 0;
                    d.open_tabs(&ws)?;
                }
            }
            // Edits in both tabs and a sync round, interleaved at every await point; maybe a crash.
            0..=44 => {
                if rng.chance(8) {
                    d.sched.crash_in.set(Some(rng.below(12) as u32));
                }
                let mut tasks: Vec<Task<'_>> = Vec::new();
                for (t, tab) in d.tabs.iter().enumerate() {
                    for _ in 0..rng.below(3) {
                        marker += 1;
                        let m = format!("m{marker}-d{di}t{t}");
                        let ledger = &ledger;
                        let edit_body = rng.chance(30);
                        let pick = rng.below(1000) as usize;
                        let (core, ws) = (&d.cores[d.lock], ws.as_str());
                        let staged = d.staged.clone();
                        let inbox = d.inboxes[t].clone();
                        let other = d.inboxes[1 - t].clone();
                        let hears = rng.chance(50);
                        tasks.push(Box::pin(async move {
                            if hears {
                                hear(tab, &inbox);
                            }
                            let notes = if edit_body { tab.notes() } else { Vec::new() };
                            let result = if !notes.is_empty() {
                                let n = &notes[pick % notes.len()];
                                let end = n.body.chars().count();
                                tab.splice_text(&n.id, Field::Body, end, end, "x").await
                            } else {
                                tab.create_note(&m).await.map(|_| ())
                            };
                            if result.is_ok() {
                                // Its `Local` broadcast, with the key, reaches the worker
                                // after the tab's `Staged` ones (one sender: in order).
                                deliver(core, ws, &staged);
                                let stored = tab.last_stored_update();
                                core.stored(ws, stored.as_ref().map(|u| u.key.as_str()));
                                if let Some(u) = stored {
                                    other.borrow_mut().push(TabMsg::Local(u));
                                }
                            }
                            if trace() {
                                let key = tab.last_stored_update().map(|u| u.key);
                                eprintln!("  edit {m}: ok {}, stored {key:?}", result.is_ok());
                            }
                            if result.is_ok() && notes.is_empty() {
                                ledger.acked.borrow_mut().push(m);
                            }
                        }));
                    }
                }
                let core = &d.cores[d.lock];
                let ws2 = ws.clone();
                let ledger2 = &ledger;
                // A push round while the live channel is up, else a full round; either takes
                // the staged edits delivered by then, and the push round may come first.
                let push_first = rng.chance(50);
                // The worker settles a push round's bookkeeping (storing what the server
                // acknowledged) after it, or beside the next round, or never (it stopped first).
                let settle = rng.chance(50);
                let staged = d.staged.clone();
                tasks.push(Box::pin(async move {
                    if push_first {
                        deliver(core, &ws2, &staged);
                        if let Err(e) = core.push_round(&ws2, &|_, _| {}).await {
                            if e.stop_reason() == Some(StopReason::ChainMismatch) {
                                ledger2.failures.borrow_mut().push(format!("push: {e}"));
                            }
                        }
                        if settle {
                            let _ = core.settle(&ws2).await;
                        }
                    }
                    deliver(core, &ws2, &staged);
                    if let Err(e) = core.sync_once(&ws2, &|_, _| {}).await {
                        if e.stop_reason() == Some(StopReason::ChainMismatch) {
                            ledger2.failures.borrow_mut().push(format!("sync: {e}"));
                        }
                    }
                }));
                if rng.chance(30) {
                    // Bookkeeping left from an earlier round, beside this one.
                    let ws3 = ws.clone();
                    tasks.push(Box::pin(async move {
                        let _ = core.settle(&ws3).await;
                    }));
                }
                for (t, tab) in d.tabs.iter().enumerate() {
                    let ledger = &ledger;
                    let inbox = d.inboxes[t].clone();
                    tasks.push(Box::pin(async move {
                        hear(tab, &inbox);
                        if let Err(e) = tab.refresh().await {
                            if !matches!(e, client_wasm::EngineError::Storage(_)) {
                                ledger.failures.borrow_mut().push(format!("refresh: {e}"));
                            }
                        }
                        let _ = tab.compact_if_due().await;
                    }));
                }
                let crashed = run_tasks(&d.sched, tasks);
                d.sched.crash_in.set(None);
                // A full quota flaps: it lasts about one busy step.
                if rng.chance(85) {
                    d.store.set_quota_full(false);
                }
                if crashed {
                    d.sched.crashed.set(false);
                    d.open_tabs(&ws)?;
                }
            }
            45..=52 => d.online.set(!d.online.get()),
            53..=60 => d.faulty.set(!d.faulty.get()),
            61..=63 => d.store.set_quota_full(true),
            64..=65 => {}
            // Lock handover: the other tab's worker syncs from now on (the one that held it
            // went with its tab: it knows nothing of storage when it holds the lock again).
            66..=70 => {
                d.cores[d.lock].forget_record(&ws);
                d.lock = 1 - d.lock;
            }
            // Restart (tabs reopened from storage).
            71..=72 => d.open_tabs(&ws)?,
            // The owner rotates its token.
            75..=77 if di == 0 => {
                let r = block(sync::rotate(&d.store, &server, &ws));
                if trace() {
                    eprintln!("rotate: {r:?}");
                }
            }
            // A member forgets the notebook (only with nothing unsent: the app offers a backup
            // first and the sim's user keeps it otherwise), later re-joins.
            75..=77 => {
                let unsent = block(d.store.pending(&ws)).map(|p| p.len()).unwrap_or(1);
                if unsent == 0 {
                    block(d.store.delete_workspace(&ws)).map_err(|e| e.to_string())?;
                    d.joined = false;
                    d.tabs.clear();
                }
            }
            // Restore a backup of this device's copy as a new notebook: same notes.
            78 => {
                if let Some(tab) = d.tabs.first() {
                    if let Ok(bytes) = tab.export_backup() {
                        let restored = block(Engine::import_backup(d.store.clone(), &bytes, None));
                        match restored {
                            Ok(r) if r.notes() == tab.notes() => {}
                            Ok(_) => ledger
                                .failures
                                .borrow_mut()
                                .push("a restored backup differs".into()),
                            Err(_) => {} // quota full
                        }
                    }
                }
            }
            // A tab compacts now (on the owner's device the snapshot is queued for upload).
            81..=84 => {
                if let Some(tab) = d.tabs.first() {
                    let _ = block(tab.compact());
                }
            }
            // Server clock jumps past retention.
            87..=88 => server.advance_clock(3601),
            // Hostile writer: garbage updates; its snapshot upload is refused.
            89..=91 => {
                let body = frame::encode_push_batch(&[PushRecord {
                    key: format!("evil-{step}").into_bytes(),
                    bytes: vec![0xEE; 1 + rng.below(64) as usize],
                }])
                .map_err(|e| e.to_string())?;
                block(server.push(&hostile_remote, body)).map_err(|e| e.to_string())?;
                let refused = block(server.put_snapshot(&hostile_remote, 0, b"evil".to_vec()));
                if !matches!(
                    refused,
                    Err(TransportError::Api {
                        code: ErrorCode::Forbidden,
                        ..
                    })
                ) {
                    return Err("a write token uploaded a snapshot".into());
                }
            }
            // Server restart: in-flight nothing; state persists (the twin keeps it all).
            _ => {}
        }
        // A device's stored cursor never decreases.
        for d in devices.iter_mut() {
            if d.joined {
                let now = d.cursor_now(&ws);
                if now < d.cursor {
                    return Err(format!("cursor went back from {} to {now}", d.cursor));
                }
                d.cursor = now;
            }
        }
    }

    // Heal: everything online, no faults, storage free, every device joined; sync until quiet.
    for d in devices.iter_mut() {
        d.online.set(true);
        d.faulty.set(false);
        d.store.set_quota_full(false);
        if !d.joined {
            join_with_link(&server, &owner_store, &d.store, &ws, Role::Write)?;
            d.joined = true;
        }
        d.open_tabs(&ws)?;
    }
    for pass in 0.. {
        let mut moved = false;
        for d in &devices {
            let round = block(d.cores[d.lock].sync_once(&ws, &|_, _| {}))
                .map_err(|e| format!("healed sync failed: {e}"))?;
            moved |= round.pushed > 0 || round.pulled > 0 || round.uploaded;
            for tab in &d.tabs {
                block(tab.refresh()).map_err(|e| format!("refresh failed: {e}"))?;
            }
        }
        if !moved {
            break;
        }
        if pass > 30 {
            return Err("sync did not go quiet".into());
        }
    }
    if let Some(e) = ledger.failures.borrow().first() {
        return Err(e.clone());
    }
    check(&server, &devices, &ws, &ledger)
}

fn check(
    server: &MemoryServer,
    devices: &[Device],
    ws: &str,
    ledger: &Ledger,
) -> Result<(), String> {
    let log = server.log(ws).ok_or("no log")?;
    // Seqs are gap-free above the snapshot; each key names exactly one stored seq.
    let covers = log.snapshot.as_ref().map_or(0, |(c, ..)| *c);
    let seqs: Vec<u64> = log
        .updates
        .keys()
        .copied()
        .filter(|s| *s > covers)
        .collect();
    if seqs != (covers + 1..=log.head).collect::<Vec<_>>() {
        return Err(format!("gap in seqs above covers {covers}: {seqs:?}"));
    }
    let mut keys: Vec<&Vec<u8>> = log.updates.values().map(|u| &u.key).collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    if keys.len() != n {
        return Err("a key is stored under two seqs".into());
    }
    // A backup of the server decodes and verifies.
    let records = server.records(ws);
    let header = BackupHeader {
        workspace_id: ws.to_owned(),
        created_at: 0,
        head_seq: log.head,
        chain_head: log.chain,
        source: "server".into(),
        keys: None,
    };
    let file = backup::encode(&header, &records).map_err(|e| e.to_string())?;
    backup::decode(&file).map_err(|e| format!("backup does not verify: {e}"))?;

    let acked = ledger.acked.borrow();
    let first = &devices[0].tabs[0];
    for (i, d) in devices.iter().enumerate() {
        let record = block(d.store.get_workspace(ws))
            .map_err(|e| e.to_string())?
            .ok_or("gone")?;
        if (record.last_pulled_seq, record.chain_head) != (log.head, log.chain) {
            return Err(format!("device {i} is not at the server's head"));
        }
        // An honest server never looks forked: every sealed record's witness agreed.
        if let Some(seq) = record.forked {
            return Err(format!(
                "device {i} saw a fork at seq {seq} of an honest server"
            ));
        }
        if !block(d.store.pending(ws))
            .map_err(|e| e.to_string())?
            .is_empty()
        {
            return Err(format!("device {i} still has unsent edits"));
        }
        for tab in &d.tabs {
            let have = titles(tab);
            if let Some(lost) = acked.iter().find(|m| !have.contains(m)) {
                return Err(format!("device {i} lost acknowledged edit {lost}"));
            }
            if tab.doc().get_deep_value() != first.doc().get_deep_value()
                || tab.doc().oplog_vv() != first.doc().oplog_vv()
            {
                return Err(format!("device {i} diverged"));
            }
        }
    }
    // A fresh device joining after retention (from the owner's new snapshot) has every edit.
    server.advance_clock(7200);
    let owner = &devices[0];
    block(owner.tabs[0].compact()).map_err(|e| e.to_string())?;
    block(owner.cores[owner.lock].sync_once(ws, &|_, _| {})).map_err(|e| e.to_string())?;
    let store = MemoryStore::new();
    join_with_link(server, &owner.store, &store, ws, Role::Read)?;
    let core = SyncCore::new(store.clone(), server.clone());
    block(core.sync_once(ws, &|_, _| {})).map_err(|e| e.to_string())?;
    let fresh = block(Engine::open(store, ws)).map_err(|e| e.to_string())?;
    let have: Vec<String> = fresh.notes().into_iter().map(|n| n.title).collect();
    if let Some(lost) = acked.iter().find(|m| !have.contains(m)) {
        return Err(format!("a new device misses acknowledged edit {lost}"));
    }
    if fresh.doc().get_deep_value() != first.doc().get_deep_value() {
        return Err("a new device sees different notes".into());
    }
    if acked.is_empty() {
        return Err("no edit was acknowledged: the run tested nothing".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Entry points

/// `HEARTH_SIM_TRACE=1` prints every step of a replayed seed.
fn trace() -> bool {
    std::env::var_os("HEARTH_SIM_TRACE").is_some()
}

fn seeds(shard: u64, shards: u64) -> Vec<u64> {
    if let Ok(one) = std::env::var("HEARTH_SIM_SEED") {
        return match one.parse::<u64>() {
            Ok(s) if s % shards == shard => vec![s],
            _ => vec![],
        };
    }
    let n: u64 = std::env::var("HEARTH_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    (0..n).filter(|s| s % shards == shard).collect()
}

fn run_shard(shard: u64) -> Result<(), String> {
    let seeds = seeds(shard, 4);
    for seed in &seeds {
        let outcome = std::panic::catch_unwind(|| run_seed(*seed))
            .unwrap_or_else(|p| Err(format!("panicked: {:?}", p.downcast_ref::<String>())));
        if let Err(e) = outcome {
            return Err(format!(
                "seed {seed} failed: {e}\nreplay: HEARTH_SIM_SEED={seed} cargo test -p client-wasm --test sim"
            ));
        }
    }
    eprintln!("sim shard {shard}: {} seeds passed", seeds.len());
    Ok(())
}

#[test]
fn no_acknowledged_edit_is_ever_lost_under_faults_shard_0() -> Result<(), String> {
    run_shard(0)
}

#[test]
fn no_acknowledged_edit_is_ever_lost_under_faults_shard_1() -> Result<(), String> {
    run_shard(1)
}

#[test]
fn no_acknowledged_edit_is_ever_lost_under_faults_shard_2() -> Result<(), String> {
    run_shard(2)
}

#[test]
fn no_acknowledged_edit_is_ever_lost_under_faults_shard_3() -> Result<(), String> {
    run_shard(3)
}
