import { readFileSync } from 'node:fs';

/**
 * The node flags `npm start` runs the gateway with, read from package.json's start script
 * (`node <flags> --import tsx src/main.ts`), so that the tests and benchmarks that start the gateway
 * in a process of their own start it the same way.
 *
 * `--max-semi-space-size=64` (MiB): each of the hundreds of reports in flight holds its request,
 * response and body alive through its batch's commit, so they survive V8's young-generation
 * collections, which copy every survivor. With the default (16 MiB) the gateway spent 114–121 µs of
 * CPU a report in bench:ingest, with 64 MiB 102–104 µs, and sustained 7–10% more reports (collected
 * four times less often; the young generation may then take 128 MiB). The query path, which
 * allocates much and keeps little, loses some of its rate to it (6–19% in bench:query, see README):
 * a replica that only serves queries can run `node --import tsx src/main.ts`.
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = (() => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } };
  const words = pkg.scripts.start.split(/\s+/);
  if (words[0] !== 'node') return [];
  return words.slice(1, words.indexOf('--import'));
})();
