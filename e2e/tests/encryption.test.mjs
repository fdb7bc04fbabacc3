// End-to-end encryption as a user meets it: notes typed in two browsers sync through a server
// that holds only ciphertext — its database (SQLite file or a pg_dump of Postgres), its backup
// and its logs never hold the text, and the link's key never reaches it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startServer, SCREENSHOTS, profile, status, noteNamed, addNote, ownerWithLink, masterToken, linkParts } from './helpers.mjs';

/** Every file under `dir`, concatenated (a SQLite database with its WAL and journal). */
function filesUnder(dir) {
  return Buffer.concat(readdirSync(dir).map((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : readFileSync(path);
  }));
}

function pgDump(url) {
  const bin = readdirSync('/usr/lib/postgresql').map((v) => `/usr/lib/postgresql/${v}/bin/pg_dump`)[0];
  return execFileSync(bin, ['--dbname', url, '--data-only'], { maxBuffer: 1 << 30 });
}

async function upToDate(page) {
  await status(page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
  await page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 30_000 });
}

const backends = ['sqlite', ...(process.env.HEARTH_TEST_PG_URL ? ['postgres'] : [])];

for (const backend of backends) {
  test(`a note's text never reaches the server in the clear (${backend}): not its database, its backup or its logs`, async () => {
    const marker = `plaintext-marker-${randomUUID()}`;
    const server = await startServer({
      databaseUrl: backend === 'sqlite' ? '' : process.env.HEARTH_TEST_PG_URL,
      env: { RUST_LOG: 'debug' },
      captureLogs: true,
    });
    const a = await profile();
    const b = await profile();
    let stopped = false;
    try {
      const link = await ownerWithLink(a.page, server.url, `${marker} title`);
      const { ws, key } = linkParts(link);
      assert.match(key ?? '', /^[A-Za-z0-9_-]{43}$/, 'the link carries the notebook key');
      await noteNamed(a.page, `${marker} title`).click();
      await a.page.getByTestId('edit-body').fill(`${marker} body`);
      // B opens the link and reads the owner's text; its own edit comes back to A.
      await b.page.goto(link);
      await noteNamed(b.page, `${marker} title`).waitFor({ timeout: 30_000 });
      await addNote(b.page, `${marker} from b`);
      await noteNamed(a.page, `${marker} from b`).waitFor({ timeout: 30_000 });
      await upToDate(a.page);
      await upToDate(b.page);
      await b.page.screenshot({ path: `${SCREENSHOTS}/encrypted-member.png`, fullPage: true });
      // The server's backup holds the notebook, sealed.
      const master = await masterToken(a.page, ws);
      const res = await fetch(`${server.url}/v1/workspaces/${ws}/backup`, { headers: { Authorization: `Bearer ${master}` } });
      assert.equal(res.status, 200);
      const backup = Buffer.from(await res.arrayBuffer());
      assert.ok(backup.length > 200 && backup.includes(ws), 'the backup is of this notebook');
      assert.ok(!backup.includes(marker), 'the backup holds no plaintext');
      // The database, read after the server stopped (everything flushed).
      await server.stopped();
      stopped = true;
      const stored = backend === 'sqlite' ? filesUnder(server.dataDir) : pgDump(process.env.HEARTH_TEST_PG_URL);
      assert.ok(stored.includes(ws), 'the database read is the one that holds the notebook');
      assert.ok(!stored.includes(marker), 'the database holds no plaintext');
      const logs = server.logs.join('');
      assert.ok(logs.includes(ws), 'the debug log was captured');
      assert.ok(!logs.includes(marker), 'the logs hold no plaintext');
      assert.ok(!logs.includes(key) && !stored.includes(key), 'the link key never reached the server');
    } finally {
      await a.ctx.close();
      await b.ctx.close();
      if (!stopped) server.stop();
    }
  });
}
