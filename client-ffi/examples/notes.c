/* A C program on Hearth's C API: join a share link, print the notes, add one, sync, print
 * the status.
 *
 *   cc examples/notes.c -Iinclude -L$TARGET/debug -lhearth_ffi -o notes
 *   LD_LIBRARY_PATH=$TARGET/debug ./notes notes.db 'http://host/#/join/…?t=…' "a note from C"
 *
 * Exit status 0, or 1 with the error ("code: message") on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include "hearth.h"

static int fail(const char *what, char *err) {
    fprintf(stderr, "notes: %s: %s\n", what, err ? err : "(no message)");
    hearth_string_free(err);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s DATA_FILE SHARE_LINK NEW_NOTE_TITLE\n", argv[0]);
        return 2;
    }
    char *err = NULL;
    HearthClient *h = hearth_open(argv[1], &err);
    if (!h) return fail("open", err);

    char *notebook = hearth_join(h, argv[2], &err);
    if (!notebook) { hearth_close(h); return fail("join", err); }
    printf("notebook %s\n", notebook);

    char *notes = hearth_notes_json(h, notebook, &err);
    if (!notes) { hearth_close(h); return fail("notes", err); }
    printf("notes %s\n", notes);
    hearth_string_free(notes);

    char *id = hearth_add_note(h, notebook, argv[3], "written in C", &err);
    if (!id) { hearth_close(h); return fail("add", err); }
    if (hearth_set_text(h, notebook, id, "body", "written in C, then edited", &err) != 0) {
        hearth_close(h);
        return fail("edit", err);
    }
    hearth_string_free(id);

    char *round = hearth_sync(h, notebook, &err);
    if (!round) { hearth_close(h); return fail("sync", err); }
    printf("synced %s\n", round);
    hearth_string_free(round);

    char *status = hearth_status_json(h, notebook, &err);
    if (!status) { hearth_close(h); return fail("status", err); }
    printf("status %s\n", status);
    hearth_string_free(status);

    /* A bad argument is an error, not a crash. */
    if (hearth_set_text(h, notebook, "no-such-note", "body", "x", &err) == 0) return 1;
    printf("refused %s\n", err);
    hearth_string_free(err);

    hearth_string_free(notebook);
    hearth_close(h);
    return 0;
}
