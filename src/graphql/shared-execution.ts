import {
  createSourceEventStream,
  execute,
  getOperationAST,
  Kind,
  print,
  visit,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { EventHub } from '../live/event-hub';
import { replayStats } from '../models/replay-pages';
import type { GraphQLContext } from './context';

// One execution per event for every subscriber whose result is necessarily the same.
//
// graphql-js executes a subscription's selection once per event per subscriber: ten thousand
// dashboards watching one fleet run ten thousand identical executions of every change, and the
// transports serialize each result ten thousand times. Here a subscription's source stream stays its
// own (its filter, replay, slot, revocation and buffer are per subscriber), but executing an event is
// shared: the result is kept on the event object itself (a WeakMap, gone with the event) under the
// subscriber's *payload key*, and every subscriber with the same key gets the same result object, whose
// JSON is built once (`serializedResult`). Hubs hand every subscriber the same event object, and the
// shared replay the same objects to every client reading the same page, so sharing needs no bookkeeping.
//
// What a result depends on, and so the key: the document and operation (the selection), the role
// (fields a viewer may not read or sees masked), and the variables the selection below the root field
// uses. Variables used only in the root field's arguments (filters, `after`) choose *which* events a
// subscriber gets, not what an event looks like, so subscribers that differ only there still share.
// (That holds for every subscription field of this schema: their resolvers return the event as it is.
// A field whose arguments shaped its events would have to put them in the key.)
// A result with errors is never shared: an error message can name the token that asked.

/** The key of what a subscriber's result for an event depends on; see above. */
export function payloadKey(args: ExecutionArgs): string {
  const context = args.contextValue as GraphQLContext;
  const shape = shapeOf(args.document, args.operationName);
  const variables = args.variableValues ?? {};
  // An omitted variable (its default applies) is not one given as null.
  const used = shape.variables.map((name) => (name in variables ? JSON.stringify(variables[name]) : '')).join(',');
  return `${context.principal?.role ?? ''}\u0000${shape.text}\u0000${args.operationName ?? ''}\u0000${used}`;
}

interface DocumentShape {
  text: string;
  /** Variables used anywhere but in the root fields' own arguments. */
  variables: string[];
}

const shapes = new WeakMap<DocumentNode, Map<string, DocumentShape>>();

function shapeOf(document: DocumentNode, operationName: string | null | undefined): DocumentShape {
  let byOperation = shapes.get(document);
  if (!byOperation) shapes.set(document, (byOperation = new Map()));
  let shape = byOperation.get(operationName ?? '');
  if (shape) return shape;
  const operation = getOperationAST(document, operationName);
  const variables = new Set<string>();
  const collect = (node: Parameters<typeof visit>[0]) =>
    visit(node, {
      Variable(variable) {
        variables.add(variable.name.value);
      },
    });
  for (const selection of operation?.selectionSet.selections ?? []) {
    // A root field's own arguments pick events; its directives and selection shape the result.
    if (selection.kind === Kind.FIELD) {
      for (const directive of selection.directives ?? []) collect(directive);
      if (selection.selectionSet) collect(selection.selectionSet);
    } else collect(selection);
  }
  for (const definition of document.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) collect(definition);
  shape = { text: print(document), variables: [...variables].sort() };
  byOperation.set(operationName ?? '', shape);
  return shape;
}

type MaybePromise<T> = T | Promise<T>;

/** Results of an event object, by payload key. */
const resultsOfEvent = new WeakMap<object, Map<string, MaybePromise<ExecutionResult>>>();
/** JSON of shared results, built on first use. */
const json = new WeakMap<ExecutionResult, string>();

/** Counts for tests and metrics: executions run, and results handed out from another subscriber's. */
export const sharedExecutionStats = { executed: 0, shared: 0 };

/** The figures of live delivery's sharing in this process, for /metrics. */
export function liveDeliveryFigures(hub: EventHub) {
  return {
    filters: hub.filterCount,
    executions: sharedExecutionStats.executed,
    sharedResults: sharedExecutionStats.shared,
    replayReads: replayStats.reads,
    replayPagesShared: replayStats.served,
  };
}

/** A result's JSON, built once for every subscriber and transport that sends it. */
export function serializedResult(result: ExecutionResult): string {
  let text = json.get(result);
  if (text === undefined) {
    text = JSON.stringify(result);
    json.set(result, text);
  }
  return text;
}

const bytes = new WeakMap<ExecutionResult, Buffer>();

/** A result's JSON as UTF-8, encoded once for every websocket that sends it. */
export function serializedResultBytes(result: ExecutionResult): Buffer {
  let encoded = bytes.get(result);
  if (encoded === undefined) {
    encoded = Buffer.from(serializedResult(result));
    bytes.set(result, encoded);
  }
  return encoded;
}

/**
 * yoga's SSE writer serializes with a result's own `stringify` when it has one: a shared result's
 * is its JSON built once. (Given anything other than the result itself, e.g. a copy with its errors
 * cleaned, it serializes that.)
 */
function markShared(result: ExecutionResult): ExecutionResult {
  Object.defineProperty(result, 'stringify', {
    value: (value: unknown) => (value === result ? serializedResult(result) : JSON.stringify(value)),
    enumerable: false,
  });
  return result;
}

function executeEvent(args: ExecutionArgs, event: unknown): MaybePromise<ExecutionResult> {
  sharedExecutionStats.executed++;
  return execute({ ...args, rootValue: event });
}

function resultFor(args: ExecutionArgs, key: string, event: unknown): MaybePromise<ExecutionResult> {
  if (typeof event !== 'object' || event === null) return executeEvent(args, event);
  let results = resultsOfEvent.get(event);
  if (!results) resultsOfEvent.set(event, (results = new Map()));
  const known = results.get(key);
  if (known !== undefined) {
    sharedExecutionStats.shared++;
    const own = (result: ExecutionResult) => (result.errors ? executeEvent(args, event) : result);
    return known instanceof Promise ? known.then(own) : own(known);
  }
  const running = executeEvent(args, event);
  const settle = (result: ExecutionResult) => {
    if (result.errors) results.delete(key);
    else markShared(result);
    return result;
  };
  if (running instanceof Promise) {
    const shared = running.then(settle, (error: unknown) => {
      results.delete(key);
      throw error;
    });
    results.set(key, shared);
    return shared;
  }
  results.set(key, running);
  return settle(running);
}

/** `source` with each event mapped to its (shared) result; `return` and `throw` reach the source. */
function mapSource(source: AsyncIterable<unknown>, map: (event: unknown) => MaybePromise<ExecutionResult>): AsyncGenerator<ExecutionResult, undefined> {
  const iterator = source[Symbol.asyncIterator]();
  const mapped: AsyncGenerator<ExecutionResult, undefined> = {
    [Symbol.asyncIterator]: () => mapped,
    async next() {
      const item = await iterator.next();
      if (item.done) return { value: undefined, done: true };
      return { value: await map(item.value), done: false };
    },
    async return() {
      await iterator.return?.();
      return { value: undefined, done: true };
    },
    async throw(error: unknown) {
      if (iterator.throw) await iterator.throw(error);
      throw error;
    },
  };
  return mapped;
}

/** graphql-js's `subscribe`, with each event's execution shared as described above. */
export async function subscribeShared(args: ExecutionArgs): Promise<AsyncGenerator<ExecutionResult, undefined> | ExecutionResult> {
  // Setting a subscription up takes a turn like delivery does: a thousand clients reconnecting at
  // once are set up a slice at a time, with ingest's I/O between.
  const wait = (args.contextValue as GraphQLContext).events.slices.turn();
  if (wait) await wait;
  const source = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in source)) return source;
  const key = payloadKey(args);
  return mapSource(source, (event) => resultFor(args, key, event));
}

/** Runs every subscription (websocket, SSE, graphql-sse) through `subscribeShared`. */
export function useSharedSubscriptionExecution(): Plugin {
  return {
    onSubscribe({ setSubscribeFn }) {
      setSubscribeFn(subscribeShared as Parameters<typeof setSubscribeFn>[0]);
    },
  };
}
