// Writes FILE.br and FILE.gz beside every text and wasm file of the given folders — brotli at
// quality 11 with a 16 MiB window (Node's own zlib; browsers offer it over https and to localhost) and zopfli
// (gzip that any browser reads, ~4% smaller than gzip -9) — so the server sends the compressed bytes
// to browsers that accept them (`hearth-server` serves FILE.br or FILE.gz with its
// `Content-Encoding` when it is at least as new as FILE; brotli first). Each file is written whole,
// then renamed. Usage: node precompress.mjs DIR…
import { createRequire } from 'node:module';
import { brotliCompressSync, constants } from 'node:zlib';
import { readdirSync, readFileSync, writeFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(new URL('../e2e/package.json', import.meta.url));
const zopfli = require('@gfx/zopfli');
const COMPRESSIBLE = /\.(wasm|js|css)$/; // what the server sends precompressed (server/src/static_files.rs)
const ITERATIONS = Number(process.env.HEARTH_ZOPFLI_ITERATIONS ?? 5);

const gzip = (bytes) => new Promise((resolve, reject) => {
  zopfli.gzip(bytes, { numiterations: ITERATIONS }, (err, out) => (err ? reject(err) : resolve(out)));
});

const brotli = (bytes) => brotliCompressSync(bytes, {
  params: {
    [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
    [constants.BROTLI_PARAM_LGWIN]: constants.BROTLI_MAX_WINDOW_BITS, // 24: the largest browsers accept
    [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
  },
});

/** Writes `bytes` to `path` whole: a reader never sees half a file. */
function writeWhole(path, bytes) {
  writeFileSync(`${path}.tmp`, bytes);
  renameSync(`${path}.tmp`, path);
}

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (COMPRESSIBLE.test(entry.name)) yield path;
  }
}

let raw = 0;
let packed = 0;
let packedBr = 0;
for (const dir of process.argv.slice(2)) {
  for (const path of files(dir)) {
    const bytes = readFileSync(path);
    const gz = await gzip(bytes);
    const br = brotli(bytes);
    writeWhole(`${path}.gz`, gz);
    writeWhole(`${path}.br`, br);
    raw += statSync(path).size;
    packed += gz.length;
    packedBr += br.length;
  }
}
console.log(`precompressed: ${raw} B → ${packed} B gzip (zopfli, ${ITERATIONS} iterations), ${packedBr} B brotli (quality 11)`);
