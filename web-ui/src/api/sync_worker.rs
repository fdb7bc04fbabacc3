//! This tab's sync worker (`worker::SyncWorker`, started from the app's own bundle): requests
//! to it, and what its answers change in the UI.

use super::*;

thread_local! {
    static WORKER: RefCell<Option<WorkerBridge<SyncWorker>>> = const { RefCell::new(None) };
}

/// Sends a request to this tab's sync worker.
pub(crate) fn send(req: WorkerRequest) {
    WORKER.with(|w| {
        if let Some(bridge) = w.borrow().as_ref() {
            bridge.send(req);
        }
    });
}

/// A module-worker loader for this page's own bundle: it imports the app's JS and starts it with
/// the app's wasm (both named by the `modulepreload`/`preload` links Trunk writes into the page),
/// so the sync worker ships no second wasm — one copy of the code on a first load.
pub(super) fn worker_loader() -> Result<String, String> {
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let base = document.url().map_err(|_| "no page URL")?;
    let link = |selector: &str| {
        document
            .query_selector(selector)
            .ok()
            .flatten()
            .and_then(|e| e.get_attribute("href"))
            .and_then(|href| web_sys::Url::new_with_base(&href, &base).ok())
            .map(|u| u.href())
            .ok_or_else(|| format!("the page names no {selector}"))
    };
    let js = link(r#"link[rel="modulepreload"][href$=".js"]"#)?;
    let wasm = link(r#"link[rel="preload"][href$=".wasm"]"#)?;
    let shim = format!("import init from {js:?}; await init({{ module_or_path: {wasm:?} }});");
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("application/javascript");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(
        &js_sys::Array::of1(&JsValue::from_str(&shim)),
        &opts,
    )
    .map_err(|_| "could not build the worker loader")?;
    web_sys::Url::create_object_url_with_blob(&blob)
        .map_err(|_| "could not build the worker loader".into())
}

pub(super) fn start_worker(ui: Ui) {
    let loader = match worker_loader() {
        Ok(url) => url,
        Err(e) => {
            ui.worker.set(format!("not started: {e}"));
            return;
        }
    };
    let bridge = SyncWorker::spawner()
        .callback(move |resp| match resp {
            WorkerResponse::Pong { version, .. } => {
                ui.worker.set(format!("ready (version {version})"))
            }
            WorkerResponse::Connected { .. } => {
                leptos::task::spawn_local(async move {
                    if let Some(e) = engine() {
                        let _ = e.refresh().await;
                        ui.refresh_from_engine();
                    }
                    // The marker learns the server and token (see `storage_health`).
                    refresh_workspaces(ui).await;
                });
            }
            WorkerResponse::Joined { ws, .. } => {
                ui.notice.set(None);
                leptos::task::spawn_local(async move {
                    open_workspace(ui, ws).await;
                    refresh_workspaces(ui).await;
                });
            }
            WorkerResponse::JoinFailed { message, .. } => {
                ui.notice.set(None);
                ui.error.set(Some(message));
                leptos::task::spawn_local(ensure_open(ui));
            }
            WorkerResponse::Minted { ws, token, key, .. } => {
                ui.share_link.set(Some(shared_schema::link::format(
                    &origin(),
                    &ws,
                    &token,
                    key.as_deref(),
                )));
                list_tokens(ui);
            }
            WorkerResponse::Tokens { tokens, .. } => ui.tokens.set(tokens),
            WorkerResponse::Rotated { .. } => {
                ui.notice.set(Some(
                    "The owner token was rotated; the old one no longer works.".into(),
                ));
                list_tokens(ui);
                // An encrypted notebook's key was rotated with it.
                keys_changed(ui, true);
            }
            WorkerResponse::BackupFile { ws, bytes } => {
                download(&format!("hearth-{ws}-server.hearth"), &bytes);
                ui.notice.set(Some("Server backup downloaded.".into()));
            }
            WorkerResponse::DeletedRemote { ws } => {
                leptos::task::spawn_local(async move { leave_workspace(ui, ws).await });
            }
            WorkerResponse::Revoked { .. } => {
                list_tokens(ui);
                // The worker rotated the notebook's key: this tab seals under the new one from
                // now on, and a snapshot under it goes to the server.
                keys_changed(ui, true);
            }
            WorkerResponse::Encrypted {
                revoked, turned_on, ..
            } => {
                list_tokens(ui);
                ui.notice.set(Some(if turned_on {
                    format!(
                        "End-to-end encryption is on. {revoked} link(s) stopped working: make new links to share."
                    )
                } else {
                    "This notebook was already encrypted.".into()
                }));
                keys_changed(ui, true);
            }
            WorkerResponse::Heard(text) => heard(ui, &text),
            WorkerResponse::Failed { what, message } => {
                let text = format!("{what}: {message}");
                ui.server_error.set(Some(text.clone()));
                ui.error.set(Some(text));
            }
        })
        .with_loader(true)
        .spawn(&loader);
    bridge.send(WorkerRequest::Ping { nonce: 1 });
    WORKER.with(|w| *w.borrow_mut() = Some(bridge));
}

pub(super) fn watch_online() {
    let Some(window) = web_sys::window() else {
        return;
    };
    for (event, up) in [("online", true), ("offline", false)] {
        let cb = Closure::<dyn FnMut()>::new(move || send(WorkerRequest::Online(up)));
        let _ = window.add_event_listener_with_callback(event, cb.as_ref().unchecked_ref());
        cb.forget();
    }
}
