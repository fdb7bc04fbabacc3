// The engine's plain-JavaScript API (no Leptos): the example page creates, edits, subscribes and
// keeps its notes in IndexedDB across a reload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, profile, SCREENSHOTS, ownerWithLink } from './helpers.mjs';

test('the engine works from plain JavaScript and keeps notes across a reload', async () => {
  const server = await startServer();
  const a = await profile();
  try {
    await a.page.goto(server.url + '/js-example/index.html');
    await a.page.locator('body[data-ready=yes]').waitFor({ timeout: 30_000 });
    await a.page.locator('#out').filter({ hasText: 'From plain JavaScript: no Leptos here' }).waitFor();
    await a.page.locator('#title').fill('Second note');
    await a.page.getByRole('button', { name: 'Add note' }).click();
    await a.page.locator('#out').filter({ hasText: 'Second note' }).waitFor();
    await a.page.locator('#changes').filter({ hasText: /^[1-9]/ }).waitFor();
    await a.page.reload();
    await a.page.locator('body[data-ready=yes]').waitFor({ timeout: 30_000 });
    await a.page.locator('#out').filter({ hasText: 'Second note' }).waitFor();
    await a.page.locator('#out').filter({ hasText: 'From plain JavaScript' }).waitFor();
    await a.page.screenshot({ path: `${SCREENSHOTS}/js-example.png`, fullPage: true });
  } finally {
    await a.ctx.close();
    server.stop();
  }
});

