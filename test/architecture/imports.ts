import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

// The rules ARCHITECTURE.md states, read from its tables, and every import of the tree, read by
// TypeScript's own scanner (static, `export … from`, `import type` and dynamic `import()` alike).

export interface ImportRules {
  /** Part (a file, or a folder ending in `/`) → the parts it may import (a folder admits all below it). */
  mayImport: Map<string, string[]>;
  /** Package → the only part (folder) of src/ that may import it. */
  packageOwners: Map<string, string>;
}

export interface Import {
  /** The importing file, relative to the repository root. */
  file: string;
  /** As written. */
  specifier: string;
  /** The file it resolves to, relative to the root; undefined for a package. */
  target?: string;
}

const code = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

/** The "Who may import whom" table and the "Packages:" line of ARCHITECTURE.md. */
export function readRules(markdown: string): ImportRules {
  const mayImport = new Map<string, string[]>();
  for (const line of markdown.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    // | `part` | `allowed`, `allowed` |   (or "nothing")
    if (cells.length !== 4 || !/^`[^`]+`$/.test(cells[1]!)) continue;
    mayImport.set(code(cells[1]!)[0]!, code(cells[2]!));
  }
  const packageOwners = new Map<string, string>();
  for (const m of markdown.matchAll(/only `([^`]+)` imports `([^`]+)`/g)) packageOwners.set(m[2]!, m[1]!);
  return { mayImport, packageOwners };
}

/** The row a file belongs to: its own, else the deepest folder row that holds it. */
export function partOf(file: string, rules: ImportRules): string | undefined {
  if (rules.mayImport.has(file)) return file;
  let best: string | undefined;
  for (const part of rules.mayImport.keys()) {
    if (part.endsWith('/') && file.startsWith(part) && (!best || part.length > best.length)) best = part;
  }
  return best;
}

/** Why `imported` may not be imported from `file`, or undefined when the rules allow it. */
export function brokenRule(imported: Import, rules: ImportRules): string | undefined {
  const from = partOf(imported.file, rules);
  if (!from) return `${imported.file} is in no part: add its folder to the table in ARCHITECTURE.md`;
  if (imported.target === undefined) {
    const name = imported.specifier.startsWith('@') ? imported.specifier.split('/').slice(0, 2).join('/') : imported.specifier.split('/')[0]!;
    const owner = rules.packageOwners.get(name);
    if (owner && imported.file.startsWith('src/') && !imported.file.startsWith(owner)) {
      return `${imported.file} imports '${imported.specifier}': in src/, only ${owner} imports ${name} (the rest uses src/db/sql.ts)`;
    }
    return undefined;
  }
  const to = partOf(imported.target, rules);
  if (!to) return `${imported.file} imports '${imported.specifier}' (${imported.target}), which is in no part of ARCHITECTURE.md`;
  if (to === from) return undefined;
  const allowed = rules.mayImport.get(from)!;
  if (allowed.some((part) => to === part || (part.endsWith('/') && to.startsWith(part)))) return undefined;
  return `${imported.file} imports '${imported.specifier}' (${to}), but ${from} ${allowed.length ? `may import only ${allowed.join(', ')}` : 'imports no other part'}`;
}

function sourceFiles(root: string, folder: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(path.join(root, folder), { withFileTypes: true })) {
    const child = `${folder}/${entry.name}`;
    if (entry.isDirectory() && entry.name !== 'node_modules') files.push(...sourceFiles(root, child));
    else if (entry.isFile() && /\.[cm]?tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts')) files.push(child);
  }
  return files;
}

/** A relative specifier as the file it names (`./x` → `x.ts`, `./dir` → `dir/index.ts`). */
function resolve(root: string, file: string, specifier: string): string {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
  const candidates = [base, `${base}.ts`, `${base.replace(/\.js$/, '')}.ts`, `${base}/index.ts`];
  return candidates.find((candidate) => statSync(path.join(root, candidate), { throwIfNoEntry: false })?.isFile()) ?? base;
}

/** Every import of every TypeScript file under `folders`. */
export function importsOf(root: string, folders: readonly string[]): Import[] {
  const imports: Import[] = [];
  for (const file of folders.flatMap((folder) => sourceFiles(root, folder))) {
    const { importedFiles } = ts.preProcessFile(readFileSync(path.join(root, file), 'utf8'), true, true);
    for (const { fileName: specifier } of importedFiles) {
      if (specifier.startsWith('node:')) continue;
      imports.push(specifier.startsWith('.') ? { file, specifier, target: resolve(root, file, specifier) } : { file, specifier });
    }
  }
  return imports;
}

/** A cycle between parts (`a → b → a`), if their imports hold one. */
export function partCycle(imports: readonly Import[], rules: ImportRules): string[] | undefined {
  const graph = new Map<string, Set<string>>();
  for (const { file, target } of imports) {
    const from = partOf(file, rules);
    const to = target && partOf(target, rules);
    if (!from || !to || from === to) continue;
    if (!graph.has(from)) graph.set(from, new Set());
    graph.get(from)!.add(to);
  }
  const done = new Set<string>();
  const trail: string[] = [];
  const visit = (part: string): string[] | undefined => {
    const at = trail.indexOf(part);
    if (at !== -1) return [...trail.slice(at), part];
    if (done.has(part)) return undefined;
    trail.push(part);
    for (const next of graph.get(part) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    trail.pop();
    done.add(part);
    return undefined;
  };
  for (const part of graph.keys()) {
    const cycle = visit(part);
    if (cycle) return cycle;
  }
  return undefined;
}
