import { decodeGlobalID as decodeRelayGlobalId, encodeGlobalID } from '@pothos/plugin-relay';
import { isObjectType, type GraphQLSchema } from 'graphql';
import { badUserInput } from './errors';

/** `base64("Box:12")`, the relay plugin's format; the ingest route answers `boxId` in the same form. */
export function encodeGlobalId(typename: string, id: number | string): string {
  return encodeGlobalID(typename, id);
}

/** Decodes a global id, or fails with `BAD_USER_INPUT` saying the id is not one this API issued. */
export function decodeGlobalId(globalId: string): { typename: string; id: string } {
  try {
    return decodeRelayGlobalId(globalId);
  } catch {
    throw badUserInput(`${JSON.stringify(globalId)} is not a valid ID; use an \`id\` this API returned.`, { argument: 'id' });
  }
}

/** Types whose ids are Postgres `integer`s (serial); the others are `bigint`s (bigserial). */
const INT4_IDS: ReadonlySet<string> = new Set(['Box', 'Device', 'ApiToken', 'AlertRule', 'WebhookChannel']);
const INT4_MAX = 2 ** 31 - 1;

/**
 * The database id inside a global id of `typename`: a positive integer, or `BAD_USER_INPUT`. A number
 * beyond what the type's column holds names no row: it becomes 0, which no row has either.
 */
export function parseDatabaseId(id: string, typename: string): number {
  const value = Number(id);
  if (INT4_IDS.has(typename) && Number.isSafeInteger(value) && value > INT4_MAX && /^[1-9][0-9]{0,15}$/.test(id)) return 0;
  if (!/^[1-9][0-9]{0,15}$/.test(id) || !Number.isSafeInteger(value)) {
    throw badUserInput(`${typename} ID holds ${JSON.stringify(id)}, not a ${typename} number; use an \`id\` this API returned.`);
  }
  return value;
}

/** `node(id:)` and `nodes(ids:)` take ids of node types only; others were not issued by this API. */
export function assertNodeTypename(typename: string, schema: GraphQLSchema): void {
  const type = schema.getType(typename);
  if (!isObjectType(type) || !type.getInterfaces().some((i) => i.name === 'Node')) {
    throw badUserInput(`The ID names a ${JSON.stringify(typename)}, which is not a type of this API; use an \`id\` this API returned.`, {
      argument: 'id',
    });
  }
}
