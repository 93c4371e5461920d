import { readFileSync } from 'node:fs';
import { buildSchema, lexicographicSortSchema, printSchema } from 'graphql';
import { expect, it } from 'vitest';
import { printSchemaSdl } from '../../src/graphql/schema';

const committed = readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8');

it('schema.graphql is the schema as printed now (else run `npm run codegen` and commit both)', () => {
  expect(committed).toBe(printSchemaSdl());
});

it('prints deterministically, in alphabetical order', () => {
  expect(printSchemaSdl()).toBe(printSchemaSdl());
  expect(`${printSchema(lexicographicSortSchema(buildSchema(committed)))}\n`).toBe(committed);
});
