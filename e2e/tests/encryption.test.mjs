// End-to-end encryption as a user meets it: notes typed in two browsers sync through a server
// that holds only ciphertext — its database (SQLite file or a pg_dump of Postgres), its backup
// and its logs never hold the text, and the link's key never reaches it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startServer, SCREENSHOTS, profile, status, noteNamed, addNote, ownerWithLink, shareLink, masterToken, linkParts, storedRecords } from './helpers.mjs';

/** Every file under `dir`, concatenated (a SQLite database with its WAL and journal). */
function filesUnder(dir) {
  return Buffer.concat(readdirSync(dir).map((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : readFileSync(path);
  }));
}

function pgDump(url) {
  const bin = readdirSync('/usr/lib/postgresql').map((v) => `/usr/lib/postgresql/${v}/bin/pg_dump`)[0];
  return execFileSync(bin, ['--dbname', url, '--data-only'], { maxBuffer: 1 << 30 });
}

async function upToDate(page) {
  await status(page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
  await page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 30_000 });
}

const backends = ['sqlite', ...(process.env.HEARTH_TEST_PG_URL ? ['postgres'] : [])];

for (const backend of backends) {
  test(`a note's text never reaches the server in the clear (${backend}): not its database, its backup or its logs`, async () => {
    const marker = `plaintext-marker-${randomUUID()}`;
    const server = await startServer({
      databaseUrl: backend === 'sqlite' ? '' : process.env.HEARTH_TEST_PG_URL,
      env: { RUST_LOG: 'debug' },
      captureLogs: true,
    });
    const a = await profile();
    const b = await profile();
    let stopped = false;
    try {
      const link = await ownerWithLink(a.page, server.url, `${marker} title`);
      const { ws, key } = linkParts(link);
      assert.match(key ?? '', /^[A-Za-z0-9_-]{43}$/, 'the link carries the notebook key');
      await noteNamed(a.page, `${marker} title`).click();
      await a.page.getByTestId('edit-body').fill(`${marker} body`);
      // B opens the link and reads the owner's text; its own edit comes back to A.
      await b.page.goto(link);
      await noteNamed(b.page, `${marker} title`).waitFor({ timeout: 30_000 });
      await addNote(b.page, `${marker} from b`);
      await noteNamed(a.page, `${marker} from b`).waitFor({ timeout: 30_000 });
      await upToDate(a.page);
      await upToDate(b.page);
      await b.page.screenshot({ path: `${SCREENSHOTS}/encrypted-member.png`, fullPage: true });
      // The server's backup holds the notebook, sealed.
      const master = await masterToken(a.page, ws);
      const res = await fetch(`${server.url}/v1/workspaces/${ws}/backup`, { headers: { Authorization: `Bearer ${master}` } });
      assert.equal(res.status, 200);
      const backup = Buffer.from(await res.arrayBuffer());
      assert.ok(backup.length > 200 && backup.includes(ws), 'the backup is of this notebook');
      assert.ok(!backup.includes(marker), 'the backup holds no plaintext');
      // The database, read after the server stopped (everything flushed).
      await server.stopped();
      stopped = true;
      const stored = backend === 'sqlite' ? filesUnder(server.dataDir) : pgDump(process.env.HEARTH_TEST_PG_URL);
      assert.ok(stored.includes(ws), 'the database read is the one that holds the notebook');
      assert.ok(!stored.includes(marker), 'the database holds no plaintext');
      const logs = server.logs.join('');
      assert.ok(logs.includes(ws), 'the debug log was captured');
      assert.ok(!logs.includes(marker), 'the logs hold no plaintext');
      assert.ok(!logs.includes(key) && !stored.includes(key), 'the link key never reached the server');
    } finally {
      await a.ctx.close();
      await b.ctx.close();
      if (!stopped) server.stop();
    }
  });
}

/** A browser's workspace record for `ws` (IndexedDB). */
async function storedRecord(page, ws) {
  return page.evaluate(async (id) => {
    const db = await new Promise((res, rej) => { const r = indexedDB.open('hearth'); r.onsuccess = () => res(r.result); r.onerror = rej; });
    return new Promise((res) => { const r = db.transaction('workspaces').objectStore('workspaces').get(id); r.onsuccess = () => res(JSON.parse(r.result)); });
  }, ws);
}

/** The notebook keys a browser keeps for `ws`. */
async function storedRing(page, ws) {
  return (await storedRecord(page, ws)).keys;
}

