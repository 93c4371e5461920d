import { readFileSync } from 'node:fs';

/**
 * The node flags `npm start` runs the gateway with, read from package.json's start script
 * (`node <flags> --import tsx src/main.ts`), so that the tests and benchmarks that start the gateway
 * in a process of their own start it the same way.
 *
 * `--max-semi-space-size=64` (MiB): each of the hundreds of reports in flight holds its request,
 * response and body alive through its batch's commit, so they survive V8's young-generation
 * collections, which copy every survivor. 64 MiB instead of the default 16 collects four times less
 * often (the young generation may then take 128 MiB). In bench:ingest (`--only gateway`, two runs
 * each) the gateway used 102–106 instead of 109–114 µs of CPU a report and sustained 5% more. The
 * query path keeps its rate, but its collections pause longer: light queries' p99 was 4–6 ms higher
 * in bench:query (README).
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = (() => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } };
  const words = pkg.scripts.start.split(/\s+/);
  if (words[0] !== 'node') return [];
  return words.slice(1, words.indexOf('--import'));
})();
