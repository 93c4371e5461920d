// The history reads bench/history.ts times, built against the schema the gateway serves: fields that
// are not there yet (availability) are reported missing instead of failing the run, and their
// selections are made from introspection, so they follow the shape that lands.
import { Pool } from 'undici';
import { BENCH_ADMIN_TOKEN } from './server-process';

const HEADERS = {
  'content-type': 'application/json',
  accept: 'application/graphql-response+json',
  authorization: `Bearer ${BENCH_ADMIN_TOKEN}`,
  // Every request runs: the response cache would time a lookup, not the history.
  'cache-control': 'no-cache',
};

export async function post(client: Pool, body: string): Promise<{ status: number; text: string }> {
  const response = await client.request({ path: '/graphql', method: 'POST', headers: HEADERS, body });
  return { status: response.statusCode, text: await response.body.text() };
}

export async function data<T>(client: Pool, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const { status, text } = await post(client, JSON.stringify({ query, variables }));
  const parsed = JSON.parse(text) as { data?: T; errors?: unknown };
  if (status !== 200 || parsed.errors || !parsed.data) throw new Error(`query failed (${status}): ${text.slice(0, 400)}`);
  return parsed.data;
}

interface TypeRef {
  kind: string;
  name: string | null;
  ofType: TypeRef | null;
}
interface Field {
  name: string;
  args: { name: string; type: TypeRef }[];
  type: TypeRef;
}
interface SchemaType {
  name: string;
  kind: string;
  fields: Field[] | null;
  interfaces: { name: string }[] | null;
}

const INTROSPECTION = `{ __schema { types { name kind interfaces { name }
  fields { name type { ...T } args { name type { ...T } } } } } }
  fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }`;

/** The types of the schema a gateway serves, by name. */
export async function loadSchema(client: Pool): Promise<Map<string, SchemaType>> {
  const result = await data<{ __schema: { types: SchemaType[] } }>(client, INTROSPECTION);
  return new Map(result.__schema.types.map((t) => [t.name, t]));
}

const named = (t: TypeRef): string => (t.ofType ? named(t.ofType) : t.name!);
const required = (t: TypeRef) => t.kind === 'NON_NULL';

/**
 * A selection of `typeName`'s fields that need no arguments: scalars and enums, and objects two
 * levels down, but no Node (a box or device would time their loaders, not the history).
 */
export function selectionOf(schema: Map<string, SchemaType>, typeName: string, depth = 2): string {
  const type = schema.get(typeName);
  if (!type?.fields) return '';
  const parts: string[] = [];
  for (const field of type.fields) {
    if (field.args.some((a) => required(a.type))) continue;
    const inner = schema.get(named(field.type));
    if (!inner) continue;
    if (inner.kind === 'SCALAR' || inner.kind === 'ENUM') parts.push(field.name);
    else if (inner.kind === 'OBJECT' && depth > 1 && !inner.interfaces?.some((i) => i.name === 'Node')) {
      const sub = selectionOf(schema, inner.name, depth - 1);
      if (sub) parts.push(`${field.name} { ${sub} }`);
    }
  }
  return parts.join(' ');
}

/**
 * `field(since: ..., bucket: DAY)` on `parent`, with the arguments it takes among `since`, `until` and
 * `bucket`, and a selection of what it returns; or why it cannot be asked.
 */
export function historyField(
  schema: Map<string, SchemaType>,
  parent: string,
  fieldName: string,
  values: { since: Date; bucket?: string },
): { text: string } | { missing: string } {
  const field = schema.get(parent)?.fields?.find((f) => f.name === fieldName);
  if (!field) return { missing: `${parent}.${fieldName} is not in this gateway's schema` };
  const args: string[] = [];
  for (const arg of field.args) {
    if (arg.name === 'since') args.push(`since: "${values.since.toISOString()}"`);
    else if (arg.name === 'bucket' && values.bucket) args.push(`bucket: ${values.bucket}`);
    else if (required(arg.type)) return { missing: `${parent}.${fieldName} needs an argument this bench does not know: ${arg.name}` };
  }
  const returned = named(field.type);
  let selection = selectionOf(schema, returned);
  // A connection (e.g. buckets in pages): its nodes.
  const nodes = schema.get(returned)?.fields?.find((f) => f.name === 'nodes');
  if (nodes) selection = `nodes { ${selectionOf(schema, named(nodes.type))} }`;
  return { text: `${fieldName}${args.length ? `(${args.join(', ')})` : ''}${selection ? ` { ${selection} }` : ''}` };
}

export interface Latencies {
  /** Each measured request's time, ms. */
  samples: number[];
  requests: number;
  errors: number;
  p50: number;
  p99: number;
  firstError?: string;
}

/**
 * `concurrency` clients, each sending the next of `bodies` as soon as the last is answered: `warmup`
 * seconds unmeasured, then `duration` seconds measured.
 */
export async function measure(client: Pool, bodies: string[], options: { concurrency: number; warmup: number; duration: number }): Promise<Latencies> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let measuring = false;
  let stop = false;
  let next = 0;
  const worker = async () => {
    while (!stop) {
      const body = bodies[next++ % bodies.length]!;
      const started = performance.now();
      let ok = false;
      try {
        const { status, text } = await post(client, body);
        ok = status === 200 && !text.includes('"errors"');
        if (!ok) firstError ??= `${status}: ${text.slice(0, 300)}`;
      } catch (error) {
        firstError ??= (error as Error).message;
      }
      if (!measuring) continue;
      latencies.push(performance.now() - started);
      if (!ok) errors++;
    }
  };
  const workers = Array.from({ length: options.concurrency }, worker);
  await new Promise((r) => setTimeout(r, options.warmup * 1000));
  measuring = true;
  await new Promise((r) => setTimeout(r, options.duration * 1000));
  measuring = false;
  stop = true;
  await Promise.all(workers);
  return summarizeLatencies(latencies, errors, firstError);
}

function summarizeLatencies(samples: number[], errors: number, firstError: string | undefined): Latencies {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? Number.NaN;
  return { samples, requests: samples.length, errors, p50: at(0.5), p99: at(0.99), firstError };
}

/** The measurements of several rounds of one query, as one. */
export function mergeLatencies(rounds: Latencies[]): Latencies {
  return summarizeLatencies(
    rounds.flatMap((r) => r.samples),
    rounds.reduce((n, r) => n + r.errors, 0),
    rounds.find((r) => r.firstError)?.firstError,
  );
}