test('revoking a link rotates the key: the other member syncs on, and what is written after is under a key the revoked one never got', async () => {
  const server = await startServer();
  const a = await profile();
  const members = [await profile(), await profile()];
  try {
    const links = [await ownerWithLink(a.page, server.url, 'Before the revocation'), await shareLink(a.page, 'write')];
    const { ws } = linkParts(links[0]);
    for (const [i, device] of members.entries()) {
      await device.page.goto(links[i]);
      await noteNamed(device.page, 'Before the revocation').waitFor({ timeout: 30_000 });
      await upToDate(device.page);
      assert.deepEqual((await storedRing(device.page, ws)).epochs.map((k) => k.epoch), [1]);
    }
    const owner = await masterToken(a.page, ws);
    const head = Math.max(...(await storedRecords(server.url, ws, owner)).map((r) => r.seq));
    const join = (token) => fetch(`${server.url}/v1/workspaces/${ws}`, { headers: { Authorization: `Bearer ${token}` } });
    // The owner revokes the first link the share dialog lists (links made in the same second are
    // listed in either order: which member it was is read from the server).
    await a.page.getByTestId('share').click();
    await a.page.getByTestId('revoke').first().click();
    await a.page.getByTestId('link-row').filter({ hasText: 'revoked' }).waitFor({ timeout: 15_000 });
    await a.page.getByTestId('share-close').click();
    const refused = await Promise.all(links.map(async (l) => (await join(linkParts(l).token)).status === 401));
    assert.deepEqual(refused.filter(Boolean).length, 1, 'exactly one link is revoked');
    const r = refused.indexOf(true);
    const [revoked, kept, keptLink] = [members[r], members[1 - r], links[1 - r]];
    await addNote(a.page, 'After the revocation');
    // The other member switches to the new key with no action and reads on; the revoked one is
    // refused and reads nothing new.
    await noteNamed(kept.page, 'After the revocation').waitFor({ timeout: 30_000 });
    assert.deepEqual((await storedRing(kept.page, ws)).epochs.map((k) => k.epoch), [1, 2]);
    await revoked.page.locator('[data-testid=sync-status][data-code=token_revoked]').waitFor({ timeout: 30_000 });
    assert.equal(await noteNamed(revoked.page, 'After the revocation').count(), 0);
    assert.deepEqual((await storedRing(revoked.page, ws)).epochs.map((k) => k.epoch), [1], 'the revoked member never got epoch 2');
    // Everything written after the revocation is sealed under epoch 2 (byte 1 after the 0xE6 mark).
    await upToDate(a.page);
    const after = (await storedRecords(server.url, ws, owner)).filter((rec) => rec.seq > head);
    assert.ok(after.length > 0, 'the new note is on the server');
    for (const rec of after) assert.deepEqual([rec.bytes[0], rec.bytes[1]], [0xe6, 2], `seq ${rec.seq} is under epoch 2`);
    // The join call gives each link only its own wrapped keys: the kept link gets epoch 2.
    const keptInfo = await (await join(linkParts(keptLink).token)).json();
    assert.deepEqual(keptInfo.keys.map((k) => k.epoch), [1, 2]);
    await kept.page.screenshot({ path: `${SCREENSHOTS}/rotated-member.png`, fullPage: true });
  } finally {
    await a.ctx.close();
    for (const m of members) await m.ctx.close();
    server.stop();
  }
});

