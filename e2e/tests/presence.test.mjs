// Presence: who else has the notebook open, and in which note — live, on one server and across
// two server processes on one Postgres; gone within seconds of a browser closing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, profile, noteNamed, ownerWithLink, addNote, SCREENSHOTS } from './helpers.mjs';

const peers = (page) => page.getByTestId('peer');

async function presenceAcross(urlA, urlB, shot) {
  const a = await profile();
  const b = await profile();
  let bOpen = true;
  // Push sockets each opened: a browser opens one when its live channel connects, if it may push.
  const sockets = { a: 0, b: 0 };
  for (const [k, page] of [['a', a.page], ['b', b.page]]) {
    page.on('websocket', (ws) => { if (/\/socket$/.test(new URL(ws.url()).pathname)) sockets[k]++; });
  }
  try {
    const link = await ownerWithLink(a.page, urlA, 'Plans', 'read');
    await b.page.goto(link.replace(urlA, urlB));
    await noteNamed(b.page, 'Plans').waitFor({ timeout: 30_000 });
    // Each sees the other, and only the other: the owner sees a reader, the reader the owner.
    await peers(a.page).filter({ hasText: 'R' }).waitFor({ timeout: 15_000 });
    await peers(b.page).filter({ hasText: 'O' }).waitFor({ timeout: 15_000 });
    assert.equal(await peers(a.page).count(), 1);
    assert.equal(await peers(b.page).count(), 1);
    // Both live channels are up (each sees the other): the owner opened its push socket, the
    // reader, who cannot push, none (the server would refuse it).
    for (let i = 0; i < 50 && sockets.a === 0; i++) await a.page.waitForTimeout(100);
    assert.ok(sockets.a >= 1, 'the owner opened its push socket');
    assert.equal(sockets.b, 0, 'a read-only member opened no push socket');
    // The owner opens the note: the reader sees the owner's dot beside it.
    await noteNamed(a.page, 'Plans').click();
    const besidePlans = b.page.locator('li', { has: noteNamed(b.page, 'Plans') }).getByTestId('note-peer');
    await besidePlans.waitFor({ timeout: 15_000 });
    await b.page.screenshot({ path: `${SCREENSHOTS}/${shot}.png`, fullPage: true });
    // The owner creates a note (it opens): the dot moves beside it, and leaves the first note's
    // row (each row follows only its own note's peers).
    await a.page.getByTestId('new-title').fill('Later');
    await a.page.getByTestId('new-title').press('Enter');
    await b.page.locator('li', { has: noteNamed(b.page, 'Later') }).getByTestId('note-peer').waitFor({ timeout: 15_000 });
    await besidePlans.waitFor({ state: 'detached', timeout: 15_000 });
    assert.equal(await b.page.getByTestId('note-peer').count(), 1);
    // The reader closes its browser: gone from the owner's header within the 10 s time to live.
    await b.ctx.close();
    bOpen = false;
    await a.page.waitForFunction(() => document.querySelectorAll('[data-testid=peer]').length === 0, null, { timeout: 20_000 });
  } finally {
    await a.ctx.close();
    if (bOpen) await b.ctx.close();
  }
}

test('two browsers see each other present, and which note, until one closes', async () => {
  const server = await startServer();
  try {
    await presenceAcross(server.url, server.url, 'presence');
  } finally {
    server.stop();
  }
});

test('presence crosses two server processes on one Postgres', async (t) => {
  if (!process.env.HEARTH_TEST_PG_URL) { t.skip('needs the Postgres of scripts/test.sh (HEARTH_TEST_PG_URL)'); return; }
  const one = await startServer();
  // Same data dir: the same token secret, so a link minted through one process works on the other.
  const two = await startServer({ dataDir: one.dataDir });
  try {
    await presenceAcross(one.url, two.url, 'presence-two-processes');
  } finally {
    one.stop();
    two.stop();
  }
});

test('a tab moving quickly through notes sends a few presence updates, not one per note, and the others see where it stopped', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'N0');
    const titles = Array.from({ length: 10 }, (_, i) => `N${i}`);
    for (const t of titles.slice(1)) await addNote(a.page, t);
    await b.page.goto(link);
    for (const t of titles) await noteNamed(b.page, t).waitFor({ timeout: 30_000 });
    await peers(b.page).filter({ hasText: 'O' }).waitFor({ timeout: 15_000 });
    // Presence updates the owner's worker sends from now on.
    const sent = [];
    a.page.on('request', (r) => {
      if (r.method() === 'PUT' && /\/presence$/.test(new URL(r.url()).pathname)) sent.push(r.postDataJSON()?.note ?? null);
    });
    await a.page.waitForTimeout(300);
    const before = sent.length;
    // Ten notes opened 15 ms apart (~150 ms), the way a keyboard user runs down the list.
    const span = await a.page.evaluate(async (titles) => {
      const start = performance.now();
      for (const t of titles) {
        [...document.querySelectorAll('[data-testid=note]')].find((e) => e.textContent.includes(t)).click();
        await new Promise((r) => setTimeout(r, 15));
      }
      return performance.now() - start;
    }, titles);
    const last = titles[titles.length - 1];
    await b.page.locator('li', { has: noteNamed(b.page, last) }).getByTestId('note-peer').waitFor({ timeout: 15_000 });
    assert.equal(await b.page.getByTestId('note-peer').count(), 1, 'the owner is shown in one note: the last it opened');
    await a.page.waitForTimeout(300);
    const burst = sent.slice(before);
    // One at once, then at most one per 100 ms carrying the newest (a 3-second heartbeat may fall
    // in the window too); one per note would be ten. (On a loaded machine the clicks may take
    // longer than 150 ms: the bound follows the time they took.)
    const most = Math.min(titles.length - 1, Math.ceil(span / 100) + 2);
    assert.ok(burst.length >= 1 && burst.length <= most, `presence updates sent for ten notes opened in ${span.toFixed(0)} ms: ${burst.length}, at most ${most} (${burst.join(', ')})`);
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});
