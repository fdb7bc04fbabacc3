// The web UI's own features: server backup → restore as a new notebook, history restore of an
// overwritten note, checklist/tags/trash, and a stable caret while remote edits arrive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, SCREENSHOTS, profile, status, noteNamed, addNote, ownerWithLink } from './helpers.mjs';

test('a backup downloaded from the server restores into a new notebook with the same notes', async () => {
  const server = await startServer();
  const a = await profile();
  try {
    await ownerWithLink(a.page, server.url, 'Tax papers');
    await addNote(a.page, 'Passport renewal');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    await a.page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 30_000 });
    await a.page.getByTestId('tab-backup').click();
    const [download] = await Promise.all([
      a.page.waitForEvent('download'),
      a.page.getByTestId('backup-server').click(),
    ]);
    const file = join(mkdtempSync(join(tmpdir(), 'hearth-backup-')), 'backup.hearth');
    await download.saveAs(file);
    await a.page.getByTestId('restore-file').setInputFiles(file);
    await a.page.getByTestId('notice').filter({ hasText: 'Backup restored' }).waitFor({ timeout: 30_000 });
    // Named so it is not mistaken for the original beside it.
    await a.page.getByTestId('workspace-name').filter({ hasText: 'My notebook (restored)' }).waitFor();
    await a.page.getByTestId('tab-notebooks').click();
    await a.page.getByTestId('notebook').nth(1).waitFor();
    assert.equal(await a.page.getByTestId('notebook').count(), 2, 'the restore is a second notebook');
    await a.page.getByTestId('tab-notes').click();
    await noteNamed(a.page, 'Tax papers').waitFor();
    await noteNamed(a.page, 'Passport renewal').waitFor();
    await a.page.getByTestId('sync-status').filter({ hasText: 'On this device only' }).waitFor();
    await a.page.screenshot({ path: `${SCREENSHOTS}/restored-backup.png`, fullPage: true });
  } finally {
    await a.ctx.close();
    server.stop();
  }
});

test('history shows an overwritten note as it was and restores it', async () => {
  const server = await startServer();
  const a = await profile();
  try {
    await a.page.goto(server.url + '/');
    await a.page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
    await addNote(a.page, 'Speech');
    await noteNamed(a.page, 'Speech').click();
    await a.page.getByTestId('edit-body').fill('the good first draft');
    await a.page.getByTestId('edit-body').fill('oops, overwritten');
    await addNote(a.page, 'Another note');
    await a.page.getByTestId('tab-history').click();
    // Edits come grouped: one session per note (and tab), newest first, saying who and what.
    const sessions = a.page.getByTestId('session');
    await sessions.first().waitFor();
    assert.match(await sessions.first().innerText(), /Another note[\s\S]*1 edit · this device/);
    const speech = sessions.filter({ hasText: 'Speech' });
    assert.equal(await speech.count(), 1, 'the note\'s edits are one session');
    await speech.click();
    assert.equal(await speech.getAttribute('aria-current'), 'true');
    await a.page.getByTestId('session-change').filter({ hasText: /Created the note; text \+17/ }).waitFor();
    const versions = a.page.getByTestId('version');
    await versions.first().waitFor();
    let found = false;
    for (let i = 0; i < await versions.count() && !found; i++) {
      await versions.nth(i).click();
      found = await a.page.getByTestId('old-body').filter({ hasText: 'the good first draft' }).count() > 0;
    }
    assert.ok(found, 'a version shows the first draft');
    await a.page.screenshot({ path: `${SCREENSHOTS}/history.png`, fullPage: true });
    await a.page.getByTestId('old-note').filter({ hasText: 'the good first draft' }).getByTestId('restore-version').click();
    await a.page.getByTestId('tab-notes').click();
    await noteNamed(a.page, 'Speech').click();
    await a.page.waitForFunction(() => document.querySelector('[data-testid=edit-body]')?.value === 'the good first draft');
  } finally {
    await a.ctx.close();
    server.stop();
  }
});

