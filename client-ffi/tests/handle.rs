//! A handle keeps each notebook's engine open between calls: it must still see what another
//! process stores in the same data file, and what it writes must reach that process.
// Called as a C program calls them: raw pointers (the crate denies unsafe code elsewhere).
#![allow(unsafe_code)]

use client_native::Client;
use client_wasm::Engine;
use hearth_ffi::{
    hearth_add_note, hearth_close, hearth_notes_json, hearth_open, hearth_set_text,
    hearth_status_json, hearth_string_free,
};
use shared_schema::model::{Field, Note};
use std::ffi::{c_char, CStr, CString};

type R = Result<(), Box<dyn std::error::Error>>;

/// A string the API returned, as Rust text (then freed); the error text when it is NULL.
fn taken(s: *mut c_char, error: *mut c_char) -> Result<String, String> {
    // SAFETY: both are NULL or strings this API returned, freed once here.
    unsafe {
        let read = |p: *mut c_char| {
            let text = CStr::from_ptr(p).to_string_lossy().into_owned();
            hearth_string_free(p);
            text
        };
        match (s.is_null(), error.is_null()) {
            (false, _) => Ok(read(s)),
            (true, false) => Err(read(error)),
            (true, true) => Err("NULL without an error".into()),
        }
    }
}

#[test]
fn a_handle_keeps_its_engine_yet_sees_and_reaches_another_process_on_the_same_file() -> R {
    let dir = std::env::temp_dir().join(format!("hearth-ffi-h-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("notes.db");
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    // "Another process": its own client and engine on the same file (a notebook of this device).
    let other = Client::open(&path)?;
    let theirs = runtime.block_on(Engine::create(other.store.clone(), "Local"))?;

    let c_path = CString::new(path.to_str().ok_or("path")?)?;
    let mut error: *mut c_char = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated strings, a writable error pointer, a handle closed once.
    let mine = unsafe {
        let h = hearth_open(c_path.as_ptr(), &mut error);
        assert!(!h.is_null(), "{:?}", taken(std::ptr::null_mut(), error));
        let title = CString::new("first, from C")?;
        let mine = taken(
            hearth_add_note(
                h,
                std::ptr::null(),
                title.as_ptr(),
                std::ptr::null(),
                &mut error,
            ),
            error,
        )?;
        let list = |error: &mut *mut c_char| -> Result<Vec<Note>, Box<dyn std::error::Error>> {
            let json = taken(hearth_notes_json(h, std::ptr::null(), error), *error)?;
            Ok(serde_json::from_str(&json)?)
        };
        assert_eq!(list(&mut error)?.len(), 1);

        // The other process writes; the handle's kept engine reads it at its next call.
        runtime.block_on(theirs.refresh())?;
        let second = runtime.block_on(theirs.create_note("second, from elsewhere"))?;
        runtime.block_on(theirs.splice_text(&mine, Field::Body, 0, 0, "their line. "))?;
        let seen = list(&mut error)?;
        assert!(seen.iter().any(|n| n.id == second), "{seen:?}");

        // An edit through the handle is placed against what the other process wrote.
        let (note, body, value) = (
            CString::new(mine.as_str())?,
            CString::new("body")?,
            CString::new("their line. mine.")?,
        );
        let set = hearth_set_text(
            h,
            std::ptr::null(),
            note.as_ptr(),
            body.as_ptr(),
            value.as_ptr(),
            &mut error,
        );
        assert_eq!(set, 0, "{:?}", taken(std::ptr::null_mut(), error));
        let status = taken(hearth_status_json(h, std::ptr::null(), &mut error), error)?;
        let status: serde_json::Value = serde_json::from_str(&status)?;
        assert!(status["pending"].as_u64().unwrap_or(0) >= 3, "{status}");
        hearth_close(h);
        mine
    };
    runtime.block_on(theirs.refresh())?;
    let body = theirs.note(&mine).ok_or("the note")?.body;
    assert_eq!(
        body, "their line. mine.",
        "the other process reads the handle's edit"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
