// Time and size at the edges: a minted link that really expires (while in use, and before use),
// and more than 1 MiB of edits made offline, pushed in several batches and pulled by another
// device in several pages (`Hearth-More`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, SCREENSHOTS, profile, status, noteNamed, addNote, ownerWithLink, shareLink, linkParts, watchPushes } from './helpers.mjs';

/** The owner's master token, read from the profile's IndexedDB. */
test('a link that expires stops sync with the expired status, and an expired link joins nothing', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  const c = await profile();
  try {
    await ownerWithLink(a.page, server.url, 'Shared for a moment');
    // The app's shortest link lasts an hour: its request is made to ask for 4 seconds on the way
    // out (the app still stores the link's keys on the server, as for any link).
    await a.ctx.route('**/v1/workspaces/*/tokens', async (route) => {
      const req = route.request();
      if (req.method() !== 'POST') return route.continue();
      const body = { ...JSON.parse(req.postData()), expires_in: 4 };
      return route.continue({ postData: JSON.stringify(body) });
    });
    const link = await shareLink(a.page, 'write');
    const minted = Date.now();
    assert.ok(linkParts(link).key, 'the link carries the notebook key');
    await b.page.goto(link);
    await noteNamed(b.page, 'Shared for a moment').waitFor({ timeout: 30_000 });
    // Past the expiry, B's next edit is refused: sync stops and says why; the edit stays local.
    await new Promise((r) => setTimeout(r, Math.max(0, minted + 5_500 - Date.now())));
    await addNote(b.page, 'After expiry');
    await b.page.locator('[data-testid=sync-status][data-code=token_expired]').filter({ hasText: 'This link has expired' }).waitFor({ timeout: 30_000 });
    await b.page.getByTestId('stopped').filter({ hasText: 'This link has expired' }).waitFor();
    await noteNamed(b.page, 'After expiry').waitFor();
    await b.page.screenshot({ path: `${SCREENSHOTS}/expired.png`, fullPage: true });
    // A new device opening the expired link gets one sentence and stores nothing.
    await c.page.goto(link);
    await c.page.getByTestId('error').filter({ hasText: 'expired' }).waitFor({ timeout: 30_000 });
    assert.equal(await noteNamed(c.page, 'Shared for a moment').count(), 0);
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    await c.ctx.close();
    server.stop();
  }
});

test('more than 1 MiB of offline edits goes up in several batches and comes down in several pages', async () => {
  // Small pull pages, so the joining device must follow Hearth-More.
  const server = await startServer({ extraArgs: ['--max-pull-bytes', '262144'] });
  const a = await profile();
  const b = await profile();
  const pushes = [];
  watchPushes(a.page, (n) => pushes.push(n));
  const pulls = [];
  b.page.on('response', (r) => {
    if (r.request().method() === 'GET' && /\/updates$/.test(new URL(r.url()).pathname)) pulls.push(r.headers()['hearth-more'] ?? '');
  });
  try {
    await a.page.goto(server.url + '/');
    await a.page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
    // 12 notes of ~120 KB each, before the notebook is connected: all of it is pending.
    for (let i = 0; i < 12; i++) {
      await addNote(a.page, `Big ${i}`);
      await noteNamed(a.page, `Big ${i}`).click();
      await a.page.getByTestId('edit-body').fill(`${i % 10} `.repeat(60_000));
    }
    await a.page.getByTestId('connect').click();
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 60_000 });
    await a.page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 60_000 });
    const total = pushes.reduce((s, n) => s + n, 0);
    assert.ok(total > 1024 * 1024, `more than 1 MiB was pushed (${total})`);
    assert.ok(pushes.length >= 2, `in several batches (${pushes})`);
    assert.ok(pushes.every((n) => n <= 1024 * 1024 + 64 * 1024), `each batch near or under 1 MiB (${pushes})`);
    const link = await shareLink(a.page, 'write');
    await b.page.goto(link);
    await b.page.getByTestId('note-count').filter({ hasText: '12 notes' }).waitFor({ timeout: 60_000 });
    await noteNamed(b.page, 'Big 11').click();
    await b.page.waitForFunction(() => document.querySelector('[data-testid=edit-body]')?.value.length === 120_000, null, { timeout: 30_000 });
    assert.ok(pulls.filter((m) => m === '1').length >= 2, `pages followed Hearth-More (${pulls})`);
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});
