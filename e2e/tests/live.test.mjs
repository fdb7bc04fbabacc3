// The live path: a small edit arrives inside the live event, tentatively, and its marker makes it
// stored (no pull); missed events (a gap) and a tampered inline record make the receiver pull
// instead, and it shows the real text. Pushes go
// over the push socket once it is open, and over HTTP while it is not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, profile, liveProxy, tamperRecord, noteNamed, status, ownerWithLink, addNote, SCREENSHOTS } from './helpers.mjs';

const body = (page) => page.evaluate(() => document.querySelector('[data-testid=edit-body]')?.value);

test('a live edit arrives inline with no pull; a missed event and a tampered record fall back to a pull that shows the real text', async () => {
  const server = await startServer();
  const proxy = await liveProxy(server.port);
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'Shared live');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    // B reaches the server through the proxy (the link's origin is the server it syncs with).
    await b.page.goto(link.replace(server.url, proxy.url));
    await noteNamed(b.page, 'Shared live').click({ timeout: 30_000 });
    await status(b.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    await noteNamed(a.page, 'Shared live').click();
    const typeOnA = async (text) => a.page.getByTestId('edit-body').fill(text);
    const seen = (text) => b.page.waitForFunction((want) => document.querySelector('[data-testid=edit-body]')?.value === want, text, { timeout: 10_000 });

    // Inline: the edit shows on B and B made no pull for it. First let B's joining pulls settle
    // (no pull for a whole second).
    let pulls = proxy.pulls();
    for (let i = 0; i < 30; i++) {
      await b.page.waitForTimeout(1000);
      if (proxy.pulls() === pulls) break;
      pulls = proxy.pulls();
    }
    const inlineBefore = proxy.inline();
    await typeOnA('one');
    await seen('one');
    assert.equal(proxy.pulls(), pulls, 'no pull for an inline edit');
    assert.ok(proxy.inline() > inlineBefore, 'the edit came inline');

    // A gap: the next edit's events (its tentative record, then its marker) are lost on the way;
    // the next edit's record does not follow B's cursor, its marker makes B pull, and B shows both.
    let drop = 'record';
    proxy.setOnEvent((e) => {
      const ev = JSON.parse(e);
      if (drop === 'record' && ev.record) { drop = 'marker'; return null; }
      if (drop === 'marker' && ev.chain) { drop = null; return null; }
      return e;
    });
    await typeOnA('one two');
    await b.page.waitForTimeout(300);
    assert.equal(await body(b.page), 'one', 'the dropped edit is not there yet');
    await typeOnA('one two three');
    await seen('one two three');
    assert.ok(proxy.pulls() > pulls, 'the gap was filled by a pull');

    // A tampered inline record: refused (never stored, nothing quarantined), pulled instead.
    pulls = proxy.pulls();
    let tamper = true;
    proxy.setOnEvent((e) => {
      const ev = JSON.parse(e);
      if (tamper && ev.record) { tamper = false; return JSON.stringify({ ...ev, record: tamperRecord(ev.record) }); }
      return e;
    });
    await typeOnA('one two three four');
    await seen('one two three four');
    assert.equal(tamper, false, 'a record was tampered with');
    assert.ok(proxy.pulls() > pulls, 'the tampered record was replaced by a pull');
    assert.equal(await b.page.getByTestId('quarantine').count(), 0, 'nothing unreadable was stored');
    await b.page.screenshot({ path: `${SCREENSHOTS}/live-b.png`, fullPage: true });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    proxy.close();
    server.stop();
  }
});

