// Sync when things go wrong: a revoked link, a tampering server, a server killed mid-batch, and
// two tabs of one profile (only one worker syncs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { startServer, SCREENSHOTS, profile, status, noteNamed, addNote, ownerWithLink, parsePull, replyLosingProxy, watchPushes, masterToken, linkParts, storedRecords } from './helpers.mjs';

/** The owner's master token, read from the profile's IndexedDB. */


test('a revoked link stops sync with the revoked status, turns editing off at once and offers the unsent edit as a backup', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'Before revocation');
    await b.page.goto(link);
    await noteNamed(b.page, 'Before revocation').waitFor({ timeout: 30_000 });
    // C holds the same link and does nothing: the live channel must tell it.
    const c = await profile();
    await c.page.goto(link);
    await noteNamed(c.page, 'Before revocation').waitFor({ timeout: 30_000 });
    await status(c.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    // B edits while offline: an edit the server has not seen when the link is revoked.
    await b.ctx.setOffline(true);
    await addNote(b.page, 'Edited after revocation');
    await a.page.getByTestId('share').click();
    await a.page.getByTestId('revoke').first().click();
    await a.page.getByTestId('link-row').filter({ hasText: 'revoked' }).waitFor({ timeout: 15_000 });
    await a.page.getByTestId('share-close').click();
    const revokedAt = Date.now();
    await c.page.locator('[data-testid=sync-status][data-code=token_revoked]').waitFor({ timeout: 15_000 });
    const tookMs = Date.now() - revokedAt;
    await c.page.getByTestId('new-title').waitFor({ state: 'detached' });
    console.log(`revocation reached an idle device in ${tookMs} ms`);
    await c.ctx.close();
    const ws = link.match(/join\/([0-9a-f-]{36})/)[1];
    const owner = await masterToken(a.page, ws);
    const before = await storedRecords(server.url, ws, owner);
    await b.ctx.setOffline(false);
    await b.page.locator('[data-testid=sync-status][data-code=token_revoked]').filter({ hasText: 'This link was revoked' }).waitFor({ timeout: 30_000 });
    await b.page.getByTestId('stopped').filter({ hasText: 'This link was revoked' }).waitFor();
    await noteNamed(b.page, 'Before revocation').waitFor();
    await noteNamed(b.page, 'Edited after revocation').waitFor();
    // Nothing more can reach the server: no edit controls, and the unsent edit is offered as a backup.
    await b.page.getByTestId('new-title').waitFor({ state: 'detached' });
    await noteNamed(b.page, 'Edited after revocation').click();
    assert.equal(await b.page.getByTestId('edit-title').evaluate((e) => e.readOnly), true, 'the editor is read-only');
    assert.equal(await b.page.getByTestId('edit-body').evaluate((e) => e.readOnly), true);
    const [download] = await Promise.all([
      b.page.waitForEvent('download'),
      b.page.getByTestId('stopped-backup').click(),
    ]);
    assert.match(download.suggestedFilename(), /\.hearth$/);
    await b.page.screenshot({ path: `${SCREENSHOTS}/revoked.png`, fullPage: true });
    // B has stopped (its push was refused): the server holds exactly what it held before.
    const after = await storedRecords(server.url, ws, owner);
    assert.deepEqual(after.map((r) => r.seq), before.map((r) => r.seq), 'nothing crossed after revocation');
    assert.equal(await noteNamed(a.page, 'Edited after revocation').count(), 0);
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('a tampered pull is reported as a chain mismatch and nothing is imported', async () => {
  const server = await startServer({ extraArgs: ['--test-tamper-pulls'] });
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'Kept locally');
    await a.page.locator('[data-testid=sync-status][data-code=chain_mismatch]').waitFor({ timeout: 30_000 });
    await noteNamed(a.page, 'Kept locally').waitFor();
    await b.page.goto(link);
    await b.page.locator('[data-testid=sync-status][data-code=chain_mismatch]').waitFor({ timeout: 30_000 });
    await b.page.getByTestId('note-count').filter({ hasText: '0 notes' }).waitFor();
    await b.page.screenshot({ path: `${SCREENSHOTS}/chain-mismatch.png`, fullPage: true });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('a server killed after storing a push but before answering it receives every edit exactly once', async () => {
  let server = await startServer();
  const { port, dataDir } = server;
  // The browser talks to the server through a proxy that, once armed, swallows the reply to the
  // next push and kills the server at that moment: the push is stored, its answer never arrives.
  const proxy = await replyLosingProxy(port, () => server.proc.kill('SIGKILL'));
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, proxy.url, 'n0');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    const ws = link.match(/join\/([0-9a-f-]{36})/)[1];
    const owner = await masterToken(a.page, ws);
    proxy.arm();
    for (let i = 1; i <= 12; i++) await addNote(a.page, `n${i}`);
    // Proof that a push was in flight at the kill: its reply was swallowed by the proxy.
    for (let i = 0; i < 300 && proxy.lost() === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(proxy.lost(), 1, 'a push reached the server and its reply was lost');
    // The first push opened the push socket; the lost reply was one of its frames.
    assert.equal(proxy.lostOn(), 'socket');
    // A server that cannot be reached reads like being offline, in words; the reason is behind a click.
    await a.page.locator('[data-testid=sync-status][data-code=unreachable]').filter({ hasText: 'Offline · edits are kept' }).waitFor({ timeout: 30_000 });
    const header = await a.page.locator('header.top').boundingBox();
    assert.ok(header.height < 80, `the header stays one line (${header.height}px)`);
    await a.page.getByTestId('sync-status').click();
    await a.page.getByTestId('status-details').filter({ hasText: 'Cannot sync with the server right now' }).waitFor();
    await a.page.screenshot({ path: `${SCREENSHOTS}/status-server-unreachable.png` });
    await a.page.getByTestId('sync-status').click();
    // A call that needs the server fails in one banner; it goes once the server answers again.
    await a.page.getByTestId('share').click();
    await a.page.getByTestId('share-write').click();
    await a.page.getByTestId('share-close').click();
    const banner = a.page.getByTestId('error');
    await banner.waitFor({ timeout: 30_000 });
    server = await startServer({ port, dataDir });
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 60_000 });
    await banner.waitFor({ state: 'detached', timeout: 10_000 });
    await a.page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 30_000 });
    await a.page.screenshot({ path: `${SCREENSHOTS}/status-recovered.png` });
    const records = await storedRecords(server.url, ws, owner);
    const seqs = records.map((r) => r.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'gap-free seqs');
    // The retried push carried the same key and bytes: had it been stored again (under a new
    // key), the same bytes would be there twice.
    const distinct = new Set(records.map((r) => r.bytes.toString('base64')));
    assert.equal(distinct.size, records.length, 'no update stored twice');
    await b.page.goto(link);
    await b.page.getByTestId('note-count').filter({ hasText: '13 notes' }).waitFor({ timeout: 30_000 });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    proxy.close();
    server.stop();
  }
});

