// After one visit the app opens with the network off (service worker), keeps new edits, and syncs
// them when the network returns.
import { test } from 'node:test';
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
