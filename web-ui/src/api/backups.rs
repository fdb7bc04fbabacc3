//! Backup files: downloading this device's copy or the server's, restoring one as a notebook.

use super::*;

/// Offers bytes as a file download.
pub fn download(name: &str, bytes: &[u8]) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("application/octet-stream");
    let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &opts) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Ok(a) = document.create_element("a") {
        let _ = a.set_attribute("href", &url);
        let _ = a.set_attribute("download", name);
        if let Ok(a) = a.dyn_into::<web_sys::HtmlElement>() {
            a.click();
        }
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}

/// Downloads a backup of the local copy (works offline, no server needed); with a passphrase,
/// encrypted and carrying its keys behind it.
pub fn download_local_backup(ui: Ui, passphrase: Option<String>) {
    if let Some(e) = engine() {
        match e.export_backup_as(passphrase.as_deref()) {
            Ok(bytes) => {
                download(&format!("hearth-{}.hearth", e.id()), &bytes);
                ui.notice.set(Some(match passphrase {
                    Some(_) => "Encrypted backup downloaded: it opens with its passphrase.".into(),
                    None => "Backup of this device's copy downloaded.".into(),
                }));
            }
            Err(err) => ui.error.set(Some(err.to_string())),
        }
    }
}

/// Asks the worker for the server's backup (master).
pub fn download_server_backup(ui: Ui) {
    send(WorkerRequest::Backup {
        ws: ui.ws.get_untracked(),
    });
}

/// Restores a backup file into a new local workspace and opens it.
pub async fn restore_backup(ui: Ui, file: web_sys::File, passphrase: Option<String>) {
    let result = async {
        let buf = wasm_bindgen_futures::JsFuture::from(file.array_buffer())
            .await
            .map_err(|_| "could not read the file".to_string())?;
        let bytes = js_sys::Uint8Array::new(&buf).to_vec();
        let store = IdbStore::open(DB_NAME).await.map_err(|e| e.to_string())?;
        Engine::import_backup_with(store, &bytes, None, passphrase.as_deref())
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(engine) => {
            install(ui, engine);
            refresh_workspaces(ui).await;
            // An earlier attempt's error (a wrong passphrase) no longer applies.
            ui.error.set(None);
            ui.notice.set(Some(
                "Backup restored as a new notebook on this device.".into(),
            ));
        }
        Err(e) => ui.error.set(Some(format!("restore failed: {e}"))),
    }
}