test('a push socket that stops answering is given up after 30 s and the push is retried, stored once', async () => {
  const server = await startServer();
  const proxy = await replyLosingProxy(server.port, () => {});
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, proxy.url, 'n0');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    const ws = link.match(/join\/([0-9a-f-]{36})/)[1];
    const owner = await masterToken(a.page, ws);
    proxy.arm({ hang: true });
    await addNote(a.page, 'n1');
    for (let i = 0; i < 100 && proxy.lost() === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(proxy.lostOn(), 'socket', 'the push went over the socket and its reply was dropped');
    // Nothing comes back on the open socket; after 30 s the push is retried and acknowledged.
    await a.page.getByTestId('sync-status').filter({ hasText: 'not yet on the server' }).waitFor({ timeout: 5_000 });
    await a.page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 60_000 });
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    const records = await storedRecords(server.url, ws, owner);
    const distinct = new Set(records.map((r) => r.bytes.toString('base64')));
    assert.equal(distinct.size, records.length, 'the retried push was not stored twice');
    await b.page.goto(link.replace(proxy.url, server.url));
    await b.page.getByTestId('note-count').filter({ hasText: '2 notes' }).waitFor({ timeout: 30_000 });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    proxy.close();
    server.stop();
  }
});

test('two tabs of one profile: one worker syncs, both show every edit', async () => {
  const server = await startServer();
  const a = await profile();
  try {
    // Pushes seen per tab (requests of a page's dedicated workers are reported on the page).
    const pushes = new Map();
    const count = (p) => watchPushes(p, () => pushes.set(p, (pushes.get(p) ?? 0) + 1));
    count(a.page);
    await ownerWithLink(a.page, server.url, 'From tab 1');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    const tab2 = await a.ctx.newPage();
    count(tab2);
    await tab2.goto(server.url + '/');
    await noteNamed(tab2, 'From tab 1').waitFor({ timeout: 30_000 });
    await addNote(tab2, 'From tab 2');
    await noteNamed(a.page, 'From tab 2').waitFor({ timeout: 30_000 });
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /hearth_live_connections 1\n/, 'exactly one worker follows the live channel');
    // A push-socket frame of a worker is reported through its own target, possibly after the page
    // showed the result: wait for it a little.
    for (let i = 0; i < 50 && (pushes.get(a.page) ?? 0) < 2; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok((pushes.get(a.page) ?? 0) >= 2, `tab 1 pushed both notes (${pushes.get(a.page)})`);
    assert.equal(pushes.get(tab2) ?? 0, 0, 'the second tab never pushed');
    // Closing the syncing tab hands the role to the other one.
    await a.page.close();
    await addNote(tab2, 'After handover');
    await status(tab2).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    await tab2.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 30_000 });
  } finally {
    await a.ctx.close();
    server.stop();
  }
});

test('after many edits the syncing worker uploads a snapshot and a new device starts from it', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'c0');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    // 260 edits, in-page (the UI's own handlers), then wait until all are on the server. They are
    // spaced so that most are pushed one by one: edits the worker has not read yet are merged into
    // one stored update, and compaction counts the server's records (COMPACT_AFTER = 200).
    await a.page.evaluate(async () => {
      const el = document.querySelector('[data-testid=new-title]');
      for (let i = 1; i <= 260; i++) {
        el.value = `c${i}`;
        el.dispatchEvent(new Event('input', { bubbles: true }));
        el.form.requestSubmit();
        await new Promise((r) => setTimeout(r, 40));
      }
    });
    await a.page.getByTestId('note-count').filter({ hasText: '261 notes' }).waitFor({ timeout: 60_000 });
    const { ws, token } = linkParts(link);
    let first = null;
    for (let i = 0; i < 120 && first?.kind !== 1; i++) {
      const res = await fetch(`${server.url}/v1/workspaces/${ws}/updates?after=0`, { headers: { Authorization: `Bearer ${token}` } });
      first = parsePull(Buffer.from(await res.arrayBuffer()))[0];
      if (first?.kind !== 1) await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(first?.kind, 1, 'a pull from 0 starts with the uploaded snapshot');
    await b.page.goto(link);
    await b.page.getByTestId('note-count').filter({ hasText: '261 notes' }).waitFor({ timeout: 60_000 });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});
