use super::*;
use loro::{ExportMode, LoroDoc};

type R = Result<(), Box<dyn std::error::Error>>;

fn doc(peer: u64) -> Result<LoroDoc, ModelError> {
    let d = LoroDoc::new();
    d.set_peer_id(peer)?;
    Ok(d)
}

/// A v1 document as an older build wrote it: string tags, schema_version 1.
fn v1_doc(peer: u64) -> Result<LoroDoc, Box<dyn std::error::Error>> {
    let d = doc(peer)?;
    create_note(&d, "n1", "Groceries", 10)?;
    note_map(&d, "n1")
        .ok_or("no note")?
        .insert("tags", "home, food ,")?;
    d.get_map(META).insert("schema_version", 1i64)?;
    d.commit();
    Ok(d)
}

fn sync(a: &LoroDoc, b: &LoroDoc) -> R {
    b.import(&a.export(ExportMode::all_updates())?)?;
    a.import(&b.export(ExportMode::all_updates())?)?;
    Ok(())
}

#[test]
fn a_new_document_migrates_to_the_current_version() -> R {
    let d = doc(1)?;
    assert_eq!(migrate(&d, 5)?, vec![1, 2]);
    assert_eq!(schema_version(&d), SCHEMA_VERSION);
    assert!(migrate(&d, 6)?.is_empty(), "second run applies nothing");
    Ok(())
}

#[test]
fn every_edit_shows_in_the_read_model() -> R {
    let d = doc(1)?;
    migrate(&d, 0)?;
    create_note(&d, "a", "Hello", 1)?;
    splice_text(&d, "a", Field::Title, 5, 5, " world", 2)?;
    splice_text(&d, "a", Field::Body, 0, 0, "héllo body", 3)?;
    splice_text(&d, "a", Field::Body, 1, 2, "e", 4)?;
    add_task(&d, "a", "one", 5)?;
    add_task(&d, "a", "two", 6)?;
    set_task_done(&d, "a", 1, true, 7)?;
    move_task(&d, "a", 1, 0, 8)?;
    set_tag(&d, "a", "work", true, 9)?;
    set_tag(&d, "a", "idea", true, 9)?;
    set_tag(&d, "a", "idea", false, 9)?;
    set_flag(&d, "a", Flag::Pinned, true, 10)?;
    let n = note(&d, "a").ok_or("missing")?;
    assert_eq!(n.title, "Hello world");
    assert_eq!(n.body, "hello body");
    assert_eq!(
        n.tasks,
        vec![
            Task {
                text: "two".into(),
                done: true
            },
            Task {
                text: "one".into(),
                done: false
            }
        ]
    );
    assert_eq!(n.tags, vec!["work".to_string()]);
    assert!(n.pinned);
    assert_eq!(n.updated_at, 10);
    delete_task(&d, "a", 0, 11)?;
    assert_eq!(note(&d, "a").ok_or("missing")?.tasks.len(), 1);
    set_flag(&d, "a", Flag::Trashed, true, 12)?;
    assert!(note(&d, "a").ok_or("missing")?.trashed);
    set_flag(&d, "a", Flag::Trashed, false, 13)?;
    purge_note(&d, "a")?;
    assert!(note(&d, "a").is_none());
    assert!(d.get_map(NOTE_TAGS).is_empty());
    Ok(())
}

#[test]
fn a_note_read_alone_has_its_own_tags_sorted_as_the_whole_list_reads_them() -> R {
    let d = doc(1)?;
    migrate(&d, 0)?;
    for (id, tags) in [
        ("a", ["zeta", "alpha"]),
        ("ab", ["beta", "gamma"]),
        ("b", ["alpha", "x"]),
    ] {
        create_note(&d, id, id, 1)?;
        for t in tags {
            set_tag(&d, id, t, true, 2)?;
        }
    }
    // A tag key whose note part is not a note's id ("a" followed by more) is not note a's.
    assert_eq!(note(&d, "a").ok_or("missing")?.tags, vec!["alpha", "zeta"]);
    assert_eq!(note(&d, "ab").ok_or("missing")?.tags, vec!["beta", "gamma"]);
    for n in notes(&d) {
        assert_eq!(note(&d, &n.id).ok_or("missing")?.tags, n.tags);
    }
    Ok(())
}

#[test]
fn bad_ranges_and_unknown_notes_are_errors_that_change_nothing() -> R {
    let d = doc(1)?;
    create_note(&d, "a", "abc", 1)?;
    assert!(matches!(
        splice_text(&d, "a", Field::Title, 2, 9, "", 2),
        Err(ModelError::BadRange { len: 3, .. })
    ));
    assert!(matches!(
        splice_text(&d, "zz", Field::Title, 0, 0, "x", 2),
        Err(ModelError::NoSuchNote(_))
    ));
    assert!(matches!(
        set_task_done(&d, "a", 0, true, 2),
        Err(ModelError::NoSuchTask { .. })
    ));
    assert!(matches!(
        set_tag(&d, "a", " ", true, 2),
        Err(ModelError::BadTag)
    ));
    assert_eq!(note(&d, "a").ok_or("missing")?.title, "abc");
    Ok(())
}