test('the push socket opens with the live channel and carries the edits, and when the server restarts they go over HTTP until it reopens, none lost', async () => {
  let server = await startServer();
  const { port, dataDir } = server;
  const a = await profile();
  const b = await profile();
  // Where A's pushes went: 'http' (a POST) or 'socket' (a push-socket request).
  const pushes = [];
  let opened = 0; // push sockets A opened
  a.page.on('request', (r) => {
    if (r.method() === 'POST' && /\/updates$/.test(new URL(r.url()).pathname)) pushes.push('http');
  });
  a.page.on('websocket', (ws) => {
    if (!/\/socket$/.test(new URL(ws.url()).pathname)) return;
    opened++;
    ws.on('framesent', () => pushes.push('socket'));
  });
  const settle = async (page) => {
    await status(page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    await page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 30_000 });
  };
  // Frames of a worker's socket are reported through its own target: give them a moment.
  const count = async (kind, want) => {
    for (let i = 0; i < 50 && pushes.filter((p) => p === kind).length < want; i++) await a.page.waitForTimeout(100);
    return pushes.filter((p) => p === kind).length;
  };
  try {
    const link = await ownerWithLink(a.page, server.url, 'n0');
    await settle(a.page);
    // A reopened app opens its socket when its live channel connects, before any edit, so even the
    // first edit after opening goes over it.
    const before = opened;
    await a.page.reload();
    for (let i = 0; i < 100 && opened === before; i++) await a.page.waitForTimeout(100);
    assert.ok(opened > before, 'the reopened app opened its push socket without an edit');
    const first = pushes.length;
    await b.page.goto(link);
    await noteNamed(b.page, 'n0').waitFor({ timeout: 30_000 });
    for (let i = 1; i <= 3; i++) {
      await addNote(a.page, `n${i}`);
      await noteNamed(b.page, `n${i}`).waitFor({ timeout: 30_000 });
    }
    await settle(a.page);
    assert.ok(await count('socket', 3) >= 3, `the next edits went over the socket (${pushes})`);
    assert.equal(pushes[first], 'socket', `the first edit after reopening went over the socket (${pushes})`);
    const http = pushes.filter((p) => p === 'http').length;

    // The server stops (its sockets are closed at once) and comes back on the same port and data.
    await server.stopped();
    await addNote(a.page, 'while down');
    await a.page.locator('[data-testid=sync-status][data-code=unreachable]').waitFor({ timeout: 30_000 });
    server = await startServer({ port, dataDir });
    await settle(a.page);
    assert.ok(pushes.filter((p) => p === 'http').length > http, `the edit made while down went over HTTP (${pushes})`);
    // A socket that failed to open is tried again after 10 s (pushes go over HTTP meanwhile).
    const sockets = await count('socket', 0);
    let after = 0;
    while (pushes.filter((p) => p === 'socket').length === sockets && after < 20) {
      await addNote(a.page, `after ${++after}`);
      await settle(a.page);
      await count('socket', sockets + 1);
    }
    assert.ok(pushes.filter((p) => p === 'socket').length > sockets, `the socket was opened again and used (${pushes})`);
    for (const n of ['while down', `after ${after}`]) await noteNamed(b.page, n).waitFor({ timeout: 30_000 });
    await b.page.getByTestId('note-count').filter({ hasText: `${5 + after} notes` }).waitFor({ timeout: 30_000 });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('a remote edit keeps the caret on the same text when the note holds emoji', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'Emoji');
    await noteNamed(a.page, 'Emoji').click();
    await a.page.getByTestId('edit-body').fill('😀😀 hello world');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    await b.page.goto(link);
    await noteNamed(b.page, 'Emoji').click({ timeout: 30_000 });
    const field = b.page.getByTestId('edit-body');
    await b.page.waitForFunction(() => document.querySelector('[data-testid=edit-body]')?.value === '😀😀 hello world', null, { timeout: 10_000 });
    // B's caret right after "hello": UTF-16 unit 10 (each emoji is two units, one character).
    await field.focus();
    await field.evaluate((el) => el.setSelectionRange(10, 10));
    const caretWhen = async (text) => {
      await b.page.waitForFunction((want) => document.querySelector('[data-testid=edit-body]')?.value === want, text, { timeout: 10_000 });
      return field.evaluate((el) => [el.selectionStart, el.selectionEnd, document.activeElement === el]);
    };
    // An edit after the caret does not move it.
    await a.page.getByTestId('edit-body').fill('😀😀 hello Xworld');
    assert.deepEqual(await caretWhen('😀😀 hello Xworld'), [10, 10, true]);
    // An emoji inserted before it moves it by that emoji's two units: still right after "hello".
    await a.page.getByTestId('edit-body').fill('🎉😀😀 hello Xworld');
    assert.deepEqual(await caretWhen('🎉😀😀 hello Xworld'), [12, 12, true]);
    // B types at its caret: the text lands after "hello".
    await b.page.keyboard.type('!');
    await a.page.waitForFunction(() => document.querySelector('[data-testid=edit-body]')?.value === '🎉😀😀 hello! Xworld', null, { timeout: 10_000 });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('a remote edit re-renders only the note it changed: the open editor and other rows stay the same elements', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'Open on B');
    await addNote(a.page, 'Other note');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    await b.page.goto(link);
    await noteNamed(b.page, 'Other note').waitFor({ timeout: 30_000 });
    await noteNamed(b.page, 'Open on B').click();
    await b.page.getByTestId('editor').waitFor();
    // Tag B's elements: a rebuilt element loses the tag.
    await b.page.evaluate(() => {
      document.querySelector('[data-testid=editor]').hearthMark = 'editor';
      for (const row of document.querySelectorAll('[data-testid=note]')) row.hearthMark = row.textContent;
    });
    const marks = () => b.page.evaluate(() => ({
      editor: document.querySelector('[data-testid=editor]')?.hearthMark ?? null,
      rows: [...document.querySelectorAll('[data-testid=note]')].map((r) => [r.textContent, r.hearthMark ?? null]),
    }));
    // A types into the other note: B shows it, and B's open editor is the same element.
    await noteNamed(a.page, 'Other note').click();
    await a.page.getByTestId('edit-body').fill('typed on A');
    await a.page.getByTestId('edit-title').fill('Other note, edited');
    await noteNamed(b.page, 'Other note, edited').waitFor({ timeout: 10_000 });
    let m = await marks();
    assert.equal(m.editor, 'editor', 'the open editor was not rebuilt for an edit of another note');
    assert.deepEqual(m.rows.find(([text]) => text.includes('Open on B')), ['Open on B', 'Open on B'], 'the untouched row is the same element');
    // A types into the note open on B: its text updates in place, still the same editor.
    await noteNamed(a.page, 'Open on B').click();
    await a.page.getByTestId('edit-body').fill('live into the open note');
    await b.page.waitForFunction(() => document.querySelector('[data-testid=edit-body]')?.value === 'live into the open note', null, { timeout: 10_000 });
    m = await marks();
    assert.equal(m.editor, 'editor', 'the editor of the changed note is updated in place, not rebuilt');
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('a member shown edits live stores them; its page reads storage for few of them (not one read per record) and compacts what was stored', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'c0');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    // B's page counts the IndexedDB transactions it opens (its worker's are not counted).
    await b.ctx.addInitScript(() => {
      const open = IDBDatabase.prototype.transaction;
      window.idbTransactions = 0;
      IDBDatabase.prototype.transaction = function (...args) { window.idbTransactions++; return open.apply(this, args); };
    });
    await b.page.goto(link);
    await noteNamed(b.page, 'c0').waitFor({ timeout: 30_000 });
    await status(b.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    const before = await b.page.evaluate(() => window.idbTransactions);
    // 230 edits on A, spaced so that most reach B one by one as tentative live records: B's
    // worker shows each at once (its page imports the update, reading nothing) and stores it
    // when its marker comes — B's page need not read what it already shows, but once every 32
    // seqs it reads what was stored, and compacts once more than COMPACT_AFTER (200) records are.
    await a.page.evaluate(async () => {
      const el = document.querySelector('[data-testid=new-title]');
      for (let i = 1; i <= 230; i++) {
        el.value = `c${i}`;
        el.dispatchEvent(new Event('input', { bubbles: true }));
        el.form.requestSubmit();
        await new Promise((r) => setTimeout(r, 30));
      }
    });
    await b.page.getByTestId('note-count').filter({ hasText: '231 notes' }).waitFor({ timeout: 60_000 });
    const opened = (await b.page.evaluate(() => window.idbTransactions)) - before;
    assert.ok(opened < 115, `B's page read storage for few of the 230 records it was shown (${opened} transactions; one read per stored record is 230 or more)`);
    const received = () => b.page.evaluate(async () => {
      const db = await new Promise((res, rej) => { const r = indexedDB.open('hearth'); r.onsuccess = () => res(r.result); r.onerror = rej; });
      const n = await new Promise((res) => { const r = db.transaction('received').objectStore('received').count(); r.onsuccess = () => res(r.result); });
      db.close();
      return n;
    });
    let left = await received();
    for (let i = 0; i < 60 && left >= 200; i++) {
      await new Promise((r) => setTimeout(r, 500));
      left = await received();
    }
    assert.ok(left < 200, `B's page compacted the records its worker stored (left: ${left})`);
    // What B shows is what it stored: a reload reads it all back.
    await b.page.reload();
    await b.page.getByTestId('note-count').filter({ hasText: '231 notes' }).waitFor({ timeout: 30_000 });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});
