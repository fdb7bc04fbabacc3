// Storage health: persistent storage is asked for once a notebook syncs, usage and quota are shown,
// and a browser that deleted Hearth's IndexedDB between two page loads is noticed — synced notebooks
// come back from the server, and the user is told which (only on this device) are lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, SCREENSHOTS, profile, status, noteNamed, addNote, ownerWithLink } from './helpers.mjs';

test('a deleted IndexedDB is noticed on the next load: synced notebooks come back, lost ones are named', async () => {
  const server = await startServer();
  const a = await profile();
  try {
    await ownerWithLink(a.page, server.url, 'Kept on the server');
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    await a.page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 30_000 });
    // Persistent storage was asked for once the notebook synced; usage and quota are in the details.
    await a.page.waitForFunction(() => localStorage.getItem('hearth.persist-asked') === '1', null, { timeout: 15_000 });
    await a.page.getByTestId('sync-status').click();
    await a.page.getByTestId('storage-usage').filter({ hasText: /Storage: .+ of .+ used/ }).waitFor({ timeout: 15_000 });
    await a.page.getByTestId('sync-status').click();
    // A second notebook that never syncs.
    await a.page.getByTestId('tab-notebooks').click();
    await a.page.getByTestId('new-notebook').fill('Only here');
    await a.page.getByRole('button', { name: 'Create', exact: true }).click();
    await a.page.getByTestId('workspace-name').filter({ hasText: 'Only here' }).waitFor();
    await addNote(a.page, 'Never synced');
    // The browser deletes the database while no page of the app is open.
    await a.page.goto(server.url + '/healthz');
    const deleted = await a.page.evaluate(() => new Promise((resolve) => {
      const req = indexedDB.deleteDatabase('hearth');
      req.onsuccess = () => resolve('deleted');
      req.onerror = () => resolve('error');
      req.onblocked = () => resolve('blocked');
    }));
    assert.equal(deleted, 'deleted');
    await a.page.goto(server.url + '/');
    const health = a.page.getByTestId('storage-health');
    await health.filter({ hasText: 'This browser deleted Hearth' }).waitFor({ timeout: 30_000 });
    assert.match(await health.innerText(), /Bringing back from the server: “My notebook”/);
    assert.match(await health.innerText(), /Lost, because they were only on this device: “Only here”/);
    // The synced notebook is back, with its note, from the server; no empty notebook was made.
    await noteNamed(a.page, 'Kept on the server').waitFor({ timeout: 30_000 });
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    await a.page.screenshot({ path: `${SCREENSHOTS}/storage-evicted.png`, fullPage: true });
    await a.page.getByTestId('tab-notebooks').click();
    await a.page.getByTestId('notebook').first().waitFor();
    assert.equal(await a.page.getByTestId('notebook').count(), 1, 'only the notebook that came back');
    // Told once: the next load finds nothing missing.
    await a.page.reload();
    await noteNamed(a.page, 'Kept on the server').waitFor({ timeout: 30_000 });
    assert.equal(await a.page.getByTestId('storage-health').count(), 0);
    assert.deepEqual(a.errors, []);
  } finally {
    await a.ctx.close();
    server.stop();
  }
});