test('checklist, tags, pin and trash work from the keyboard and mouse', async () => {
  const server = await startServer();
  const a = await profile();
  try {
    await a.page.setViewportSize({ width: 390, height: 844 });
    await a.page.goto(server.url + '/');
    await a.page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
    await addNote(a.page, 'Groceries');
    await addNote(a.page, 'Other');
    await noteNamed(a.page, 'Groceries').click();
    for (const t of ['milk', 'eggs', 'bread']) {
      await a.page.getByTestId('new-task').fill(t);
      await a.page.getByTestId('new-task').press('Enter');
      await a.page.getByTestId('task').filter({ hasText: t }).waitFor();
    }
    await a.page.getByTestId('task').filter({ hasText: 'bread' }).getByRole('button', { name: 'Move up' }).click();
    await a.page.waitForFunction(() => [...document.querySelectorAll('[data-testid=task] span')].map((e) => e.textContent).join(',') === 'milk,bread,eggs');
    await a.page.getByTestId('task').filter({ hasText: 'eggs' }).getByRole('checkbox').check();
    // Done, and still done after the engine re-read it from IndexedDB — once the header no longer
    // says the tick is being saved (a reload a few ms after a click can beat the write).
    await a.page.getByTestId('sync-status').filter({ hasNotText: 'saving' }).waitFor();
    await a.page.reload();
    await noteNamed(a.page, 'Groceries').click();
    assert.ok(await a.page.getByTestId('task').filter({ hasText: 'eggs' }).getByRole('checkbox').isChecked(), 'eggs is done');
    assert.ok(!(await a.page.getByTestId('task').filter({ hasText: 'bread' }).getByRole('checkbox').isChecked()), 'bread is not');
    await a.page.getByTestId('task').filter({ hasText: 'milk' }).getByRole('button', { name: 'Delete task' }).click();
    await a.page.getByTestId('task').filter({ hasText: 'milk' }).waitFor({ state: 'detached' });
    await a.page.getByTestId('new-tag').fill('home');
    await a.page.getByTestId('new-tag').press('Enter');
    await a.page.getByTestId('tags').filter({ hasText: 'home' }).waitFor();
    await a.page.getByTestId('pin').click();
    await a.page.getByTestId('note').first().filter({ hasText: '★ Groceries' }).waitFor();
    await a.page.getByTestId('search').fill('home');
    assert.equal(await a.page.getByTestId('note').count(), 1);
    await a.page.screenshot({ path: `${SCREENSHOTS}/phone-editor.png`, fullPage: true });
    await a.page.getByTestId('search').fill('');
    await a.page.getByTestId('trash').click();
    await a.page.getByTestId('note-count').filter({ hasText: /^1 note$/ }).waitFor();
    await a.page.getByTestId('toggle-trash').click();
    await noteNamed(a.page, 'Groceries').click();
    await a.page.getByTestId('restore').click();
    await a.page.getByTestId('toggle-trash').click();
    await a.page.getByTestId('note-count').filter({ hasText: '2 notes' }).waitFor();
  } finally {
    await a.ctx.close();
    server.stop();
  }
});

test('a new note opens after Add or Enter (not an Enter that ends a composition), a search says how many of the notes it shows, and right-to-left text aligns itself', async () => {
  const server = await startServer();
  const a = await profile();
  try {
    await a.page.goto(server.url + '/');
    await a.page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor({ timeout: 30_000 });
    await addNote(a.page, 'Groceries');
    // The new note is open in the editor, ready for its body.
    await a.page.waitForFunction(() => document.querySelector('[data-testid=edit-title]')?.value === 'Groceries');
    await addNote(a.page, 'Garden');
    await a.page.waitForFunction(() => document.querySelector('[data-testid=edit-title]')?.value === 'Garden');
    await addNote(a.page, 'شراء الخبز');
    await a.page.getByTestId('note-count').filter({ hasText: /^3 notes$/ }).waitFor();
    await a.page.getByTestId('search').fill('g');
    await a.page.getByTestId('note-count').filter({ hasText: /^2 of 3 notes$/ }).waitFor();
    assert.equal(await a.page.getByTestId('note').count(), 2);
    await a.page.getByTestId('search').fill('');
    await a.page.getByTestId('note-count').filter({ hasText: /^3 notes$/ }).waitFor();
    // Arabic runs right to left in the list and in the editor; Latin stays left to right.
    const direction = (locator) => locator.evaluate((e) => getComputedStyle(e).direction);
    assert.equal(await direction(noteNamed(a.page, 'شراء الخبز')), 'rtl');
    assert.equal(await direction(noteNamed(a.page, 'Garden')), 'ltr');
    await a.page.waitForFunction(() => document.querySelector('[data-testid=edit-title]')?.value === 'شراء الخبز');
    assert.equal(await direction(a.page.getByTestId('edit-title')), 'rtl');
    await a.page.getByTestId('edit-body').fill('اشترِ الخبز والحليب');
    assert.equal(await direction(a.page.getByTestId('edit-body')), 'rtl');
    await a.page.screenshot({ path: `${SCREENSHOTS}/new-note-opens-rtl.png`, fullPage: true });
    // Enter in the title field adds the note: the app takes the key itself (no form submission,
    // which costs Chromium ~1 ms before any listener). An Enter that ends an input method's
    // composition only confirms the composed text.
    await a.page.getByTestId('new-title').fill('Milk');
    const enter = (composing) => a.page.getByTestId('new-title').evaluate((el, isComposing) => {
      const ev = new KeyboardEvent('keydown', { key: 'Enter', isComposing, bubbles: true, cancelable: true });
      return !el.dispatchEvent(ev);
    }, composing);
    assert.equal(await enter(true), false, 'an Enter ending a composition is left to the input method');
    assert.equal(await enter(false), true, 'the app takes a plain Enter');
    await noteNamed(a.page, 'Milk').waitFor();
    await a.page.waitForFunction(() => document.querySelector('[data-testid=edit-title]')?.value === 'Milk');
    assert.equal(await a.page.getByTestId('new-title').inputValue(), '', 'the field is emptied for the next note');
    // A real key press: one Enter, one note.
    await a.page.getByTestId('new-title').fill('Eggs');
    await a.page.getByTestId('new-title').press('Enter');
    await a.page.waitForFunction(() => document.querySelector('[data-testid=edit-title]')?.value === 'Eggs');
    await a.page.getByTestId('note-count').filter({ hasText: /^5 notes$/ }).waitFor();
    assert.equal(await noteNamed(a.page, 'Milk').count(), 1);
    assert.equal(await noteNamed(a.page, 'Eggs').count(), 1);
    assert.deepEqual(a.errors, []);
  } finally {
    await a.ctx.close();
    server.stop();
  }
});

