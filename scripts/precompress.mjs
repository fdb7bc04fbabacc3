// Writes FILE.gz beside every text and wasm file of the given folders (zopfli: gzip that any
// browser reads, ~4% smaller than gzip -9), so the server sends the compressed bytes to browsers
// that accept gzip (`hearth-server` serves FILE.gz with `Content-Encoding: gzip` when it is at
// least as new as FILE). Each .gz is written whole, then renamed. Usage: node precompress.mjs DIR…
import { createRequire } from 'node:module';
import { readdirSync, readFileSync, writeFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(new URL('../e2e/package.json', import.meta.url));
const zopfli = require('@gfx/zopfli');
const COMPRESSIBLE = /\.(wasm|js|css)$/; // what the server sends precompressed (server/src/static_files.rs)
const ITERATIONS = Number(process.env.HEARTH_ZOPFLI_ITERATIONS ?? 5);

const gzip = (bytes) => new Promise((resolve, reject) => {
  zopfli.gzip(bytes, { numiterations: ITERATIONS }, (err, out) => (err ? reject(err) : resolve(out)));
});

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (COMPRESSIBLE.test(entry.name)) yield path;
  }
}

let raw = 0;
let packed = 0;
for (const dir of process.argv.slice(2)) {
  for (const path of files(dir)) {
    const bytes = readFileSync(path);
    const out = await gzip(bytes);
    writeFileSync(`${path}.gz.tmp`, out);
    renameSync(`${path}.gz.tmp`, `${path}.gz`);
    raw += statSync(path).size;
    packed += out.length;
  }
}
console.log(`precompressed: ${raw} B → ${packed} B gzip (zopfli, ${ITERATIONS} iterations)`);
