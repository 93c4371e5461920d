import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { renderConfigTable, TABLE_END, TABLE_START } from '../../tools/docs/config-table';

// The README's configuration table is written from src/config.ts; a change there must reach it.

const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../README.md');

it("README.md's configuration table is the one src/config.ts declares", () => {
  const readme = readFileSync(README, 'utf8');
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  expect(start !== -1 && end > start, `README.md needs ${TABLE_START} and ${TABLE_END} around its configuration table; add them and run \`npm run docs:config\``).toBe(true);
  const inReadme = readme.slice(start + TABLE_START.length, end).trim();
  if (inReadme !== renderConfigTable()) {
    // A diff of whole rows reads better than one long string.
    const rows = new Set(inReadme.split('\n'));
    const wanted = renderConfigTable().split('\n');
    const changed = wanted.filter((row) => !rows.has(row));
    const detail = changed.length > 0 ? `Rows it lacks or holds differently:\n${changed.join('\n')}` : 'Its rows are in another order, or it holds rows no variable declares.';
    expect.fail(`README.md's configuration table is stale: run \`npm run docs:config\` and commit README.md.\n${detail}`);
  }
});
