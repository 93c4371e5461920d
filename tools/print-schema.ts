// Writes schema.graphql, the committed SDL of the GraphQL API: `npm run codegen` (or `tsx tools/print-schema.ts`).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { printSchemaSdl } from '../src/graphql/schema';

const SCHEMA_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../schema.graphql');

writeFileSync(SCHEMA_FILE, printSchemaSdl());
console.error(`wrote ${path.relative(process.cwd(), SCHEMA_FILE)}`);
