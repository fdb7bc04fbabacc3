// The client sync core in a real browser: two tabs editing at the same moment, hostile bytes from a
// member with a write link, and share links that must never weaken or litter the device.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { startServer, SCREENSHOTS, profile, status, noteNamed, addNote, ownerWithLink, parsePull, shareLink, linkParts } from './helpers.mjs';

/** One push record: key_len u8 | key | len u32 | bytes. */
function pushRecord(key, bytes) {
  const k = Buffer.from(key);
  const head = Buffer.alloc(1 + k.length + 4);
  head.writeUInt8(k.length, 0);
  k.copy(head, 1);
  head.writeUInt32BE(bytes.length, 1 + k.length);
  return Buffer.concat([head, bytes]);
}

test('two tabs editing at the same moment both reach another browser', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'Start');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    const tab2 = await a.ctx.newPage();
    tab2.on('pageerror', (e) => a.errors.push(String(e)));
    await tab2.goto(server.url + '/');
    await noteNamed(tab2, 'Start').waitFor({ timeout: 30_000 });
    // Both tabs edit at once, several times, each through its own engine session.
    const burst = async (page, prefix) => {
      for (let i = 0; i < 5; i++) await addNote(page, `${prefix} ${i}`);
    };
    await Promise.all([burst(a.page, 'Tab one'), burst(tab2, 'Tab two')]);
    await b.page.goto(link);
    await b.page.getByTestId('note-count').filter({ hasText: '11 notes' }).waitFor({ timeout: 60_000 });
    for (const prefix of ['Tab one', 'Tab two']) {
      for (let i = 0; i < 5; i++) await noteNamed(b.page, `${prefix} ${i}`).waitFor();
    }
    // And each tab sees the other's edits (no diverged tab).
    await a.page.getByTestId('note-count').filter({ hasText: '11 notes' }).waitFor({ timeout: 30_000 });
    await tab2.getByTestId('note-count').filter({ hasText: '11 notes' }).waitFor({ timeout: 30_000 });
    await b.page.screenshot({ path: `${SCREENSHOTS}/two-tabs-at-once.png`, fullPage: true });
    assert.deepEqual([...a.errors, ...b.errors], [], 'no page errors');
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('another tab is shown an edit before its write commits, with the bytes its Local then says are stored', async () => {
  const server = await startServer();
  const a = await profile();
  try {
    await ownerWithLink(a.page, server.url, 'Start');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    const tab2 = await a.ctx.newPage();
    tab2.on('pageerror', (e) => a.errors.push(String(e)));
    await tab2.goto(server.url + '/');
    await noteNamed(tab2, 'Start').waitFor({ timeout: 30_000 });
    await status(tab2).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    // What the second tab hears on the channel, in order.
    await tab2.evaluate(() => {
      window.heard = [];
      new BroadcastChannel('hearth-sync').onmessage = (e) => {
        const msg = JSON.parse(e.data).msg;
        const [kind] = Object.keys(msg);
        window.heard.push({ kind, update: msg[kind].update ?? null });
      };
    });
    await addNote(a.page, 'Shown first');
    await noteNamed(tab2, 'Shown first').waitFor({ timeout: 30_000 });
    await tab2.waitForFunction(() => window.heard.some((m) => m.kind === 'local' && m.update), null, { timeout: 30_000 });
    const heard = await tab2.evaluate(() => window.heard);
    const shown = heard.findIndex((m) => m.kind === 'shown');
    const local = heard.findIndex((m) => m.kind === 'local' && m.update);
    assert.ok(shown >= 0, `a Shown broadcast came: ${heard.map((m) => m.kind)}`);
    assert.ok(shown < local, 'before the Local one');
    assert.deepEqual(heard[shown].update, heard[local].update, 'the bytes shown are the bytes stored');
    // Edits built on it in the second tab at once, while the first keeps editing: nothing diverges.
    await Promise.all([addNote(a.page, 'From one'), addNote(tab2, 'From two')]);
    for (const page of [a.page, tab2]) {
      await page.getByTestId('note-count').filter({ hasText: '4 notes' }).waitFor({ timeout: 30_000 });
    }
    assert.deepEqual(a.errors, [], 'no page errors');
  } finally {
    await a.ctx.close();
    server.stop();
  }
});