test('the caret stays on the same text while a remote edit arrives', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'Shared draft');
    await noteNamed(a.page, 'Shared draft').click();
    await a.page.getByTestId('edit-body').fill('hello world');
    await b.page.goto(link);
    await noteNamed(b.page, 'Shared draft').click({ timeout: 30_000 });
    await b.page.waitForFunction(() => document.querySelector('[data-testid=edit-body]')?.value === 'hello world', null, { timeout: 30_000 });
    await b.page.getByTestId('edit-body').focus();
    await b.page.evaluate(() => document.querySelector('[data-testid=edit-body]').setSelectionRange(6, 6));
    await a.page.getByTestId('edit-body').fill('>>> hello world');
    await b.page.waitForFunction(() => document.querySelector('[data-testid=edit-body]')?.value === '>>> hello world', null, { timeout: 30_000 });
    const caret = await b.page.evaluate(() => document.querySelector('[data-testid=edit-body]').selectionStart);
    assert.equal(caret, 10, 'the caret moved with the text before it');
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('fast typing while writes queue up stores every character exactly once', async () => {
  const server = await startServer();
  const a = await profile();
  try {
    // Synced, so the worker's pushes and acknowledgements compete with the typing for IndexedDB.
    await ownerWithLink(a.page, server.url, 'Typed fast');
    await noteNamed(a.page, 'Typed fast').click();
    const body = a.page.getByTestId('edit-body');
    await body.click();
    const text = 'the quick brown fox jumps over the lazy dog. '.repeat(12);
    // A CPU four times slower makes each write take longer, so keystrokes queue behind them.
    const cdp = await a.ctx.newCDPSession(a.page);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
    const logs = [];
    a.page.on('console', (m) => logs.push(m.text()));
    await a.page.keyboard.type(text);
    if (logs.some((l) => /panicked|error/i.test(l))) console.log('page console:', logs.join('\n'));
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 1 });
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 60_000 });
    await a.page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 60_000 });
    const shown = await body.inputValue();
    if (shown !== text) await a.page.screenshot({ path: `${SCREENSHOTS}/fast-typing-failed.png` });
    assert.equal(shown, text, 'the field holds what was typed');
    // What the engine stored: a reload shows exactly the typed text, not a character more.
    await a.page.reload();
    await noteNamed(a.page, 'Typed fast').click({ timeout: 30_000 });
    assert.equal(await a.page.getByTestId('edit-body').inputValue(), text);
  } finally {
    await a.ctx.close();
    server.stop();
  }
});

test('the status says up to date when the server acknowledged an edit before its local write finished', async () => {
  const server = await startServer();
  const a = await profile();
  // The page hears each IndexedDB commit late (as on a slow disk): the worker's push of the staged
  // edit, its acknowledgement and the worker's "up to date" all arrive before the edit is stored.
  await a.ctx.addInitScript(() => {
    const d = Object.getOwnPropertyDescriptor(IDBTransaction.prototype, 'oncomplete');
    Object.defineProperty(IDBTransaction.prototype, 'oncomplete', {
      configurable: true,
      get() { return d.get.call(this); },
      set(fn) {
        const ms = window.__slowCommit;
        d.set.call(this, fn && ms ? function (e) { setTimeout(() => fn.call(this, e), ms); } : fn);
      },
    });
  });
  try {
    await ownerWithLink(a.page, server.url, 'First');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    await a.page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 30_000 });
    await a.page.evaluate(() => { window.__slowCommit = 500; });
    for (const title of ['Second', 'Third']) {
      await addNote(a.page, title);
      await noteNamed(a.page, title).waitFor();
      // It was on the server before it was stored here: once stored, nothing is left to send.
      await a.page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 5_000 });
      await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 5_000 });
    }
  } finally {
    await a.ctx.close();
    server.stop();
  }
});
