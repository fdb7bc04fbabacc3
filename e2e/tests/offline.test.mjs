// After one visit the app opens with the network off (service worker), keeps new edits, and syncs
// them when the network returns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, SCREENSHOTS, profile, status, noteNamed, addNote, ownerWithLink } from './helpers.mjs';

test('after one visit the app opens offline, keeps new edits and syncs them when the network returns', async () => {
  const server = await startServer();
  const a = await profile();
  const b = await profile();
  try {
    const link = await ownerWithLink(a.page, server.url, 'Before offline');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    await b.page.goto(link);
    await noteNamed(b.page, 'Before offline').waitFor({ timeout: 30_000 });

    await a.page.evaluate(() => navigator.serviceWorker.ready);
    await a.page.reload();
    await noteNamed(a.page, 'Before offline').waitFor({ timeout: 30_000 });
    await a.ctx.setOffline(true);
    await a.page.reload();
    await noteNamed(a.page, 'Before offline').waitFor({ timeout: 30_000 });
    await status(a.page).filter({ hasText: 'offline' }).waitFor({ timeout: 30_000 });
    await addNote(a.page, 'Written offline');
    await a.page.screenshot({ path: `${SCREENSHOTS}/offline-reload.png`, fullPage: true });
    await a.ctx.setOffline(false);
    await noteNamed(b.page, 'Written offline').waitFor({ timeout: 60_000 });
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    server.stop();
  }
});

test('a new release offers a reload instead of breaking the open page', async () => {
  const { cpSync, mkdtempSync, readFileSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const staticDir = mkdtempSync(join(tmpdir(), 'hearth-dist-'));
  cpSync(process.env.HEARTH_DIST ?? 'dist', staticDir, { recursive: true });
  const server = await startServer({ staticDir });
  const a = await profile();
  try {
    await a.page.goto(server.url + '/');
    await a.page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
    await a.page.evaluate(() => navigator.serviceWorker.ready);
    await a.page.reload();
    await a.page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
    await a.page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    // Deploy a new release: a new service worker build id.
    const sw = join(staticDir, 'sw.js');
    writeFileSync(sw, readFileSync(sw, 'utf8').replace(/hearth-shell-[^']*/, 'hearth-shell-next-release'));
    await a.page.evaluate(() => navigator.serviceWorker.getRegistration().then((r) => r.update()));
    await a.page.getByTestId('update').waitFor({ timeout: 30_000 });
    await a.page.screenshot({ path: `${SCREENSHOTS}/update-offer.png`, fullPage: true });
    await a.page.getByTestId('update').getByRole('button', { name: 'Reload' }).click();
    await a.page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
    // The new worker took over: it controls the page and only its cache is left.
    await a.page.waitForFunction(async () => {
      const keys = await caches.keys();
      return navigator.serviceWorker.controller !== null && keys.length === 1 && keys[0] === 'hearth-shell-next-release';
    }, null, { timeout: 30_000 });
    const reg = await a.page.evaluate(async () => {
      const r = await navigator.serviceWorker.getRegistration();
      return { waiting: r.waiting !== null, active: r.active?.state };
    });
    assert.deepEqual(reg, { waiting: false, active: 'activated' });
  } finally {
    await a.ctx.close();
    server.stop();
  }
});
