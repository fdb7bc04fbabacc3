// The engine's plain-JavaScript API (no Leptos): the example page creates, edits, subscribes and
// keeps its notes in IndexedDB across a reload.
import { test } from 'node:test';
import { startServer, profile, SCREENSHOTS } from './helpers.mjs';

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
