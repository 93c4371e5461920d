import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withConfigTable } from './config-table';

// `npm run docs:config`: rewrites the README's configuration table from src/config.ts.

const readmePath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../README.md');
const before = readFileSync(readmePath, 'utf8');
const after = withConfigTable(before);
if (after === before) {
  console.log('README.md: the configuration table is current.');
} else {
  writeFileSync(readmePath, after);
  console.log('README.md: configuration table rewritten.');
}
