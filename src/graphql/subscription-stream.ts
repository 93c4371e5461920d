import type { GraphQLError } from 'graphql';

// What the live subscriptions (statusEvents and the status fields, alertChanged) share about their
// streams: how one ends with an error the client must learn, and how an unsubscribe ends it at once.

/**
 * The last item of a stream that ends for a reason the client must learn (token revoked, too slow over
 * SSE): the field resolves it to this error, so the client gets a result with `errors` and then
 * `complete` (a source stream that throws would just break an SSE response).
 */
export class StreamEnd {
  constructor(readonly error: GraphQLError) {}
}

/** The item itself, or the stream's end thrown as the field's error. */
export function itemOrEnd<T>(item: T | StreamEnd): T {
  if (item instanceof StreamEnd) throw item.error;
  return item;
}

/**
 * `stream` as the iterator a subscription returns, whose `return()` runs `end` first (release the
 * subscription's slot, end the hub's feed): an async generator waiting for the hub cannot run its own
 * `return()` until the next item arrives, so an unsubscribe would otherwise wait for one.
 */
export function endingFirst<T>(stream: AsyncGenerator<T, undefined>, end: () => Promise<unknown>): AsyncIterableIterator<T> {
  const iterator: AsyncIterableIterator<T> = {
    [Symbol.asyncIterator]: () => iterator,
    next: () => stream.next(),
    return: async () => {
      await end();
      return stream.return(undefined);
    },
    throw: (error) => stream.throw(error),
  };
  return iterator;
}
