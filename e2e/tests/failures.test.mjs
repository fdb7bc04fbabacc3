// Sync when things go wrong: a revoked link, a tampering server, a server killed mid-batch, and
// two tabs of one profile (only one worker syncs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { startServer, SCREENSHOTS, profile, status, noteNamed, addNote, ownerWithLink, parsePull } from './helpers.mjs';

test('a revoked link stops sync with the revoked status while local editing still works', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'Before revocation');
    await b.page.goto(link);
    await noteNamed(b.page, 'Before revocation').waitFor({ timeout: 30_000 });
    await a.page.getByTestId('show-links').click();
    await a.page.getByTestId('revoke').first().click();
    await a.page.getByTestId('link-row').filter({ hasText: 'revoked' }).waitFor({ timeout: 15_000 });
    await addNote(b.page, 'Edited after revocation');
    await status(b.page).filter({ hasText: 'token_revoked' }).waitFor({ timeout: 30_000 });
    await b.page.getByTestId('stopped').filter({ hasText: 'This link was revoked' }).waitFor();
    await noteNamed(b.page, 'Before revocation').waitFor();
    await b.page.screenshot({ path: `${SCREENSHOTS}/revoked.png`, fullPage: true });
    await a.page.waitForTimeout(1000);
    assert.equal(await noteNamed(a.page, 'Edited after revocation').count(), 0, 'nothing crossed after revocation');
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
    await status(a.page).filter({ hasText: 'chain_mismatch' }).waitFor({ timeout: 30_000 });
    await noteNamed(a.page, 'Kept locally').waitFor();
    await b.page.goto(link);
    await status(b.page).filter({ hasText: 'chain_mismatch' }).waitFor({ timeout: 30_000 });
    await b.page.getByTestId('note-count').filter({ hasText: '0 notes' }).waitFor();
    await b.page.screenshot({ path: `${SCREENSHOTS}/chain-mismatch.png`, fullPage: true });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('a server killed mid-batch and restarted receives every edit exactly once', async () => {
  let server = await startServer();
  const { port, dataDir } = server;
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'n0');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    const token = decodeURIComponent(link.split('?t=')[1]);
    const ws = link.match(/join\/([0-9a-f-]{36})/)[1];
    // Edits pour in; the server dies with pushes in flight.
    const burst = (async () => {
      for (let i = 1; i <= 12; i++) await addNote(a.page, `n${i}`);
    })();
    await a.page.waitForTimeout(150);
    server.proc.kill('SIGKILL');
    await burst;
    await status(a.page).filter({ hasText: /retrying|connecting|offline/ }).waitFor({ timeout: 30_000 });
    server = await startServer({ port, dataDir });
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 60_000 });
    await a.page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 30_000 });
    const res = await fetch(`${server.url}/v1/workspaces/${ws}/updates?after=0`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const records = parsePull(Buffer.from(await res.arrayBuffer()));
    const seqs = records.map((r) => r.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'gap-free seqs');
    const distinct = new Set(records.map((r) => r.bytes.toString('base64')));
    assert.equal(distinct.size, records.length, 'no update stored twice');
    await b.page.goto(link);
    await b.page.getByTestId('note-count').filter({ hasText: '13 notes' }).waitFor({ timeout: 30_000 });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('two tabs of one profile: one worker syncs, both show every edit', async () => {
  const server = await startServer();
  const a = await profile();
  try {
    await ownerWithLink(a.page, server.url, 'From tab 1');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    const tab2 = await a.ctx.newPage();
    await tab2.goto(server.url + '/');
    await noteNamed(tab2, 'From tab 1').waitFor({ timeout: 30_000 });
    await addNote(tab2, 'From tab 2');
    await noteNamed(a.page, 'From tab 2').waitFor({ timeout: 30_000 });
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /hearth_live_connections 1\n/, 'exactly one worker follows the live channel');
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
    // 210 edits, in-page (the UI's own handlers), then wait until all are on the server.
    await a.page.evaluate(async () => {
      const el = document.querySelector('[data-testid=new-title]');
      for (let i = 1; i <= 210; i++) {
        el.value = `c${i}`;
        el.dispatchEvent(new Event('input', { bubbles: true }));
        el.form.requestSubmit();
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    await a.page.getByTestId('note-count').filter({ hasText: '211 notes' }).waitFor({ timeout: 60_000 });
    const token = decodeURIComponent(link.split('?t=')[1]);
    const ws = link.match(/join\/([0-9a-f-]{36})/)[1];
    let first = null;
    for (let i = 0; i < 120 && first?.kind !== 1; i++) {
      const res = await fetch(`${server.url}/v1/workspaces/${ws}/updates?after=0`, { headers: { Authorization: `Bearer ${token}` } });
      first = parsePull(Buffer.from(await res.arrayBuffer()))[0];
      if (first?.kind !== 1) await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(first?.kind, 1, 'a pull from 0 starts with the uploaded snapshot');
    await b.page.goto(link);
    await b.page.getByTestId('note-count').filter({ hasText: '211 notes' }).waitFor({ timeout: 60_000 });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});
