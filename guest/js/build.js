// Builds myplugin.js into a WebAssembly component (run by build.sh).
// Usage: node build.js <entry.js> <out.wasm>
import { componentize } from '@bytecodealliance/componentize-js';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [entry = 'myplugin.js', out = resolve(here, '../../target/guests/myplugin-js.wasm')] =
  process.argv.slice(2);

const { component } = await componentize({
  sourcePath: resolve(here, entry),
  witPath: resolve(here, '../../wit'),
  worldName: 'plugin',
  // The host links plain WASI p2 only: no wasi:http, no incoming-handler.
  // stdio (console.* to lightningd's log), random and clocks stay.
  disableFeatures: ['http', 'fetch-event'],
});
await mkdir(dirname(resolve(out)), { recursive: true });
await writeFile(resolve(out), component);
console.log(`${resolve(out)}: ${component.length} bytes`);