test('every edit method of the JavaScript API is refused on a read-only link and changes nothing', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'Read me', 'read');
    const ws = link.match(/join\/([0-9a-f-]{36})/)[1];
    await b.page.goto(link);
    await b.page.getByTestId('read-only').waitFor({ timeout: 30_000 });
    await b.page.getByTestId('note').filter({ hasText: 'Read me' }).waitFor({ timeout: 30_000 });
    await b.page.goto(server.url + '/js-example/index.html');
    await b.page.locator('body[data-ready=yes]').waitFor({ timeout: 30_000 });
    const outcome = await b.page.evaluate(async (id) => {
      const m = await import('/js-example/pkg/hearth.js');
      await m.default();
      const e = await m.HearthEngine.open('hearth', id);
      const note = JSON.parse(e.notesJson())[0].id;
      const before = e.notesJson();
      const calls = {
        createNote: () => e.createNote('no'),
        spliceText: () => e.spliceText(note, 'title', 0, 0, 'no'),
        addTask: () => e.addTask(note, 'no'),
        setTaskDone: () => e.setTaskDone(note, 0, true),
        setTag: () => e.setTag(note, 'no', true),
        setTrashed: () => e.setTrashed(note, true),
        setPinned: () => e.setPinned(note, true),
        moveTask: () => e.moveTask(note, 0, 0),
        deleteTask: () => e.deleteTask(note, 0),
        purge: () => e.purge(note),
        rename: () => e.rename('no'),
        restoreNote: () => e.restoreNote(JSON.parse(e.historyJson())[0].id, note),
      };
      const refused = {};
      for (const [name, call] of Object.entries(calls)) {
        try { await call(); refused[name] = 'accepted'; } catch (err) { refused[name] = String(err.message ?? err); }
      }
      return { refused, unchanged: e.notesJson() === before };
    }, ws);
    for (const [name, message] of Object.entries(outcome.refused)) {
      assert.match(message, /read-only/, `${name} refused as read-only`);
    }
    assert.equal(Object.keys(outcome.refused).length, 12);
    assert.ok(outcome.unchanged, 'the notes are unchanged');
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('two browsers sync a notebook from plain JavaScript: connect, a share link, join, concurrent edits, status and errors', async () => {
  let server = await startServer();
  const { port, dataDir } = server;
  const a = await profile();
  const b = await profile();
  const load = async (page) => {
    await page.goto(server.url + '/js-example/index.html');
    await page.locator('body[data-ready=yes]').waitFor({ timeout: 30_000 });
  };
  try {
    await load(a.page);
    await load(b.page);
    const link = await a.page.evaluate(async (url) => {
      const m = await import('/js-example/pkg/hearth.js');
      await m.default();
      const e = await m.HearthEngine.create('plain-a', 'From JS');
      window.ws = e;
      window.noteId = await e.createNote('Shared from JS');
      await e.connect(url);
      return e.shareLink('write', 3600, 'for B');
    }, server.url);
    assert.match(link, /#\/join\/[0-9a-f-]{36}\?t=ey/);
    // The package ships its declarations and README.
    const dts = await (await fetch(`${server.url}/js-example/pkg/hearth.d.ts`)).text();
    for (const name of ['join(', 'connect(', 'syncOnce(', 'statusJson(', 'shareLink(']) assert.ok(dts.includes(name), `${name} is declared`);
    assert.equal((await fetch(`${server.url}/js-example/pkg/README.md`)).status, 200);
    // A link that is not one: a clear code, and nothing stored.
    const bad = await b.page.evaluate(async () => {
      const m = await import('/js-example/pkg/hearth.js');
      await m.default();
      let code = null;
      try { await m.HearthEngine.join('plain-b', 'https://example.org/not-a-link'); } catch (err) { code = err.code; }
      return { code, stored: JSON.parse(await m.listWorkspaces('plain-b')).length };
    });
    assert.deepEqual(bad, { code: 'bad_link', stored: 0 });
    const joined = await b.page.evaluate(async (l) => {
      const m = await import('/js-example/pkg/hearth.js');
      const e = await m.HearthEngine.join('plain-b', l);
      window.ws = e;
      window.noteId = JSON.parse(e.notesJson())[0].id;
      return JSON.parse(e.notesJson()).map((n) => n.title);
    }, link);
    assert.deepEqual(joined, ['Shared from JS']);
    // Both edit the same note at once and sync at once; a second round brings the other's edit.
    const edit = (page, text) => page.evaluate(async (t) => {
      await window.ws.spliceText(window.noteId, 'body', 0, 0, t);
      return window.ws.syncOnce();
    }, text);
    const [ra, rb] = await Promise.all([edit(a.page, 'A wrote. '), edit(b.page, 'B wrote. ')]);
    assert.equal(ra.pushed + rb.pushed, 2, `each round pushed its edit (${JSON.stringify([ra, rb])})`);
    await Promise.all([a.page.evaluate(() => window.ws.syncOnce()), b.page.evaluate(() => window.ws.syncOnce())]);
    const body = (page) => page.evaluate(() => JSON.parse(window.ws.noteJson(window.noteId)).body);
    const [ba, bb] = [await body(a.page), await body(b.page)];
    assert.equal(ba, bb, 'both converge');
    assert.ok(ba.includes('A wrote. ') && ba.includes('B wrote. '), ba);
    // Pin, tasks (add, move, delete) and trash/restore from plain JS reach the other browser.
    await a.page.evaluate(async () => {
      const e = window.ws;
      await e.setPinned(window.noteId, true);
      for (const t of ['one', 'two', 'three']) await e.addTask(window.noteId, t);
      await e.moveTask(window.noteId, 2, 0);
      await e.deleteTask(window.noteId, 1);
      const gone = await e.createNote('Deleted for good');
      await e.purge(gone);
      await e.setTrashed(window.noteId, true);
      await e.setTrashed(window.noteId, false);
      await e.syncOnce();
    });
    const seen = await b.page.evaluate(async () => {
      await window.ws.syncOnce();
      const n = JSON.parse(window.ws.noteJson(window.noteId));
      return { pinned: n.pinned, trashed: n.trashed, tasks: n.tasks.map((t) => t.text), notes: JSON.parse(window.ws.notesJson()).length };
    });
    assert.deepEqual(seen, { pinned: true, trashed: false, tasks: ['three', 'two'], notes: 1 });
    const status = JSON.parse(await b.page.evaluate(() => window.ws.statusJson()));
    assert.equal(status.role, 'write');
    assert.equal(status.pending, 0);
    assert.ok(status.lastPulledSeq >= 3, JSON.stringify(status));
    // The server goes away: the round fails with `unreachable`, the edit stays pending; it goes
    // once the server is back.
    server.stop();
    await new Promise((r) => setTimeout(r, 500));
    const down = await a.page.evaluate(async () => {
      await window.ws.spliceText(window.noteId, 'body', 0, 0, 'offline. ');
      let code = null;
      try { await window.ws.syncOnce(); } catch (err) { code = err.code; }
      return { code, pending: JSON.parse(await window.ws.statusJson()).pending };
    });
    assert.deepEqual(down, { code: 'unreachable', pending: 1 });
    server = await startServer({ port, dataDir });
    const up = await a.page.evaluate(async () => {
      await window.ws.syncOnce();
      return JSON.parse(await window.ws.statusJson()).pending;
    });
    assert.equal(up, 0);
    await b.page.evaluate(() => window.ws.syncOnce());
    assert.ok((await body(b.page)).startsWith('offline. '));
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('two browsers and a second tab stay in step live through the package\'s sync worker, from plain JavaScript', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  const example = async (page, query = '') => {
    await page.goto(`${server.url}/js-example/index.html${query}`);
    await page.locator('body[data-ready=yes]').waitFor({ timeout: 30_000 });
  };
  try {
    await example(a.page);
    await a.page.locator('#status').filter({ hasText: /^local_only/ }).waitFor({ timeout: 30_000 });
    await a.page.locator('#server').fill(server.url);
    await a.page.getByRole('button', { name: 'Put on this server' }).click();
    await a.page.locator('#status').filter({ hasText: /^up_to_date, 0 / }).waitFor({ timeout: 30_000 });
    await a.page.getByRole('button', { name: 'Make an edit link' }).click();
    const link = await a.page.locator('#link').filter({ hasText: /#\/join\// }).textContent();
    await example(b.page, `?join=${encodeURIComponent(link)}`);
    await b.page.locator('#out').filter({ hasText: 'From plain JavaScript: no Leptos here' }).waitFor();
    // Live: a note added on A appears on B, and nobody calls syncOnce.
    await a.page.locator('#title').fill('Live from A');
    await a.page.getByRole('button', { name: 'Add note' }).click();
    await b.page.locator('#out').filter({ hasText: 'Live from A' }).waitFor({ timeout: 10_000 });
    assert.ok(Number(await b.page.locator('#remote').textContent()) >= 1, 'B\'s subscriber heard a remote change');
    // A second tab of A's browser: one worker syncs for both; both see B's note.
    const a2 = await a.ctx.newPage();
    await example(a2);
    await a2.locator('#out').filter({ hasText: 'Live from A' }).waitFor();
    await b.page.locator('#title').fill('Live from B');
    await b.page.getByRole('button', { name: 'Add note' }).click();
    await a.page.locator('#out').filter({ hasText: 'Live from B' }).waitFor({ timeout: 10_000 });
    await a2.locator('#out').filter({ hasText: 'Live from B' }).waitFor({ timeout: 10_000 });
    // All three type into the same note at once; every edit reaches every page.
    const pages = [a.page, a2, b.page];
    const marks = ['[A] ', '[A2] ', '[B] '];
    await Promise.all(pages.map((p, i) => p.evaluate(async (t) => {
      const id = JSON.parse(window.ws.notesJson()).find((n) => n.title === 'From plain JavaScript').id;
      await window.ws.spliceText(id, 'body', 0, 0, t);
    }, marks[i])));
    for (const p of pages) {
      for (const t of marks) await p.locator('#out').filter({ hasText: t }).waitFor({ timeout: 10_000 });
    }
    const bodies = await Promise.all(pages.map((p) => p.evaluate(() => window.ws.notesJson())));
    assert.equal(bodies[0], bodies[2], 'A and B converge');
    assert.equal(bodies[1], bodies[2], 'both tabs of A converge');
    await b.page.locator('#status').filter({ hasText: /^up_to_date, 0 / }).waitFor({ timeout: 10_000 });
    await a.page.locator('#status').filter({ hasText: /^up_to_date, 0 / }).waitFor({ timeout: 10_000 });
    // Presence through the package: each page sees the other two, and a closed page goes.
    for (const p of pages) await p.locator('#present').filter({ hasText: /^2$/ }).waitFor({ timeout: 15_000 });
    await b.page.screenshot({ path: `${SCREENSHOTS}/js-live.png`, fullPage: true });
    await a2.close();
    await a.page.locator('#present').filter({ hasText: /^1$/ }).waitFor({ timeout: 20_000 });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});
