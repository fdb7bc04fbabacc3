// The `hearth` command line beside a browser, against one real server: both edit the same note at
// once and converge with nothing lost; `hearth sync --watch` sees a browser edit live; a watcher
// killed with SIGKILL mid-sync loses nothing when it runs again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startServer, SCREENSHOTS, profile, status, noteNamed, addNote, ownerWithLink } from './helpers.mjs';

const BIN = process.env.HEARTH_CLI_BIN;
const ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'HEARTH_DATA'));

/** Runs `hearth --data FILE …args`; resolves with { code, stdout, stderr }. */
function hearth(data, ...args) {
  return new Promise((resolve) => {
    execFile(BIN, ['--data', data, ...args], { env: ENV }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code ?? 1 : 0, stdout, stderr });
    });
  });
}

async function ok(data, ...args) {
  const r = await hearth(data, ...args);
  assert.equal(r.code, 0, `hearth ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function upToDate(page) {
  await status(page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
  await page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 30_000 });
}

/** Starts `hearth sync --watch --json`; `next(pred)` waits for a line matching `pred`. */
function watcher(data) {
  const child = spawn(BIN, ['--data', data, '--json', 'sync', '--watch'], { env: ENV });
  const waiting = [];
  const seen = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const v = JSON.parse(line);
    seen.push(v);
    for (const w of [...waiting]) if (w.pred(v)) { waiting.splice(waiting.indexOf(w), 1); w.resolve(v); }
  });
  const next = (pred, ms = 30_000) => new Promise((resolve, reject) => {
    const hit = seen.find(pred);
    if (hit) return resolve(hit);
    const w = { pred, resolve };
    waiting.push(w);
    setTimeout(() => reject(new Error(`no watch line in ${ms} ms; saw ${JSON.stringify(seen)}`)), ms);
  });
  return { child, next };
}

test('a browser and the command line edit the same note at once and both keep both edits', { skip: !BIN && 'HEARTH_CLI_BIN is not set' }, async () => {
  const server = await startServer();
  const a = await profile();
  const data = join(mkdtempSync(join(tmpdir(), 'hearth-cli-')), 'hearth.db');
  try {
    const link = await ownerWithLink(a.page, server.url, 'Shared note');
    const joined = JSON.parse(await ok(data, '--json', 'join', link));
    assert.equal(joined.notes, 1);
    await noteNamed(a.page, 'Shared note').click();
    // At once: the browser types, the terminal appends and syncs.
    await Promise.all([
      a.page.getByTestId('edit-body').fill('typed in the browser.'),
      (async () => {
        await ok(data, 'notes', 'edit', 'Shared note', '--append', ' typed in a terminal.');
        await ok(data, 'sync');
      })(),
    ]);
    await upToDate(a.page);
    await ok(data, 'sync');
    const body = a.page.getByTestId('edit-body');
    await a.page.waitForFunction(() => {
      const v = document.querySelector('[data-testid=edit-body]')?.value ?? '';
      return v.includes('typed in the browser.') && v.includes('typed in a terminal.');
    }, null, { timeout: 30_000 });
    const shown = JSON.parse(await ok(data, '--json', 'notes', 'show', 'Shared note'));
    assert.equal(shown.body, await body.inputValue(), 'the terminal and the browser read the same text');
    await a.page.screenshot({ path: `${SCREENSHOTS}/cli-and-browser.png`, fullPage: true });
  } finally {
    await a.ctx.close();
    server.stop();
  }
});

test('hearth sync --watch sees a browser edit live, and a watcher killed mid-sync loses nothing', { skip: !BIN && 'HEARTH_CLI_BIN is not set' }, async () => {
  const server = await startServer();
  const a = await profile();
  const data = join(mkdtempSync(join(tmpdir(), 'hearth-cli-')), 'hearth.db');
  let w;
  try {
    const link = await ownerWithLink(a.page, server.url, 'First');
    await ok(data, 'join', link);
    w = watcher(data);
    await w.next((v) => v.event === 'synced');
    await addNote(a.page, 'Seen live');
    await upToDate(a.page);
    await w.next((v) => v.event === 'received' || (v.event === 'synced' && v.pulled > 0));
    assert.ok((await ok(data, 'notes', 'list')).includes('Seen live'));
    // Edits keep coming while the watcher is killed with SIGKILL at its next line.
    const titles = ['Burst 1', 'Burst 2', 'Burst 3'];
    const typing = (async () => { for (const t of titles) await addNote(a.page, t); })();
    await w.next((v) => v.event === 'received' && v.seq > 0);
    w.child.kill('SIGKILL');
    await typing;
    await upToDate(a.page);
    // Run again: the data file is whole and catches up.
    await ok(data, 'sync');
    const listed = JSON.parse(await ok(data, '--json', 'notes', 'list')).map((n) => n.title);
    for (const t of ['First', 'Seen live', ...titles]) assert.ok(listed.includes(t), `${t} is on the terminal's device: ${listed}`);
  } finally {
    w?.child.kill('SIGKILL');
    await a.ctx.close();
    server.stop();
  }
});