#[test]
fn notes_sort_pinned_first_then_newest() -> R {
    let d = doc(1)?;
    create_note(&d, "old", "", 1)?;
    create_note(&d, "new", "", 5)?;
    create_note(&d, "pin", "", 2)?;
    set_flag(&d, "pin", Flag::Pinned, true, 2)?;
    let ids: Vec<_> = notes(&d).into_iter().map(|n| n.id).collect();
    assert_eq!(ids, vec!["pin", "new", "old"]);
    Ok(())
}

#[test]
fn v1_tags_migrate_into_the_v2_set() -> R {
    let d = v1_doc(1)?;
    assert_eq!(migrate(&d, 20)?, vec![2]);
    d.commit();
    assert_eq!(note(&d, "n1").ok_or("missing")?.tags, vec!["food", "home"]);
    assert!(note_map(&d, "n1").ok_or("missing")?.get("tags").is_none());
    Ok(())
}

#[test]
fn two_devices_migrating_concurrently_converge_and_keep_later_tags() -> R {
    let a = v1_doc(1)?;
    let b = doc(2)?;
    b.import(&a.export(ExportMode::all_updates())?)?;
    migrate(&a, 30)?;
    set_tag(&a, "n1", "from-a", true, 31)?;
    a.commit();
    migrate(&b, 40)?;
    set_tag(&b, "n1", "from-b", true, 41)?;
    b.commit();
    sync(&a, &b)?;
    assert_eq!(a.get_deep_value(), b.get_deep_value());
    assert_eq!(
        note(&a, "n1").ok_or("missing")?.tags,
        vec!["food", "from-a", "from-b", "home"]
    );
    assert_eq!(schema_version(&a), 2);
    Ok(())
}

#[test]
fn a_v1_edit_merged_after_migration_is_swept_on_next_open() -> R {
    let a = v1_doc(1)?;
    let old = doc(2)?;
    old.import(&a.export(ExportMode::all_updates())?)?;
    migrate(&a, 1)?;
    a.commit();
    // An old build, still on v1, keeps editing the tags string concurrently; its last write has
    // the higher Lamport time, so it wins the map key over the migration's delete.
    let old_note = note_map(&old, "n1").ok_or("missing")?;
    for i in 0..10 {
        old_note.insert("tags", format!("draft{i}"))?;
    }
    old_note.insert("tags", "late")?;
    old.commit();
    sync(&a, &old)?;
    // The merged v1 string is back in the note map until the next open sweeps it.
    assert!(note_map(&a, "n1").ok_or("missing")?.get("tags").is_some());
    // The next open runs `migrate` (the function `Engine::open` calls): the string is gone and
    // its tags are kept as v2 tags.
    migrate(&a, 2)?;
    a.commit();
    let n = note_map(&a, "n1").ok_or("missing")?;
    assert!(n.get("tags").is_none(), "the v1 tags string is gone");
    assert!(note(&a, "n1")
        .ok_or("missing")?
        .tags
        .contains(&"late".to_string()));
    Ok(())
}

#[test]
fn a_document_from_a_newer_schema_is_refused() -> R {
    let d = doc(1)?;
    d.get_map(META)
        .insert("schema_version", SCHEMA_VERSION + 1)?;
    assert!(matches!(migrate(&d, 0), Err(ModelError::TooNew { .. })));
    Ok(())
}

/// Records what every event of `b` touched while `f` runs.
fn watched(b: &LoroDoc, f: impl FnOnce() -> R) -> Result<Changes, Box<dyn std::error::Error>> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Changes::default()));
    let sink = seen.clone();
    let _sub = b.subscribe_root(std::sync::Arc::new(move |e| {
        if let Ok(mut c) = sink.lock() {
            c.record(&e);
        }
    }));
    f()?;
    let out = seen.lock().map_err(|_| "poisoned")?.clone();
    Ok(out)
}