test('a garbage update and a garbage snapshot from a write link brick no device', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'Valid one');
    await b.page.goto(link);
    await noteNamed(b.page, 'Valid one').waitFor({ timeout: 30_000 });
    const { ws, token } = linkParts(link);
    const auth = { Authorization: `Bearer ${token}` };
    // The member's write token pushes bytes that are not Loro at all…
    const push = await fetch(`${server.url}/v1/workspaces/${ws}/updates`, {
      method: 'POST', headers: { ...auth, 'Content-Type': 'application/octet-stream' },
      body: pushRecord('hostile-1', Buffer.from('definitely not a loro update')),
    });
    assert.equal(push.status, 200);
    const { seqs } = await push.json();
    // …and tries to replace history with a garbage snapshot: only the owner may.
    const snap = await fetch(`${server.url}/v1/workspaces/${ws}/snapshot?covers=${seqs[0]}`, {
      method: 'PUT', headers: { ...auth, 'Content-Type': 'application/octet-stream' }, body: Buffer.from('garbage'),
    });
    assert.equal(snap.status, 403);
    const pulled = parsePull(Buffer.from(await (await fetch(`${server.url}/v1/workspaces/${ws}/updates?after=0`, { headers: auth })).arrayBuffer()));
    assert.ok(pulled.every((r) => r.kind === 0), 'no snapshot was stored');
    await addNote(a.page, 'Valid two');
    for (const device of [a, b]) {
      await noteNamed(device.page, 'Valid two').waitFor({ timeout: 30_000 });
      await device.page.getByTestId('quarantine').filter({ hasText: `1 update from this server could not be read (seq ${seqs[0]})` }).waitFor({ timeout: 30_000 });
      // Reopening still works and shows every valid note.
      await device.page.reload();
      await noteNamed(device.page, 'Valid one').waitFor({ timeout: 30_000 });
      await noteNamed(device.page, 'Valid two').waitFor();
      await device.page.getByTestId('quarantine').waitFor();
    }
    // A new device joining later opens too.
    const c = await profile();
    try {
      await c.page.goto(link);
      await noteNamed(c.page, 'Valid two').waitFor({ timeout: 30_000 });
      await c.page.getByTestId('quarantine').waitFor({ timeout: 30_000 });
      await c.page.screenshot({ path: `${SCREENSHOTS}/quarantine.png`, fullPage: true });
      assert.deepEqual(c.errors, []);
    } finally {
      await c.ctx.close();
    }
    assert.deepEqual([...a.errors, ...b.errors], [], 'no page errors');
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('a share link never replaces the owner token, and a bad link stores nothing', async () => {
  const server = await startServer();
  const a = await profile();
  try {
    const writeLink = await ownerWithLink(a.page, server.url, 'Owned here');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    // Someone sends the owner a read-only link to the owner's own notebook.
    const readLink = await shareLink(a.page, 'read');
    const role = JSON.parse(Buffer.from(linkParts(readLink).token.split('.')[1], 'base64url')).role;
    assert.equal(role, 'read', 'a read-only link was minted');
    await a.page.goto('about:blank');
    await a.page.goto(readLink);
    await a.page.getByTestId('workspace-name').waitFor();
    await noteNamed(a.page, 'Owned here').waitFor({ timeout: 30_000 });
    // Still the owner: can edit, share, and the edit syncs.
    await addNote(a.page, 'Still mine');
    await a.page.getByTestId('share').waitFor();
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    const { ws } = linkParts(writeLink);
    const owned = await a.page.evaluate(async (id) => {
      const db = await new Promise((res, rej) => { const r = indexedDB.open('hearth'); r.onsuccess = () => res(r.result); r.onerror = rej; });
      const rec = await new Promise((res) => { const r = db.transaction('workspaces').objectStore('workspaces').get(id); r.onsuccess = () => res(JSON.parse(r.result)); });
      return rec.role;
    }, ws);
    assert.equal(owned, 'master');
    // Bad links: not a notebook id, a damaged token: one clear sentence, nothing stored.
    const count = async () => a.page.evaluate(async () => {
      const db = await new Promise((res, rej) => { const r = indexedDB.open('hearth'); r.onsuccess = () => res(r.result); r.onerror = rej; });
      return new Promise((res) => { const r = db.transaction('workspaces').objectStore('workspaces').count(); r.onsuccess = () => res(r.result); });
    });
    const before = await count();
    for (const bad of [`${server.url}/#/join/not-a-uuid?t=garbage`, `${server.url}/#/join/${crypto.randomUUID()}?t=a.b.c`]) {
      await a.page.goto('about:blank');
      await a.page.goto(bad);
      await a.page.getByTestId('error').filter({ hasText: /link/ }).waitFor({ timeout: 30_000 });
    }
    await a.page.screenshot({ path: `${SCREENSHOTS}/bad-link.png`, fullPage: true });
    assert.equal(await count(), before, 'no junk notebook was stored');
    assert.deepEqual(a.errors, []);
  } finally {
    await a.ctx.close();
    server.stop();
  }
});

test('a share link opened in a tab already on Hearth joins without a reload', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'Shared by A');
    // B already has Hearth open on its own notebook.
    await b.page.goto(server.url + '/');
    await b.page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor({ timeout: 30_000 });
    await addNote(b.page, 'Only on B');
    await b.page.evaluate(() => { window.stillThisPage = true; });
    // The link is opened in the same tab: only the fragment changes.
    await b.page.evaluate((hash) => { location.hash = hash; }, new URL(link).hash);
    await noteNamed(b.page, 'Shared by A').waitFor({ timeout: 30_000 });
    assert.equal(await b.page.evaluate(() => window.stillThisPage), true, 'joined without a reload');
    assert.equal(await b.page.evaluate(() => location.hash), '', 'the token is taken out of the address bar');
    await b.page.screenshot({ path: `${SCREENSHOTS}/join-by-hashchange.png`, fullPage: true });
    assert.deepEqual([...a.errors, ...b.errors], [], 'no page errors');
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('forgetting a notebook with unsent edits says how many and downloads a backup first', async () => {
  const server = await startServer();
  const a = await profile();
  try {
    await a.page.goto(server.url + '/');
    await a.page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
    await addNote(a.page, 'Only here');
    await addNote(a.page, 'Also only here');
    await a.page.getByTestId('tab-notebooks').click();
    let question = '';
    a.page.once('dialog', (d) => { question = d.message(); d.accept(); });
    const [download] = await Promise.all([
      a.page.waitForEvent('download', { timeout: 30_000 }),
      a.page.getByTestId('leave').click(),
    ]);
    // The notebook's creation and the two notes, none on a server. (No count: unsent edits are
    // merged into fewer stored updates, so a number of updates is not a number of edits.)
    assert.match(question, /^Some edits of this notebook are only on this device/);
    assert.match(download.suggestedFilename(), /\.hearth$/);
    await a.page.getByTestId('tab-notes').click();
    await a.page.getByTestId('note-count').filter({ hasText: '0 notes' }).waitFor({ timeout: 30_000 });
    assert.deepEqual(a.errors, []);
  } finally {
    await a.ctx.close();
    server.stop();
  }
});
