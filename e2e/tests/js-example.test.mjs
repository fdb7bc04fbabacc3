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
      const m = await import('/js-example/pkg/client_wasm.js');
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
    assert.equal(Object.keys(outcome.refused).length, 6);
    assert.ok(outcome.unchanged, 'the notes are unchanged');
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});