#[test]
fn a_remote_edit_of_one_note_names_only_that_note() -> R {
    let a = doc(1)?;
    for i in 0..20 {
        create_note(&a, &format!("n{i}"), "t", 1)?;
    }
    migrate(&a, 1)?;
    a.commit();
    let b = doc(2)?;
    sync(&a, &b)?;
    type Edit = Box<dyn Fn(&LoroDoc) -> Result<(), ModelError>>;
    let edits: [(&str, Edit); 7] = [
        (
            "body",
            Box::new(|d| splice_text(d, "n3", Field::Body, 0, 0, "x", 2)),
        ),
        (
            "title",
            Box::new(|d| splice_text(d, "n3", Field::Title, 0, 1, "T", 2)),
        ),
        ("task", Box::new(|d| add_task(d, "n3", "milk", 2))),
        (
            "task done",
            Box::new(|d| set_task_done(d, "n3", 0, true, 2)),
        ),
        ("tag", Box::new(|d| set_tag(d, "n3", "home", true, 2))),
        (
            "pin",
            Box::new(|d| set_flag(d, "n3", Flag::Pinned, true, 2)),
        ),
        ("purge", Box::new(|d| purge_note(d, "n3"))),
    ];
    for (what, edit) in edits {
        let from = a.oplog_vv();
        edit(&a)?;
        a.commit();
        let update = a.export(ExportMode::updates(&from))?;
        let changes = watched(&b, || {
            b.import(&update)?;
            Ok(())
        })?;
        let want: std::collections::BTreeSet<String> = ["n3".to_owned()].into();
        assert_eq!(changes.notes, want, "{what}");
        assert!(!changes.all && !changes.meta, "{what}: {changes:?}");
    }
    let changes = watched(&b, || {
        create_note(&b, "new", "fresh", 3)?;
        set_name(&b, "Renamed")?;
        b.commit();
        Ok(())
    })?;
    assert_eq!(changes.notes, ["new".to_owned()].into());
    assert!(changes.meta && !changes.all);
    Ok(())
}

#[test]
fn a_typed_change_keeps_a_remote_edit_the_field_had_not_shown_yet() -> R {
    let d = doc(1)?;
    create_note(&d, "n", "", 1)?;
    let body = |d: &LoroDoc| note(d, "n").map(|n| n.body).unwrap_or_default();
    assert!(set_text(&d, "n", Field::Body, "", "hello world", 2)?);
    // Keystrokes queued behind a slow write: each applies once, in order.
    assert!(set_text(
        &d,
        "n",
        Field::Body,
        "hello world",
        "hello world!",
        3
    )?);
    assert!(set_text(
        &d,
        "n",
        Field::Body,
        "hello world!",
        "hello world!!",
        3
    )?);
    assert_eq!(body(&d), "hello world!!");
    // A remote edit arrived ("X" at the start) that the field does not show yet: the user's
    // comma after "hello" lands after "hello", and the X stays.
    splice_text(&d, "n", Field::Body, 0, 0, "X", 4)?;
    assert!(set_text(
        &d,
        "n",
        Field::Body,
        "hello world!!",
        "hello, world!!",
        5
    )?);
    assert_eq!(body(&d), "Xhello, world!!");
    // Deleting across text the field never saw deletes only what the user selected.
    assert!(set_text(
        &d,
        "n",
        Field::Body,
        "hello, world!!",
        "hello, world",
        6
    )?);
    assert_eq!(body(&d), "Xhello, world");
    assert!(!set_text(&d, "n", Field::Body, "same", "same", 7)?);
    Ok(())
}

#[test]
fn update_note_reaches_the_wanted_note_with_edits_that_keep_matching_tasks() -> R {
    let d = doc(1)?;
    create_note(&d, "n1", "Trip", 1)?;
    for t in ["pack", "book", "call"] {
        add_task(&d, "n1", t, 1)?;
    }
    set_task_done(&d, "n1", 1, true, 1)?;
    d.commit();
    let task_id = |i: usize| -> Result<String, Box<dyn std::error::Error>> {
        let tasks = child_tasks(&note_map(&d, "n1").ok_or("note")?)?;
        match tasks.get(i) {
            Some(ValueOrContainer::Container(c)) => Ok(loro::ContainerTrait::id(&c).to_string()),
            _ => Err("no task".into()),
        }
    };
    let book = task_id(1)?;
    let mut wanted = note(&d, "n1").ok_or("note")?;
    wanted.title = "Trip to Lyon".into();
    wanted.body = "day one\nday two".into();
    wanted.tasks = vec![
        Task {
            text: "visa".into(),
            done: false,
        },
        Task {
            text: "book".into(),
            done: true,
        },
        Task {
            text: "call".into(),
            done: true,
        },
    ];
    wanted.tags = vec!["travel".into()];
    wanted.pinned = true;
    assert!(update_note(&d, &wanted, 2)?);
    d.commit();
    let got = note(&d, "n1").ok_or("note")?;
    assert_eq!(
        (
            got.title.as_str(),
            got.body.as_str(),
            &got.tasks,
            &got.tags,
            got.pinned
        ),
        (
            "Trip to Lyon",
            "day one\nday two",
            &wanted.tasks,
            &wanted.tags,
            true
        )
    );
    // "book" is the same task (its container), not deleted and re-added.
    assert_eq!(task_id(1)?, book);
    assert!(!update_note(&d, &got, 3)?, "nothing left to change");
    Ok(())
}
