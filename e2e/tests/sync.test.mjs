// Sync between two browser profiles through the real server (on the Postgres of scripts/test.sh):
// share by link, live edits, offline edits, read-only links.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, SCREENSHOTS, profile, status, noteNamed, addNote, shareLink } from './helpers.mjs';

test('two devices share a workspace by link, see each other live, and converge after offline edits', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    await a.page.goto(server.url + '/');
    await a.page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
    await addNote(a.page, 'Written offline-first on A');
    await a.page.getByTestId('connect').click();
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });

    const link = await shareLink(a.page, 'write');
    assert.match(link, /#\/join\/[0-9a-f-]{36}\?t=ey/);

    await b.page.goto(link);
    await noteNamed(b.page, 'Written offline-first on A').waitFor({ timeout: 30_000 });
    await status(b.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });

    // An edit on B shows on A with no action on A (live channel): well within the worker's 30 s
    // poll, so only the live channel can have brought it.
    await addNote(b.page, 'Added on B');
    await noteNamed(a.page, 'Added on B').waitFor({ timeout: 5_000 });
    // A types into a note body; B sees the text.
    await noteNamed(a.page, 'Added on B').click();
    await a.page.getByTestId('edit-body').fill('typed on A');
    await noteNamed(b.page, 'Added on B').click();
    await b.page.waitForFunction(() => document.querySelector('[data-testid=edit-body]')?.value === 'typed on A', null, { timeout: 5_000 });
    await a.page.screenshot({ path: `${SCREENSHOTS}/sync-a.png`, fullPage: true });
    await b.page.screenshot({ path: `${SCREENSHOTS}/sync-b.png`, fullPage: true });

    // Both go offline, both edit, both come back: nothing is lost.
    await a.ctx.setOffline(true);
    await b.ctx.setOffline(true);
    await status(a.page).filter({ hasText: 'offline' }).waitFor({ timeout: 15_000 });
    await addNote(a.page, 'Offline on A');
    await addNote(b.page, 'Offline on B');
    await a.page.screenshot({ path: `${SCREENSHOTS}/offline-a.png`, fullPage: true });
    await a.ctx.setOffline(false);
    await b.ctx.setOffline(false);
    await noteNamed(a.page, 'Offline on B').waitFor({ timeout: 45_000 });
    await noteNamed(b.page, 'Offline on A').waitFor({ timeout: 45_000 });
    for (const p of [a.page, b.page]) {
      await p.getByTestId('note-count').filter({ hasText: '4 notes' }).waitFor({ timeout: 30_000 });
    }
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('a read-only link shows no edit controls', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    await a.page.goto(server.url + '/');
    await a.page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
    await addNote(a.page, 'Only for reading');
    await a.page.getByTestId('connect').click();
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    const link = await shareLink(a.page, 'read');
    await b.page.goto(link);
    await noteNamed(b.page, 'Only for reading').waitFor({ timeout: 30_000 });
    await b.page.getByTestId('read-only').waitFor();
    await noteNamed(b.page, 'Only for reading').click();
    await b.page.getByTestId('editor').waitFor();
    // No control that edits exists, and the fields that show text cannot be typed into.
    for (const id of ['new-title', 'new-task', 'new-tag', 'pin', 'trash', 'restore', 'restore-version', 'connect', 'share', 'share-write', 'share-read']) {
      assert.equal(await b.page.getByTestId(id).count(), 0, `no ${id} on a read-only link`);
    }
    for (const id of ['edit-title', 'edit-body']) {
      assert.equal(await b.page.getByTestId(id).evaluate((el) => el.readOnly), true, `${id} is read-only`);
    }
    assert.equal(await b.page.getByRole('button', { name: /Delete task|Move up|Move down/ }).count(), 0);
    await b.page.screenshot({ path: `${SCREENSHOTS}/read-only.png`, fullPage: true });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});
