import { AlertRequestError } from '../alerts/errors';
import { clientError } from './errors';
import { decodeGlobalId, parseDatabaseId } from './global-id';

// What the alert and webhook fields share: ids in arguments, and the client errors of their writes.

/** The database id inside a global id of `typename`, or BAD_USER_INPUT naming `argument`. */
export function databaseIdOf(globalId: string, typename: string, argument: string): number {
  let decoded: { typename: string; id: string };
  try {
    decoded = decodeGlobalId(globalId);
  } catch {
    throw clientError(`${JSON.stringify(globalId)} is not a valid ID; use an \`id\` this API returned.`, { code: 'BAD_USER_INPUT', argument });
  }
  if (decoded.typename !== typename) {
    throw clientError(`\`${argument}\` takes ${typename} IDs; ${JSON.stringify(globalId)} is a ${decoded.typename} ID.`, { code: 'BAD_USER_INPUT', argument });
  }
  try {
    return parseDatabaseId(decoded.id, typename);
  } catch {
    throw clientError(`${JSON.stringify(globalId)} is not a ${typename} ID; use an \`id\` this API returned.`, { code: 'BAD_USER_INPUT', argument });
  }
}

/** `databaseIdOf` for a list; null and undefined pass through (they mean "all" or "unchanged"). */
export function databaseIdsOf(globalIds: readonly string[] | null | undefined, typename: string, argument: string): number[] | null | undefined {
  return globalIds?.map((id) => databaseIdOf(id, typename, argument));
}

/** Runs a write of src/alerts/; a client's mistake it reports becomes a client error with its code, argument and details. */
export async function alertWrite<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AlertRequestError) throw clientError(error.message, { code: error.code, argument: error.argument, ...error.details });
    throw error;
  }
}
