// The `hearth` command line beside a browser, against one real server: both edit the same note at
// once and converge with nothing lost; `hearth sync --watch` sees a browser edit live; a watcher
// killed with SIGKILL mid-sync loses nothing when it runs again; a Markdown file exported, edited
// and imported merges with a paragraph the browser typed meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
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

/**
 * Syncs the terminal until `hearth --json …args` satisfies `pred` (30 s at most) and returns what
 * it printed last. A browser edit is stored first and pushed by its worker a moment later — its
 * "up to date" can still show from before — so one sync may come too early; a lost edit still fails.
 */
async function syncUntil(data, page, args, pred) {
  for (const deadline = Date.now() + 30_000; ;) {
    await upToDate(page);
    await ok(data, 'sync');
    const out = JSON.parse(await ok(data, '--json', ...args));
    if (pred(out) || Date.now() > deadline) return out;
    await new Promise((r) => setTimeout(r, 200));
  }
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
    const body = a.page.getByTestId('edit-body');
    await a.page.waitForFunction(() => {
      const v = document.querySelector('[data-testid=edit-body]')?.value ?? '';
      return v.includes('typed in the browser.') && v.includes('typed in a terminal.');
    }, null, { timeout: 30_000 }).catch(async (e) => {
      // Failed once in CI (2026-12-04) and never since: keep what the page showed.
      await a.page.screenshot({ path: `${SCREENSHOTS}/cli-and-browser-failed.png`, fullPage: true }).catch(() => {});
      const field = await body.inputValue().catch(() => '?');
      const status = await a.page.getByTestId('sync-status').textContent().catch(() => '?');
      throw new Error(`the body field never held both edits: ${JSON.stringify(field)}, status ${JSON.stringify(status)} (${e.message})`);
    });
    const shown = await syncUntil(data, a.page, ['notes', 'show', 'Shared note'], (n) => n.body.includes('typed in the browser.'));
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
    // Run again: the data file is whole and catches up.
    const all = ['First', 'Seen live', ...titles];
    const listed = (await syncUntil(data, a.page, ['notes', 'list'], (ns) => all.every((t) => ns.some((n) => n.title === t)))).map((n) => n.title);
    for (const t of all) assert.ok(listed.includes(t), `${t} is on the terminal's device: ${listed}`);
  } finally {
    w?.child.kill('SIGKILL');
    await a.ctx.close();
    server.stop();
  }
});

test('a Markdown file edited in an editor comes back as CRDT edits: the browser shows it, its own paragraph typed meanwhile survives, and deleting the file moves the note to the trash', { skip: !BIN && 'HEARTH_CLI_BIN is not set' }, async () => {
  const server = await startServer();
  const a = await profile();
  const dir = mkdtempSync(join(tmpdir(), 'hearth-md-'));
  const data = join(dir, 'hearth.db');
  const folder = join(dir, 'notes');
  try {
    const link = await ownerWithLink(a.page, server.url, 'Plan');
    await noteNamed(a.page, 'Plan').click();
    const body = a.page.getByTestId('edit-body');
    await body.fill('first paragraph\n\nsecond paragraph');
    await ok(data, 'join', link);
    await syncUntil(data, a.page, ['notes', 'show', 'Plan'], (n) => n.body.includes('second paragraph'));
    await ok(data, 'export', '--markdown', folder);
    const file = join(folder, readdirSync(folder).find((f) => f.startsWith('Plan-')));
    // Meanwhile, in the browser: the second paragraph grows.
    await body.fill('first paragraph\n\nsecond paragraph, typed in the browser');
    await syncUntil(data, a.page, ['notes', 'show', 'Plan'], (n) => n.body.includes('typed in the browser'));
    // In an editor: the first paragraph changes (the file still has the old second one).
    writeFileSync(file, readFileSync(file, 'utf8').replace('first paragraph', 'first paragraph, edited in a file'));
    const imported = JSON.parse(await ok(data, '--json', 'import', '--markdown', folder));
    assert.deepEqual([imported.created, imported.updated], [0, 1]);
    await ok(data, 'sync');
    const merged = 'first paragraph, edited in a file\n\nsecond paragraph, typed in the browser';
    await a.page.waitForFunction((want) => document.querySelector('[data-testid=edit-body]')?.value === want, merged, { timeout: 30_000 });
    // The file was rewritten at the import's version, so importing it again changes nothing —
    // and does not take back the browser's paragraph it has not seen.
    assert.ok(readFileSync(file, 'utf8').includes('first paragraph, edited in a file'));
    const again = JSON.parse(await ok(data, '--json', 'import', '--markdown', folder));
    assert.equal(again.updated, 0);
    assert.equal((await syncUntil(data, a.page, ['notes', 'show', 'Plan'], (n) => n.body === merged)).body, merged);
    await a.page.screenshot({ path: `${SCREENSHOTS}/cli-markdown-import.png`, fullPage: true });
    // The file deleted in the folder: the import moves its note to the trash, which the browser
    // shows (restorable there).
    unlinkSync(file);
    const deleted = JSON.parse(await ok(data, '--json', 'import', '--markdown', folder));
    assert.deepEqual([deleted.trashed, deleted.kept], [1, 0], JSON.stringify(deleted));
    await ok(data, 'sync');
    await a.page.getByTestId('toggle-trash').filter({ hasText: 'Trash (1)' }).waitFor({ timeout: 30_000 });
    await a.page.getByTestId('toggle-trash').click();
    await noteNamed(a.page, 'Plan').waitFor();
  } finally {
    await a.ctx.close();
    server.stop();
  }
});
