import { getOperationAST, print, type DocumentNode, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type pg from 'pg';
import { isDatabaseUnavailable } from '../db/connection';
import { currentSnapshot } from '../models/snapshot';
import type { GraphQLContext } from './context';

export interface ResponseCacheOptions {
  pool: pg.Pool;
  /** Responses kept, least recently used dropped first. */
  maxEntries: number;
  /** Bytes of serialized responses kept, least recently used dropped first. */
  maxBytes: number;
  /** Longest a response is kept even if nothing was written (memory hygiene). */
  maxAgeMs: number;
  /** Longest a response holding a count that may lag (CountCache) is kept: the counts' own time to live. */
  countTtlMs: number;
}

type Result = ExecutionResult & { stringify?: (result: unknown) => string };

interface Entry {
  snapshot: string;
  expires: number;
  result: Result;
  /** Size of the serialized response, once serialized. */
  bytes: number;
}

/** Waiting for an identical operation in flight, at most this long before running it anyway. */
const IN_FLIGHT_WAIT_MS = 10_000;

/**
 * An exact response cache for queries. A response is stored with the database snapshot read just
 * before it was computed (`pg_current_snapshot()`: it changes whenever a transaction starts writing
 * or ends) and served again, for the same operation and variables, only while the snapshot is
 * unchanged: the tables then hold the same rows, so the query would answer the same. The check costs
 * one trivial statement instead of the operation's own. Dashboards polling the same pages between
 * writes read them from memory; under steady ingest snapshots move and entries simply stop matching.
 * Identical operations arriving while one runs under the same snapshot wait for its result.
 * A response holding a count that may lag (see CountCache) is kept no longer than such counts.
 * A request with `Cache-Control: no-cache` (or `no-store`) is always executed.
 */
export function useSnapshotResponseCache(options: ResponseCacheOptions): Plugin<GraphQLContext> {
  const entries = new Map<string, Entry>();
  const inFlight = new Map<string, { snapshot: string; done: Promise<Result | undefined> }>();
  const operations = new WeakMap<DocumentNode, boolean>();
  // yoga's parser cache hands out one document object per query text, so each is printed once.
  const texts = new WeakMap<DocumentNode, string>();

  const isQuery = (document: DocumentNode, operationName: string | null | undefined): boolean => {
    let query = operationName ? undefined : operations.get(document);
    if (query === undefined) {
      query = getOperationAST(document, operationName)?.operation === 'query';
      if (!operationName) operations.set(document, query);
    }
    return query;
  };

  const textOf = (document: DocumentNode) => {
    let text = texts.get(document);
    if (text === undefined) texts.set(document, (text = print(document)));
    return text;
  };

  let bytes = 0;
  const forget = (key: string) => {
    const entry = entries.get(key);
    if (!entry) return;
    entries.delete(key);
    bytes -= entry.bytes;
  };
  const remember = (key: string, entry: Entry) => {
    if (entries.get(key) === entry) {
      entries.delete(key); // re-inserted below: most recently used
    } else {
      forget(key);
      while (entries.size > 0 && (entries.size >= options.maxEntries || bytes > options.maxBytes)) {
        forget(entries.keys().next().value!);
      }
      bytes += entry.bytes;
    }
    entries.set(key, entry);
  };

  return {
    async onExecute({ args, setResultAndStopExecution }) {
      const context = args.contextValue as GraphQLContext;
      if (!isQuery(args.document, args.operationName)) return;
      // A websocket operation's context may hold no fetch Request; it is not a client's GET/POST either way.
      const headers = context.request?.headers as Headers | undefined;
      if (typeof headers?.get !== 'function' || /no-cache|no-store/i.test(headers.get('cache-control') ?? '')) return;
      // What a response holds depends on the role asking (scope-auth hides fields from lower roles).
      const key = `${context.principal?.role ?? ''}\u0000${args.operationName ?? ''}\u0000${textOf(args.document)}\u0000${JSON.stringify(args.variableValues ?? {})}`;
      let snapshot: string;
      try {
        snapshot = await currentSnapshot(options.pool);
      } catch (error) {
        // The database is away: run the operation, whose resolvers answer DATABASE_UNAVAILABLE.
        if (isDatabaseUnavailable(error)) return;
        throw error;
      }
      context.snapshot = snapshot;

      const entry = entries.get(key);
      if (entry && entry.snapshot === snapshot && entry.expires > Date.now()) {
        remember(key, entry);
        setResultAndStopExecution(entry.result);
        return;
      }
      const running = inFlight.get(key);
      if (running && running.snapshot === snapshot) {
        const result = await new Promise<Result | undefined>((resolve) => {
          const timer = setTimeout(() => resolve(undefined), IN_FLIGHT_WAIT_MS);
          void running.done.then((done) => {
            clearTimeout(timer);
            resolve(done);
          });
        });
        if (result) {
          setResultAndStopExecution(result);
          return;
        }
      }

      let finish!: (result: Result | undefined) => void;
      const done = new Promise<Result | undefined>((resolve) => (finish = resolve));
      inFlight.set(key, { snapshot, done });
      return {
        onExecuteDone({ result }) {
          if (inFlight.get(key)?.done === done) inFlight.delete(key);
          const single = result as Result;
          if (!single || Symbol.asyncIterator in single || single.errors?.length || context.uncacheable) {
            finish(undefined);
            return;
          }
          // Serialized and UTF-8 encoded once, then written as it is for every hit (yoga passes what
          // `stringify` returns to its Response, which takes bytes as well as text).
          const stored: Entry = {
            snapshot,
            expires: Date.now() + (context.countsLag ? options.countTtlMs : options.maxAgeMs),
            result: single,
            bytes: 0,
          };
          const stringify = single.stringify ?? JSON.stringify;
          let encoded: Buffer | undefined;
          single.stringify = (value: unknown) => {
            if (value !== single) return stringify(value);
            if (!encoded) {
              encoded = Buffer.from(stringify(value));
              if (entries.get(key) === stored) bytes += encoded.length;
              stored.bytes = encoded.length;
            }
            return encoded as unknown as string;
          };
          remember(key, stored);
          finish(single);
        },
      };
    },
  };
}