test('a server that shows two members different histories is caught by both, with the server_fork status', async () => {
  const first = await startServer({ databaseUrl: '' });
  const a = await profile();
  const b = await profile();
  let server = first;
  try {
    const link = await ownerWithLink(a.page, first.url, 'Before the fork');
    const { ws } = linkParts(link);
    await b.page.goto(link);
    await noteNamed(b.page, 'Before the fork').waitFor({ timeout: 30_000 });
    await upToDate(a.page);
    await upToDate(b.page);
    const owner = await masterToken(a.page, ws);
    const head = Math.max(...(await storedRecords(first.url, ws, owner)).map((r) => r.seq));
    // The same server, data and address, now forking at the next seq: members are shown a
    // replay there, the owner the real log; each view's chain verifies on its own.
    await first.stopped();
    server = await startServer({ databaseUrl: '', dataDir: first.dataDir, port: first.port, extraArgs: ['--test-fork-at-seq', String(head + 1)] });
    await addNote(a.page, 'Only in the owner’s view');
    await upToDate(a.page);
    const pulled = async (page, seq) => {
      for (let i = 0; i < 100 && (await storedRecord(page, ws)).last_pulled_seq < seq; i++) await new Promise((r) => setTimeout(r, 200));
      assert.ok((await storedRecord(page, ws)).last_pulled_seq >= seq, `pulled up to ${seq}`);
    };
    await pulled(b.page, head + 1);
    assert.equal(await noteNamed(b.page, 'Only in the owner’s view').count(), 0, 'B was shown the replay');
    // Each side seals an edit with its own view of seq head+1 as the witness (a reload makes the
    // tab read its cursor); B's waits offline so that both cross.
    await b.page.reload();
    await noteNamed(b.page, 'Before the fork').waitFor({ timeout: 30_000 });
    await b.ctx.setOffline(true);
    await addNote(b.page, 'From B’s view');
    await a.page.reload();
    await noteNamed(a.page, 'Only in the owner’s view').waitFor({ timeout: 30_000 });
    await addNote(a.page, 'From the owner’s view');
    await upToDate(a.page);
    await b.ctx.setOffline(false);
    for (const device of [a, b]) {
      await device.page.locator('[data-testid=sync-status][data-code=server_fork]').waitFor({ timeout: 30_000 });
      await device.page.getByTestId('stopped').filter({ hasText: 'different histories' }).waitFor();
    }
    await b.page.screenshot({ path: `${SCREENSHOTS}/server-fork.png`, fullPage: true });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('an encrypted copy with its keys restores in a fresh browser with its passphrase, and a wrong one says so', async () => {
  const server = await startServer();
  const a = await profile();
  const c = await profile();
  try {
    const marker = `backup-marker-${randomUUID()}`;
    for (const p of [a.page, c.page]) {
      await p.goto(server.url + '/');
      await p.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
    }
    await addNote(a.page, marker);
    await a.page.getByTestId('tab-backup').click();
    await a.page.getByTestId('backup-passphrase').fill('correct horse battery');
    const [download] = await Promise.all([a.page.waitForEvent('download'), a.page.getByTestId('backup-keys').click()]);
    const file = join(mkdtempSync(join(tmpdir(), 'hearth-backup-')), 'encrypted.hearth');
    await download.saveAs(file);
    assert.ok(!readFileSync(file).includes(marker), 'the file holds no plaintext');
    await c.page.getByTestId('tab-backup').click();
    const restore = async (passphrase) => {
      await c.page.getByTestId('restore-passphrase').fill(passphrase);
      await c.page.getByTestId('restore-file').setInputFiles([]);
      await c.page.getByTestId('restore-file').setInputFiles(file);
    };
    await restore('');
    await c.page.getByTestId('error').filter({ hasText: 'enter the passphrase' }).waitFor({ timeout: 30_000 });
    await restore('wrong horse battery');
    await c.page.getByTestId('error').filter({ hasText: 'passphrase does not open' }).waitFor({ timeout: 30_000 });
    await c.page.getByTestId('tab-notebooks').click();
    assert.equal(await c.page.getByTestId('notebook').count(), 1, 'refused restores stored nothing');
    await c.page.getByTestId('tab-backup').click();
    await restore('correct horse battery');
    await c.page.getByTestId('notice').filter({ hasText: 'Backup restored' }).waitFor({ timeout: 30_000 });
    assert.equal(await c.page.getByTestId('error').count(), 0, 'the wrong passphrase\'s error is gone');
    await c.page.getByTestId('tab-notes').click();
    await noteNamed(c.page, marker).waitFor({ timeout: 30_000 });
    await c.page.screenshot({ path: `${SCREENSHOTS}/encrypted-backup-restored.png`, fullPage: true });
  } finally {
    await a.ctx.close();
    await c.ctx.close();
    server.stop();
  }
});

/**
 * Turns the notebook this fresh browser just made into one as an earlier Hearth kept it: no keys,
 * nothing sealed (its record without `keys`, its sealed pending updates and open cache gone), then
 * reloads — the app then opens, migrates and names it in the clear, as it did before encryption.
 */
async function asBeforeEncryption(page, url) {
  await page.goto(url + '/');
  await page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
  await page.evaluate(async () => {
    const db = await new Promise((res, rej) => { const r = indexedDB.open('hearth'); r.onsuccess = () => res(r.result); r.onerror = rej; });
    const done = (r) => new Promise((res, rej) => { r.onsuccess = () => res(r.result); r.onerror = rej; });
    const tx = db.transaction(['workspaces', 'pending', 'snapshots'], 'readwrite');
    const ids = await done(tx.objectStore('workspaces').getAllKeys());
    for (const id of ids) {
      const record = JSON.parse(await done(tx.objectStore('workspaces').get(id)));
      delete record.keys;
      await done(tx.objectStore('workspaces').put(JSON.stringify(record), id));
      await done(tx.objectStore('pending').delete(IDBKeyRange.bound(`${id}/`, `${id}/\uffff`)));
      await done(tx.objectStore('snapshots').delete(`${id}:open`));
    }
    await new Promise((res) => { tx.oncomplete = res; });
    db.close();
  });
  await page.reload();
  await page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
}

test('the owner turns encryption on for a notebook made before it: the past still reads, everything after is sealed, and a member who opens the new link loses nothing', async () => {
  const before = `clear-before-${randomUUID()}`;
  const after = `sealed-after-${randomUUID()}`;
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    await asBeforeEncryption(a.page, server.url);
    const plainLink = await ownerWithLink(a.page, server.url, before);
    const { ws, key } = linkParts(plainLink);
    assert.equal(key, null, 'a plain notebook\'s link carries no key');
    await b.page.goto(plainLink);
    await noteNamed(b.page, before).waitFor({ timeout: 30_000 });
    await upToDate(a.page);
    await upToDate(b.page);
    const owner = await masterToken(a.page, ws);
    const head = Math.max(...(await storedRecords(server.url, ws, owner)).map((r) => r.seq));
    assert.ok((await storedRecords(server.url, ws, owner)).some((r) => r.bytes.includes(before)), 'it really was in the clear');

    // The member types offline: its plain update waits in its pending queue.
    await b.ctx.setOffline(true);
    await addNote(b.page, 'typed offline before the switch');
    // The owner turns it on (one-way, after a confirmation).
    await a.page.getByTestId('share').click();
    a.page.once('dialog', (d) => d.accept());
    await a.page.getByTestId('encrypt').click();
    await a.page.getByTestId('encrypted-badge').waitFor({ timeout: 30_000 });
    await a.page.getByTestId('notice').filter({ hasText: 'End-to-end encryption is on. 1 link' }).waitFor({ timeout: 30_000 });
    await a.page.getByTestId('link-row').filter({ hasText: 'revoked' }).waitFor({ timeout: 15_000 });
    await a.page.getByTestId('share-close').click();
    await addNote(a.page, after);
    await upToDate(a.page);
    const later = (await storedRecords(server.url, ws, owner)).filter((r) => r.seq > head);
    assert.ok(later.length > 0, 'the new note is on the server');
    for (const rec of later) {
      assert.equal(rec.bytes[0], 0xe6, `seq ${rec.seq} is sealed`);
      assert.ok(!rec.bytes.includes(after), `seq ${rec.seq} holds no plaintext`);
    }
    // Back online, the member's plain link is refused; its edit stays on its device.
    await b.ctx.setOffline(false);
    await b.page.locator('[data-testid=sync-status][data-code=token_revoked]').waitFor({ timeout: 30_000 });
    // The owner sends a new link; the member opens it on the same browser.
    const newLink = await shareLink(a.page, 'write');
    assert.match(linkParts(newLink).key ?? '', /^[A-Za-z0-9_-]{43}$/);
    await b.page.goto(newLink);
    await noteNamed(b.page, after).waitFor({ timeout: 30_000 });
    await noteNamed(a.page, 'typed offline before the switch').waitFor({ timeout: 30_000 });
    await upToDate(b.page);
    for (const rec of (await storedRecords(server.url, ws, owner)).filter((r) => r.seq > head)) {
      assert.equal(rec.bytes[0], 0xe6, `seq ${rec.seq} is sealed`);
    }
    // Reloaded, both read the plain past and the sealed present, with nothing quarantined.
    for (const page of [a.page, b.page]) {
      await page.reload();
      await noteNamed(page, before).waitFor({ timeout: 30_000 });
      await noteNamed(page, after).waitFor({ timeout: 30_000 });
      await noteNamed(page, 'typed offline before the switch').waitFor({ timeout: 30_000 });
      assert.equal(await page.getByTestId('quarantine').count(), 0);
    }
    await a.page.screenshot({ path: `${SCREENSHOTS}/encrypted-later.png`, fullPage: true });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});
