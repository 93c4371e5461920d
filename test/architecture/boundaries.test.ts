import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { brokenRule, importsOf, partCycle, partOf, readRules } from './imports';

// ARCHITECTURE.md's "Who may import whom" is the rule; this test reads it from there (so the page
// and the check cannot drift apart) and holds every import of the tree to it.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const rules = readRules(readFileSync(path.join(ROOT, 'ARCHITECTURE.md'), 'utf8'));
const imports = importsOf(ROOT, ['src', 'tools', 'bench', 'test']);

describe('import boundaries (ARCHITECTURE.md)', () => {
  it('reads the table: every src/ folder and root file has a row', () => {
    expect(rules.mayImport.get('src/db/')).toEqual(['src/log.ts']);
    expect(rules.packageOwners.get('drizzle-orm')).toBe('src/db/');
    const unplaced = imports.map((i) => i.file).filter((file) => partOf(file, rules) === undefined);
    expect([...new Set(unplaced)]).toEqual([]);
  });

  it('every import stays inside the rules', () => {
    expect(imports.length).toBeGreaterThan(500);
    const broken = imports.map((i) => brokenRule(i, rules)).filter((message) => message !== undefined);
    expect(broken).toEqual([]);
  });

  it('the parts import each other in layers, with no cycle', () => {
    expect(partCycle(imports, rules)).toBeUndefined();
  });

  it('names the file, the import and the rule when one is broken', () => {
    expect(brokenRule({ file: 'src/db/connection.ts', specifier: '../graphql/server', target: 'src/graphql/server.ts' }, rules)).toBe(
      "src/db/connection.ts imports '../graphql/server' (src/graphql/), but src/db/ may import only src/log.ts",
    );
    expect(brokenRule({ file: 'src/graphql/context.ts', specifier: '../ingest/trust', target: 'src/ingest/trust.ts' }, rules)).toMatch(
      /^src\/graphql\/context\.ts imports '\.\.\/ingest\/trust' \(src\/ingest\/\), but src\/graphql\/ may import only /,
    );
    expect(brokenRule({ file: 'src/ingest/http.ts', specifier: '../../tools/simulator/fleet', target: 'tools/simulator/fleet.ts' }, rules)).toMatch(/src\/ingest\/ may import only/);
    expect(brokenRule({ file: 'src/redaction/url-credentials.ts', specifier: '../log', target: 'src/log.ts' }, rules)).toMatch(/src\/redaction\/ imports no other part$/);
    expect(brokenRule({ file: 'src/models/boxes.ts', specifier: 'drizzle-orm' }, rules)).toBe(
      "src/models/boxes.ts imports 'drizzle-orm': in src/, only src/db/ imports drizzle-orm (the rest uses src/db/sql.ts)",
    );
    expect(brokenRule({ file: 'tools/seed/fleet.ts', specifier: '../../src/db/sql', target: 'src/db/sql.ts' }, rules)).toBeUndefined();
    expect(partCycle([
      { file: 'src/db/a.ts', specifier: '../log', target: 'src/log.ts' },
      { file: 'src/log.ts', specifier: './db/a', target: 'src/db/a.ts' },
    ], rules)).toEqual(['src/db/', 'src/log.ts', 'src/db/']);
  });
});
