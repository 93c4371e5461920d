import fc from 'fast-check';
import {
  getNamedType,
  isCompositeType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isListType,
  isNonNullType,
  isUnionType,
  Lexer,
  Source,
  TokenKind,
  type GraphQLArgument,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLSchema,
} from 'graphql';
import { encodeGlobalId } from '../../src/graphql/global-id';

/**
 * GraphQL requests for the fuzz test. Operations are random walks over the schema (fields, arguments of
 * right and wrong types, variables, aliases, fragments, directives), built from `fc.gen()` so that a
 * counterexample shrinks to a smaller operation; then the limit bombs (deep, wide, aliases, fragments,
 * directives, tokens, cost), documents mangled as text, and HTTP requests that are no GraphQL request at all.
 */

/** What the stored fleet offers the generators: ids and keys that exist, and cursors it returned. */
export interface Fleet {
  schema: GraphQLSchema;
  boxIds: number[];
  deviceIds: number[];
  eventIds: number[];
  licenseKeys: string[];
  cursors: string[];
}

/** A request sent through `graphql()`: a document and its variables, with what the answer must include. */
export interface OperationRequest {
  transport: 'operation';
  document: string;
  variables?: Record<string, unknown>;
  accept: string;
  /** Codes one of which the answer's errors must carry; `none`: none of these may appear. */
  expect?: { oneOf?: string[]; none?: string[] };
  /** The operation may stream (a subscription): not sent with graphql(), which reads one JSON body. */
  subscription?: boolean;
}

/** A request sent through `graphqlRaw()`: anything at all. */
export interface RawRequest {
  transport: 'raw';
  method: string;
  search: string;
  body: string | Uint8Array | undefined;
  headers: Record<string, string>;
}

export type FuzzRequest = OperationRequest | RawRequest;

const ACCEPTS = ['application/graphql-response+json, application/json;q=0.9', 'application/graphql-response+json', 'application/json'];

/** Choices drawn from a fast-check generator; each shrinks towards the first option, the smaller document. */
class Pick {
  constructor(private readonly g: fc.GeneratorValue) {}
  int(min: number, max: number): number {
    return this.g(fc.integer, { min, max });
  }
  /** True with probability p; shrinks to false. */
  chance(p: number): boolean {
    return this.g(fc.nat, { max: 999 }) >= Math.round((1 - p) * 1000);
  }
  one<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  string(maxLength: number): string {
    return this.g(fc.string, { maxLength });
  }
  anyString(maxLength: number): string {
    return this.g(fc.string, { unit: 'binary', maxLength });
  }
  json(): unknown {
    return this.g(fc.jsonValue, { maxDepth: 2 });
  }
}

// ---------------------------------------------------------------------------------------------------
// Values

const b64 = (text: string) => Buffer.from(text).toString('base64');
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const NOWHERE = [999_999, 2_147_483_647, 9_007_199_254_740_991];

/** Ids for reads: existing, of no row, of another type, and malformed. */
function readIds(fleet: Fleet): string[] {
  return [
    ...fleet.boxIds.map((id) => encodeGlobalId('Box', id)),
    ...fleet.deviceIds.slice(0, 4).map((id) => encodeGlobalId('Device', id)),
    ...fleet.eventIds.slice(0, 3).map((id) => encodeGlobalId('StatusEvent', id)),
    ...idsOfNoBox(fleet),
  ];
}

/**
 * Ids a mutation or boxConfig may be given: no box of the fleet, whatever the decoding (no row, another
 * type, not an id, or the number of a stored box written as this API never writes it). Any of them that
 * changed a row or called a box would be a bug.
 */
function idsOfNoBox(fleet: Fleet): string[] {
  const first = fleet.boxIds[0] ?? 1;
  return [
    ...NOWHERE.map((n) => encodeGlobalId('Box', n)),
    ...fleet.deviceIds.slice(0, 3).map((id) => encodeGlobalId('Device', id)),
    ...fleet.eventIds.slice(0, 2).map((id) => encodeGlobalId('StatusEvent', id)),
    encodeGlobalId('BoxConfigChange', 1),
    encodeGlobalId('ApiToken', 1),
    b64(`Foo:${first}`),
    b64(`Box:0${first}`),
    b64(`Box: ${first}`),
    b64(`Box:${first} `),
    b64(`Box:+${first}`),
    b64(`Box:${first}.0`),
    b64(`Box:${first}e0`),
    b64(`Box:0x${first}`),
    b64(`Box:${first}\u0000`),
    b64('Box:-1'),
    b64('Box:0'),
    b64('Box:'),
    b64('Box'),
    b64(':'),
    b64('Box:99999999999999999999999'),
    b64(`box:${first}`),
    b64(`Box:${first}:${first}`),
    'Qm94OjE',
    '',
    ' ',
    'garbage',
    '!!!',
    '\u0000',
    '😀',
    'x'.repeat(10_000),
    `${b64(`Box:${first}`)}\n`,
  ];
}

function cursorPool(fleet: Fleet): string[] {
  return [
    ...fleet.cursors,
    '',
    'bm9wZQ',
    '!!!',
    'W10',
    b64url([]),
    b64url({}),
    b64url(['Device:ID']),
    b64url(['Device:ID', 2 ** 60]),
    b64url(['Device:ID', 1.5]),
    b64url(['Device:ID', -1]),
    b64url(['Device:ID', '1']),
    b64url(['Device:NAME', '\u0000', 1]),
    b64url(['Device:NAME', 'x'.repeat(10_001), 1]),
    b64url(['Device:NAME', '\ud800', 1]),
    b64url(['Device:STATUS_SINCE', '1', 1]),
    b64url(['Device:STATUS_SINCE', '-271821-04-20T00:00:00.000Z', 1]),
    b64url(['Device:STATUS_SINCE', '+275760-09-13T00:00:00.000Z', 1]),
    b64url(['Device:FIRST_SEEN_AT', 'Tue, 01 Jan 2026 00:00:00 GMT', 1]),
    b64url(['Box:NAME', null, 1]),
    b64url(['Box:LAST_REPORT_AT', '2026-01-01', 1]),
    b64url(['Box:ID', 1, 2]),
    b64url(['StatusEvent', 0]),
    b64url(['StatusEvent', 9_007_199_254_740_991]),
    b64url(['StatusEvent', { id: 1 }]),
    b64url(['BoxConfigChange', 1]),
    Buffer.from('["Device:ID",1').toString('base64url'),
    'x'.repeat(100_000),
  ];
}

const STRINGS = ['', ' ', 'x', 'KEPT', '%', '_', '\\', "'", '"', '\u0000', 'a\u0000b', '\ud800', '😀', '前门', 'x'.repeat(200), 'x'.repeat(201), 'x'.repeat(100_000), '\u202e', 'null', '0'];
const DATETIMES = ['2026-01-01T00:00:00Z', '2026-01-01T00:00:00.123456+08:00', 'yesterday', '', '0000-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '2026-13-45T99:99:99Z', '2026-01-01', '1970-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z', '2026-01-01T00:00:00Z\u0000'];
const INTS = [0, 1, 2, 10, 20, 50, 499, 500, 501, -1, 2_147_483_647, -2_147_483_648, 65_535, 65_536];
const FLOATS = [0, 1, 2.5, 20, 3600, 3601, -1, 1e308, 5e-324, 0.1];
const URLS = ['http://127.0.0.1:1/DeviceStatus', 'https://user:pw@example.com/x', 'ftp://x', 'not a url', '', 'http://', 'http://[::1]:99999/', 'javascript:alert(1)'];

interface Value {
  literal: string;
  json: unknown;
}

interface Context {
  pick: Pick;
  fleet: Fleet;
  vars: string[];
  variables: Record<string, unknown>;
  fragments: string[];
  /** Inside a mutation or boxConfig: ids only from idsOfNoBox, licence keys only the fleet's own. */
  safe: boolean;
  maxDepth: number;
  aliases: number;
}

function literalOfJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null';
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map(literalOfJson).join(', ')}]`;
  return `{${Object.entries(value as Record<string, unknown>)
    .filter(([k]) => /^[_A-Za-z][_0-9A-Za-z]*$/.test(k))
    .map(([k, v]) => `${k}: ${literalOfJson(v)}`)
    .join(', ')}}`;
}

const str = (value: string): Value => ({ literal: JSON.stringify(value), json: value });

/** A value of the scalar `name`, chosen by what the argument is for. */
function scalarValue(ctx: Context, name: string, argument: string): Value {
  const { pick } = ctx;
  // registerBox with any other key would register a box: inside a mutation a key is always a stored box's.
  const keyOfStoredBox = ctx.safe && argument === 'licenseKey';
  if (!keyOfStoredBox && pick.chance(0.04)) {
    // The wrong type: a validation error in the document, BAD_USER_INPUT in variables.
    return pick.one<Value>([str('5'), { literal: '5', json: 5 }, { literal: 'true', json: true }, { literal: '[1]', json: [1] }, { literal: '{a: 1}', json: { a: 1 } }, { literal: '2147483648', json: 2_147_483_648 }, { literal: '1.5', json: 1.5 }]);
  }
  switch (name) {
    case 'Int':
      return argument === 'apiPort' ? pick.one<Value>([0, 1, 5555, 65_535, 65_536, -1].map((n) => ({ literal: String(n), json: n }))) : ((n) => ({ literal: String(n), json: n }))(pick.chance(0.7) ? pick.one(INTS) : pick.int(-5, 600));
    case 'Float':
      return ((n) => ({ literal: String(n), json: n }))(pick.one(FLOATS));
    case 'Boolean':
      return ((b) => ({ literal: String(b), json: b }))(pick.chance(0.5));
    case 'DateTime':
      return str(pick.one(DATETIMES));
    case 'JSON': {
      const settings = pick.one<unknown>([{ GATE_PASS_MODE: 'allpass' }, { MEDIA_DEVICE_MONITOR_URL: 'http://x' }, {}, { a: { b: [1, 2] } }, [], 'x', 5, null, { 'bad name': 1 }]);
      return { literal: literalOfJson(settings), json: settings };
    }
    case 'ID': {
      const ids = ctx.safe ? idsOfNoBox(ctx.fleet) : readIds(ctx.fleet);
      return str(pick.chance(0.05) ? pick.anyString(12) : pick.one(ids));
    }
    default: {
      if (argument === 'after' || argument === 'before') return str(pick.one(cursorPool(ctx.fleet)));
      if (argument === 'licenseKey') return str(ctx.safe ? pick.one(ctx.fleet.licenseKeys) : pick.one([...ctx.fleet.licenseKeys, ...STRINGS]));
      if (argument === 'monitorUrl') return str(pick.one(URLS));
      if (ctx.safe && (argument === 'name' || argument === 'address')) return str(pick.one(['', 'box', '127.0.0.1', '::1', 'x'.repeat(300), 'a b', '\u0000']));
      return str(pick.chance(0.8) ? pick.one(STRINGS) : pick.anyString(20));
    }
  }
}

function inputValue(ctx: Context, type: GraphQLInputType, argument: string, depth = 0): Value {
  const { pick } = ctx;
  if (isNonNullType(type)) return pick.chance(0.02) ? { literal: 'null', json: null } : inputValue(ctx, type.ofType, argument, depth);
  if (pick.chance(0.03)) return { literal: 'null', json: null };
  if (isListType(type)) {
    if (pick.chance(0.3)) return inputValue(ctx, type.ofType, argument, depth + 1); // one value for a list is allowed
    const items = Array.from({ length: pick.int(0, 3) }, () => inputValue(ctx, type.ofType, argument, depth + 1));
    return { literal: `[${items.map((i) => i.literal).join(', ')}]`, json: items.map((i) => i.json) };
  }
  if (isEnumType(type)) {
    const values = type.getValues().map((v) => v.name);
    const name = pick.chance(0.05) ? pick.one(['BROKEN', values[0]!.toLowerCase(), 'null']) : pick.one(values);
    return { literal: name, json: name };
  }
  if (isInputObjectType(type)) {
    const fields = Object.values(type.getFields());
    const chosen = fields.filter((f) => isNonNullType(f.type) || pick.chance(0.4));
    const entries = chosen.map((f) => [f.name, inputValue(ctx, f.type, f.name, depth + 1)] as const);
    if (pick.chance(0.03)) entries.push(['unknownField', { literal: '1', json: 1 }]);
    return { literal: `{${entries.map(([k, v]) => `${k}: ${v.literal}`).join(', ')}}`, json: Object.fromEntries(entries.map(([k, v]) => [k, v.json])) };
  }
  return scalarValue(ctx, getNamedType(type).name, argument);
}

function typeString(type: GraphQLInputType): string {
  return String(type);
}

function argumentText(ctx: Context, arg: GraphQLArgument): string | null {
  const { pick } = ctx;
  // registerBox without a key (or with null) issues one and registers a box: inside a mutation the key is always given.
  const keyed = ctx.safe && arg.name === 'licenseKey';
  const include = keyed || (isNonNullType(arg.type) ? !pick.chance(0.02) : pick.chance(0.35));
  if (!include) return null;
  const value = inputValue(ctx, arg.type, arg.name);
  if (pick.chance(0.25)) {
    const name = `v${ctx.vars.length}`;
    // Mostly the argument's own type; sometimes one that does not fit the position.
    const declared = pick.chance(0.9) ? typeString(arg.type) : pick.one(['String', 'Int!', '[ID]', 'Boolean', 'DateTime', 'Unknown']);
    ctx.vars.push(`$${name}: ${declared}`);
    if (keyed || !pick.chance(0.05)) ctx.variables[name] = value.json;
    return `${arg.name}: $${name}`;
  }
  return `${arg.name}: ${value.literal}`;
}

/**
 * Root fields a fuzzed mutation may call: ones that change nothing for an id of no box (or of no rollout)
 * or a taken key. Not registerBoxes (it issues keys) nor startRollout (a filter may match stored boxes).
 */
const MUTATIONS_ON_NOTHING = new Set([
  'configureBox',
  'pointBoxAtGateway',
  'updateBox',
  'removeBox',
  'registerBox',
  'rebindBoxHardware',
  'addMediaDevice',
  'deleteMediaDevice',
  'pauseRollout',
  'resumeRollout',
  'cancelRollout',
]);

function fieldsOf(ctx: Context, type: GraphQLCompositeType, root: 'query' | 'mutation' | 'subscription' | null): GraphQLField<unknown, unknown>[] {
  if (isUnionType(type)) return [];
  const fields = Object.values(type.getFields());
  if (root === 'mutation') return fields.filter((f) => MUTATIONS_ON_NOTHING.has(f.name));
  return fields;
}

function selectionSet(ctx: Context, type: GraphQLCompositeType, depth: number, root: 'query' | 'mutation' | 'subscription' | null = null): string {
  const { pick } = ctx;
  const parts: string[] = [];
  if (isUnionType(type) || (isInterfaceType(type) && pick.chance(0.4))) {
    const members = ctx.fleet.schema.getPossibleTypes(type);
    for (const member of members) if (pick.chance(0.4)) parts.push(`... on ${member.name} ${selectionSet(ctx, member, depth)}`);
    if (isInterfaceType(type) || parts.length === 0 || pick.chance(0.3)) parts.push('__typename');
    if (isUnionType(type) && pick.chance(0.5)) parts.push('... on Error { message }');
  }
  const fields = fieldsOf(ctx, type, root);
  if (fields.length > 0) {
    const wide = pick.chance(0.05);
    const count = wide ? fields.length : pick.int(1, Math.min(4, fields.length));
    for (let i = 0; i < count; i++) parts.push(fieldText(ctx, wide ? fields[i]! : pick.one(fields), depth, root));
  }
  if (pick.chance(0.03)) parts.push(pick.one(['nope', 'id(x: 1)', '__schema { queryType { name } }', '__type(name: "Box") { name fields { name } }']));
  const body = `{ ${parts.join(' ')} }`;
  if (root === null && pick.chance(0.08)) {
    const name = `F${ctx.fragments.length}`;
    ctx.fragments.push(`fragment ${name} on ${type.name} ${body}`);
    return `{ ...${name}${pick.chance(0.2) ? ` ...${name}` : ''} }`;
  }
  return body;
}

function fieldText(ctx: Context, field: GraphQLField<unknown, unknown>, depth: number, root: 'query' | 'mutation' | 'subscription' | null): string {
  const { pick } = ctx;
  const outer = ctx.safe;
  // Mutations and boxConfig (which calls the box itself) only ever get ids that name no box, in their whole subtree.
  if (root === 'mutation' || field.name === 'boxConfig') ctx.safe = true;
  const args = field.args.map((a) => argumentText(ctx, a)).filter((a): a is string => a !== null);
  let head = field.name;
  if (pick.chance(0.08)) head = `a${ctx.aliases++}: ${head}`;
  if (args.length > 0) head += `(${args.join(', ')})`;
  if (pick.chance(0.04)) head += pick.one([' @include(if: true)', ' @skip(if: true)', ' @include(if: false)', ' @skip(if: $nope)', ' @deprecated', ' @unknown']);
  const named = getNamedType(field.type);
  let text: string;
  if (isCompositeType(named)) text = depth >= ctx.maxDepth ? `${head} { __typename }` : `${head} ${selectionSet(ctx, named, depth + 1)}`;
  else text = pick.chance(0.02) ? `${head} { id }` : head;
  ctx.safe = outer;
  return text;
}

/** A random operation over the schema: mostly queries, some subscriptions, some mutations on no box. */
export function generateOperation(g: fc.GeneratorValue, fleet: Fleet, kind: 'query' | 'mutation' | 'subscription' = 'query'): { document: string; variables: Record<string, unknown> } {
  const pick = new Pick(g);
  const ctx: Context = { pick, fleet, vars: [], variables: {}, fragments: [], safe: kind === 'mutation', maxDepth: pick.chance(0.1) ? pick.int(6, 14) : pick.int(1, 5), aliases: 0 };
  const rootType = kind === 'query' ? fleet.schema.getQueryType()! : kind === 'mutation' ? fleet.schema.getMutationType()! : fleet.schema.getSubscriptionType()!;
  const selection = selectionSet(ctx, rootType, 1, kind);
  const definitions = ctx.vars.length > 0 ? `(${ctx.vars.join(', ')})` : '';
  const name = pick.chance(0.3) ? ` Fuzz${pick.int(0, 9)}` : '';
  const head = kind === 'query' && !name && !definitions && pick.chance(0.5) ? '' : `${kind}${name}${definitions} `;
  return { document: [`${head}${selection}`, ...ctx.fragments].join('\n'), variables: ctx.variables };
}

export function operationRequest(g: fc.GeneratorValue, fleet: Fleet): OperationRequest {
  const pick = new Pick(g);
  const kind = pick.chance(0.05) ? 'subscription' : 'query';
  const { document, variables } = generateOperation(g, fleet, kind);
  return { transport: 'operation', document, variables, accept: pick.one(ACCEPTS), subscription: kind === 'subscription' };
}

export function mutationRequest(g: fc.GeneratorValue, fleet: Fleet): OperationRequest {
  const pick = new Pick(g);
  const { document, variables } = generateOperation(g, fleet, 'mutation');
  return { transport: 'operation', document, variables, accept: pick.one(ACCEPTS) };
}

// ---------------------------------------------------------------------------------------------------
// Arguments at their edges: one list or lookup with filters, pages and cursors forged for its ordering

const CURSOR_TEXTS: unknown[] = ['\u0000', 'a\u0000', 'x', '', '1', '2026-01-01T00:00:00Z', '2026-02-30T00:00:00Z', '-271821-04-20T00:00:00.000Z', '+275760-09-13T00:00:00.000Z', 'Tue, 01 Jan 2026 00:00:00 GMT', '\ud800', 'x'.repeat(10_000), 5, null, true];
const CURSOR_INTS: unknown[] = [1, 2, 0, -1, 1.5, 2 ** 53, '1', null];

export function argumentsRequest(g: fc.GeneratorValue, fleet: Fleet): OperationRequest {
  const pick = new Pick(g);
  const accept = pick.one(ACCEPTS);
  const value = (pool: readonly unknown[], any = 0.1) => (pick.chance(any) ? pick.anyString(6) : pick.one(pool));
  /** Mostly a valid value, so that the odd one in the same request is the one that is tested. */
  const mostly = (valid: readonly unknown[], invalid: readonly unknown[]) => (pick.chance(0.1) ? pick.one(invalid) : pick.one(valid));
  const list = pick.one(['boxes', 'devices', 'statusEvents', 'lookup'] as const);
  if (list === 'lookup') {
    const ids = readIds(fleet);
    const which = pick.one([
      ['query L($v: String) { box(licenseKey: $v) { id name } }', () => value([...fleet.licenseKeys, ...STRINGS])],
      ['query L($v: ID) { box(id: $v) { id } }', () => value(ids)],
      ['query L($v: ID!) { device(id: $v) { id } }', () => value(ids)],
      ['query L($v: ID!) { node(id: $v) { id __typename } }', () => value(ids)],
      ['query L($v: [ID!]!) { nodes(ids: $v) { id } }', () => Array.from({ length: pick.int(0, 4) }, () => value(ids))],
    ] as const);
    return { transport: 'operation', document: which[0], variables: { v: which[1]() }, accept };
  }
  const orderType = { boxes: 'BoxOrder', devices: 'DeviceOrder', statusEvents: 'StatusEventOrder' }[list];
  const filterType = { boxes: 'BoxFilter', devices: 'DeviceFilter', statusEvents: 'StatusEventFilter' }[list];
  const fieldEnum = fleet.schema.getType(`${orderType}Field`);
  const fields = isEnumType(fieldEnum) ? fieldEnum.getValues().map((v) => v.name) : ['ID'];
  const field = pick.one(fields);
  const variables: Record<string, unknown> = { order: { field, direction: mostly(['ASC', 'DESC', null], ['asc', 'UP']) } };
  if (pick.chance(0.6)) {
    const scope = list === 'statusEvents' ? 'StatusEvent' : `${list === 'boxes' ? 'Box' : 'Device'}:${field}`;
    const keyed = list !== 'statusEvents' && field !== 'ID';
    const position = () => mostly([1, 2, 3], CURSOR_INTS);
    const forged = keyed ? [scope, value(CURSOR_TEXTS, 0.05), position()] : [scope, position()];
    variables.cursor = pick.chance(0.9) ? b64url(forged) : pick.one(cursorPool(fleet));
  }
  if (pick.chance(0.5)) variables.page = mostly([0, 1, 2, 50, 500], INTS);
  const filter: Record<string, unknown> = {};
  const text = () => value(STRINGS, 0.2);
  const id = () => mostly(readIds(fleet).slice(0, 8), readIds(fleet));
  const ids = () => (pick.chance(0.3) ? id() : Array.from({ length: pick.int(0, 3) }, id));
  if (list === 'boxes') {
    if (pick.chance(0.5)) filter.search = text();
    if (pick.chance(0.3)) filter.status = mostly(['ONLINE', ['OFFLINE'], []], ['nope']);
    if (pick.chance(0.2)) filter.reportFormat = mostly(['NEW', ['OLD', 'NEW']], ['x']);
  } else if (list === 'devices') {
    if (pick.chance(0.4)) filter.search = text();
    if (pick.chance(0.3)) filter.permissionId = text();
    if (pick.chance(0.3)) filter.licenseKey = pick.chance(0.5) ? text() : [text(), text()];
    if (pick.chance(0.3)) filter.box = ids();
    if (pick.chance(0.2)) filter.removed = mostly([true, false, null], ['yes']);
    if (pick.chance(0.2)) filter.type = mostly(['RTSP', ['PHOTO', 'UNKNOWN']], ['rtsp']);
  } else {
    if (pick.chance(0.3)) filter.box = ids();
    if (pick.chance(0.3)) filter.device = ids();
    if (pick.chance(0.3)) filter.since = mostly(DATETIMES.slice(0, 2), DATETIMES);
    if (pick.chance(0.3)) filter.until = mostly(DATETIMES.slice(0, 2), DATETIMES);
    if (pick.chance(0.2)) filter.toStatus = mostly(['REMOVED', ['ONLINE', 'OFFLINE']], ['GONE']);
    if (pick.chance(0.2)) filter.subject = mostly(['BOX', 'DEVICE'], ['x']);
  }
  variables.filter = filter;
  const page = pick.one(['first', 'last']);
  const bound = page === 'first' ? 'after' : pick.one(['after', 'before']);
  const document = `query Edge($cursor: String, $page: Int, $filter: ${filterType}, $order: ${orderType}) { ${list}(${page}: $page, ${bound}: $cursor, filter: $filter, orderBy: $order) { totalCount edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`;
  return { transport: 'operation', document, variables, accept };
}

// ---------------------------------------------------------------------------------------------------
// Limit bombs, each with the error it must get

/** Tokens as the parser counts them (the limit is checked while parsing). */
export function tokenCount(document: string): number {
  const lexer = new Lexer(new Source(document));
  let n = 0;
  try {
    while (lexer.advance().kind !== TokenKind.EOF) n++;
  } catch {
    return -1;
  }
  return n;
}

const MAX_TOKENS = 2000;
const MAX_DOCUMENT_BYTES = 64 * 1024;
const MAX_BODY_BYTES = 256 * 1024;

/** The expectation for a document that is over (or under) a limit, unless the token limit comes first. */
function limitExpectation(document: string, over: boolean, code: string): OperationRequest['expect'] {
  // The document's size is checked first, then its tokens, then the rest.
  if (Buffer.byteLength(document) > MAX_DOCUMENT_BYTES) return { oneOf: ['DOCUMENT_TOO_LARGE'] };
  const tokens = tokenCount(document);
  if (tokens > MAX_TOKENS + 50) return { oneOf: ['TOO_MANY_TOKENS'] };
  if (tokens > MAX_TOKENS - 50) return undefined;
  return over ? { oneOf: [code] } : { none: [code, 'TOO_MANY_TOKENS'] };
}

export function limitRequest(g: fc.GeneratorValue, fleet: Fleet): OperationRequest {
  const pick = new Pick(g);
  const accept = pick.one(ACCEPTS);
  const bomb = pick.one(['deep', 'deep-fragments', 'wide', 'aliases', 'fragment-aliases', 'fragment-bomb', 'fragment-cycle', 'directives', 'tokens', 'page', 'page-variable', 'introspection', 'introspection-cycle', 'long-string', 'long-list', 'nested-list'] as const);
  switch (bomb) {
    case 'deep': {
      // devices > nodes > box > devices > ...: `levels` fields deep (the limit is 12).
      const levels = pick.chance(0.7) ? pick.int(1, 16) : pick.one([50, 400, 1_700, 3_000]);
      const chain = ['devices(first: 1)', 'nodes', 'box'];
      let document = 'name';
      for (let level = levels - 1; level >= 1; level--) document = `${chain[(level - 1) % 3]} { ${document} }`;
      document = `{ ${levels === 1 ? '__typename' : document} }`;
      return { transport: 'operation', document, accept, expect: limitExpectation(document, levels > 12, 'QUERY_TOO_DEEP') };
    }
    case 'deep-fragments': {
      // The same depth through a chain of fragments, which add no level of their own.
      const levels = pick.int(2, 8);
      const fragments = Array.from({ length: levels }, (_, i) => `fragment D${i} on Device { box { devices(first: 1) { nodes { ${i === levels - 1 ? 'name' : `...D${i + 1}`} } } } }`);
      const document = `{ devices(first: 1) { nodes { ...D0 } } }\n${fragments.join('\n')}`;
      const depth = 2 + levels * 3;
      return { transport: 'operation', document, accept, expect: limitExpectation(document, depth > 12, 'QUERY_TOO_DEEP') };
    }
    case 'wide': {
      const n = pick.one([10, 500, 2_000, 4_990, 6_000]);
      const field = pick.one(['__typename', 'fleetSummary { countedAt }', 'boxes(first: 1) { totalCount }']);
      const document = `{ ${Array.from({ length: n }, () => field).join(' ')} }`;
      // n copies of one field make n(n-1)/2 pairs to merge (2,000 allowed): 10 pass, 500 do not.
      return { transport: 'operation', document, accept, expect: limitExpectation(document, n >= 500, 'TOO_MANY_REPEATED_FIELDS') };
    }
    case 'aliases': {
      const n = pick.chance(0.6) ? pick.int(1, 20) : pick.one([100, 1_000, 1_700]);
      const field = pick.one(['__typename', 'fleetSummary { boxes { total } }', 'box(licenseKey: "KEPT-1") { id }']);
      const document = `{ ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ')} }`;
      // Aliases of __typename count too: each is a field in the answer.
      return { transport: 'operation', document, accept, expect: limitExpectation(document, n > 15, 'TOO_MANY_ALIASES') };
    }
    case 'fragment-aliases': {
      // Aliases count where a fragment is spread.
      const perFragment = pick.int(1, 8);
      const spreads = pick.int(1, 5);
      const fragment = `fragment A on Query { ${Array.from({ length: perFragment }, (_, i) => `f${i}: fleetSummary { countedAt }`).join(' ')} }`;
      const document = `{ ${Array.from({ length: spreads }, () => '... on Query { ...A }').join(' ')} }\n${fragment}`;
      return { transport: 'operation', document, accept, expect: limitExpectation(document, perFragment * spreads > 15, 'TOO_MANY_ALIASES') };
    }
    case 'fragment-bomb': {
      const levels = pick.int(1, 12);
      const fanout = pick.int(2, 12);
      const leaf = pick.one(['__typename', 'fleetSummary { boxes { total } }', 'boxes(first: 2) { nodes { id } }']);
      const leafCost = leaf === '__typename' ? 1 : leaf.startsWith('fleetSummary') ? 3 : 1 + 2 * 2;
      const fragments = Array.from({ length: levels }, (_, i) => `fragment B${i} on Query { ${`...B${i + 1} `.repeat(fanout)}}`);
      const document = `query Bomb { ...B0 }\n${fragments.join('\n')}\nfragment B${levels} on Query { ${leaf} }`;
      const cost = fanout ** levels * leafCost;
      return { transport: 'operation', document, accept, expect: limitExpectation(document, cost > 10_000, 'COST_LIMIT_EXCEEDED') };
    }
    case 'fragment-cycle': {
      const shape = pick.one([
        '{ ...A } fragment A on Query { ...A }',
        '{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }',
        '{ devices { nodes { ...D } } } fragment D on Device { box { devices { nodes { ...D } } } }',
        '{ ...A } fragment A on Query { ... on Query { ...B } } fragment B on Query { fleetSummary { boxes { total } } ...A }',
        '{ node(id: "x") { ...N } } fragment N on Node { ... on Box { devices { nodes { ...N } } } }',
      ]);
      return { transport: 'operation', document: shape, accept, expect: { oneOf: ['GRAPHQL_VALIDATION_FAILED'] } };
    }
    case 'directives': {
      const n = pick.chance(0.6) ? pick.int(45, 55) : pick.one([200, 1_000]);
      const document = `{ ${'... @include(if: true) { __typename } '.repeat(n)}}`;
      return { transport: 'operation', document, accept, expect: limitExpectation(document, n > 50, 'TOO_MANY_DIRECTIVES') };
    }
    case 'tokens': {
      const document = pick.one([
        `{ ${'__typename '.repeat(pick.int(1_990, 2_010))}}`,
        `{ box(licenseKey: "KEPT") { id } ${'# comment\n'.repeat(20_000)}}`,
        `{ nodes(ids: [${'"x", '.repeat(6_000)}]) { id } }`,
        `query(${Array.from({ length: 3_000 }, (_, i) => `$v${i}: Int`).join(', ')}) { __typename }`,
        `{ boxes(filter: {search: "${'x'.repeat(2_000_000)}"}) { totalCount } }`,
      ]);
      const tokens = tokenCount(document);
      const expect = tokens > MAX_TOKENS + 5 ? { oneOf: ['TOO_MANY_TOKENS'] } : tokens >= 0 && tokens < MAX_TOKENS - 5 ? { none: ['TOO_MANY_TOKENS'] } : undefined;
      return { transport: 'operation', document, accept, expect };
    }
    case 'page': {
      const n = pick.one(['-1', '0', '500', '501', '25000', '2147483647', '2147483648', '-2147483649', '1e3', '1.0', '"5"', 'null']);
      const field = pick.one(['devices', 'boxes', 'statusEvents']);
      const which = pick.one(['first', 'last']);
      const document = `{ ${field}(${which}: ${n}) { totalCount nodes { id } } }`;
      const value = Number(n);
      const expect = /^-?\d+$/.test(n) && Math.abs(value) > 2_147_483_647 ? { oneOf: ['GRAPHQL_VALIDATION_FAILED'] } : /^-?\d+$/.test(n) && (value < 0 || value > 500) ? { oneOf: ['BAD_USER_INPUT', 'COST_LIMIT_EXCEEDED'] } : undefined;
      return { transport: 'operation', document, accept, expect };
    }
    case 'page-variable': {
      const n = pick.one<unknown>([-1, 0, 500, 501, 2_147_483_647, 2_147_483_648, 1e300, -1e300, 2.5, '10', 'NaN', null, true, [5], { n: 5 }]);
      const document = `query Page($n: Int, $m: Int) { boxes(first: $n) { nodes { devices(last: $m) { nodes { id } } } } }`;
      return { transport: 'operation', document, variables: { n, m: n }, accept, expect: n === null || n === 0 || n === 500 ? { none: ['INTERNAL_SERVER_ERROR'] } : { oneOf: ['BAD_USER_INPUT', 'COST_LIMIT_EXCEEDED'] } };
    }
    case 'introspection': {
      const depth = pick.int(1, 16);
      let inner = 'name';
      for (let i = 0; i < depth; i++) inner = `ofType { ${inner} }`;
      // __type ... ofType ... name: 5 + depth fields deep.
      const document = `{ __type(name: "Box") { fields { args { type { ${inner} } } } } }`;
      return { transport: 'operation', document, accept, expect: limitExpectation(document, 5 + depth > 12, 'QUERY_TOO_DEEP') };
    }
    case 'introspection-cycle': {
      // types > fields > type > fields > ...: each level multiplies the answer (the depth limit leaves __schema alone).
      const levels = pick.int(1, 8);
      let inner = 'name';
      for (let i = 0; i < levels; i++) inner = `fields { name type { name ${inner} } }`;
      return { transport: 'operation', document: `{ __schema { types { ${inner} } } }`, accept };
    }
    case 'long-string': {
      const length = pick.one([200, 201, 10_000, 1_000_000]);
      const argument = pick.one(['devices(filter: { search: $s }) { totalCount }', 'box(licenseKey: $s) { id }', 'devices(after: $s) { totalCount }', 'statusEvents(filter: { since: $s }) { totalCount }']);
      const document = `query Long($s: ${argument.includes('since') ? 'DateTime' : 'String'}) { ${argument} }`;
      // A megabyte does not fit in a request body (256 KiB).
      const expect = length > MAX_BODY_BYTES ? { oneOf: ['REQUEST_ENTITY_TOO_LARGE'] } : length > 200 && argument.includes('search') ? { oneOf: ['BAD_USER_INPUT'] } : undefined;
      return { transport: 'operation', document, variables: { s: 'x'.repeat(length) }, accept, expect };
    }
    case 'long-list': {
      const length = pick.one([0, 1, 100, 1_000, 20_000]);
      const ids = Array.from({ length }, (_, i) => encodeGlobalId(i % 2 ? 'Box' : 'Device', (i % 1_000) + 1));
      const document = pick.one(['query L($ids: [ID!]!) { nodes(ids: $ids) { id } }', 'query L($ids: [ID!]) { devices(filter: { box: $ids }) { totalCount } }', 'query L($ids: [ID!]) { statusEvents(filter: { device: $ids }) { totalCount } }']);
      return { transport: 'operation', document, variables: { ids }, accept };
    }
    case 'nested-list': {
      const depth = pick.one([2, 10, 1_000]);
      const nested = JSON.parse(`${'['.repeat(depth)}"x"${']'.repeat(depth)}`) as unknown;
      const document = pick.one(['query N($v: [ID!]) { devices(filter: { box: $v }) { totalCount } }', 'query N($v: [String!]) { devices(filter: { licenseKey: $v }) { totalCount } }']);
      return { transport: 'operation', document, variables: { v: nested }, accept, expect: { oneOf: ['BAD_USER_INPUT'] } };
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Documents mangled as text

const VOCABULARY = ['{', '}', '(', ')', '[', ']', ':', '$', '!', '=', '@', '...', '|', '&', ',', 'query', 'mutation', 'subscription', 'fragment', 'on', 'true', 'false', 'null', '__typename', '__schema', 'boxes', 'devices', 'box', 'device', 'nodes', 'edges', 'node', 'id', 'name', 'first', 'last', 'after', 'filter', 'status', 'ONLINE', 'fleetSummary', 'statusEvents', 'Box', 'Device', 'Query', '"x"', '"""block"""', '1', '-1', '1.5e10', '0x10', '#', '\n', '\u0000', '\ufeff', '\ud800', '😀', 'é', '\\'];

export function mangledRequest(g: fc.GeneratorValue, fleet: Fleet): OperationRequest {
  const pick = new Pick(g);
  const accept = pick.one(ACCEPTS);
  if (pick.chance(0.3)) {
    const tokens = Array.from({ length: pick.int(0, pick.chance(0.1) ? 3_000 : 40) }, () => (pick.chance(0.9) ? pick.one(VOCABULARY) : pick.anyString(4)));
    return { transport: 'operation', document: tokens.join(pick.one([' ', '', '\n'])), accept };
  }
  const { document, variables } = generateOperation(g, fleet, pick.chance(0.05) ? 'subscription' : 'query');
  let text = document;
  const edits = pick.int(1, 4);
  for (let i = 0; i < edits; i++) {
    const at = pick.int(0, text.length);
    switch (pick.one(['truncate', 'delete', 'insert', 'duplicate', 'replace', 'swap-brackets', 'huge-name'] as const)) {
      case 'truncate':
        text = text.slice(0, at);
        break;
      case 'delete':
        text = text.slice(0, at) + text.slice(at + pick.int(1, 10));
        break;
      case 'insert':
        text = text.slice(0, at) + (pick.chance(0.8) ? pick.one(VOCABULARY) : pick.anyString(6)) + text.slice(at);
        break;
      case 'duplicate': {
        const end = Math.min(text.length, at + pick.int(1, 40));
        text = text.slice(0, end) + text.slice(at, end) + text.slice(end);
        break;
      }
      case 'replace':
        text = text.slice(0, at) + pick.anyString(1) + text.slice(at + 1);
        break;
      case 'swap-brackets':
        text = text.replace(/[{}]/g, (b) => (pick.chance(0.1) ? (b === '{' ? '}' : '{') : b));
        break;
      case 'huge-name':
        text = `${text.slice(0, at)} ${'n'.repeat(pick.one([1_000, 100_000]))} ${text.slice(at)}`;
        break;
    }
  }
  return { transport: 'operation', document: text, variables: pick.chance(0.5) ? variables : (pick.json() as Record<string, unknown>), accept, subscription: document.startsWith('subscription') };
}

// ---------------------------------------------------------------------------------------------------
// HTTP requests that are no GraphQL request

const RAW_ACCEPTS = [...ACCEPTS, '*/*', '', 'text/html', 'text/event-stream', 'multipart/mixed', 'application/xml', ';;;', 'application/graphql-response+json; charset=utf-16', 'application/json; q=0'];
const RAW_CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'application/graphql-response+json', 'application/graphql', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=fuzz', 'multipart/form-data', 'application/octet-stream', 'application/json, text/plain', 'application/json; charset=latin1', ''];

function multipartBody(pick: Pick, operations: string, map: string | null): string {
  const part = (name: string, value: string, filename?: string) => `--fuzz\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\n\r\n${value}\r\n`;
  return `${part('operations', operations)}${map === null ? '' : part('map', map)}${pick.chance(0.5) ? part('0', 'file contents', 'a.txt') : ''}--fuzz--\r\n`;
}

export function rawRequest(g: fc.GeneratorValue, fleet: Fleet): RawRequest {
  const pick = new Pick(g);
  const valid = generateOperation(g, fleet, 'query');
  const headers: Record<string, string> = {};
  const accept = pick.one(RAW_ACCEPTS);
  if (accept) headers.accept = accept;
  if (pick.chance(0.1)) headers['cache-control'] = pick.one(['no-cache', 'no-store', 'max-age=0']);
  if (pick.chance(0.05)) headers['x-fleetgate-actor'] = pick.one(['', ' ', 'x'.repeat(10_000), 'r\u00e9']);
  if (pick.chance(0.03)) headers['content-encoding'] = pick.one(['gzip', 'br', 'identity']);
  // Repeats weigh the kinds: big bodies are the rarest, they cost the shared machine most.
  const kind = pick.one(['json-body', 'json-body', 'json-body', 'json-body', 'not-json', 'not-json', 'get', 'get', 'get', 'batch', 'form', 'multipart', 'multipart', 'method', 'graphql-body', 'huge', 'deep-json'] as const);
  const contentType = (fallback: string) => {
    headers['content-type'] = pick.chance(0.85) ? fallback : pick.one(RAW_CONTENT_TYPES);
    if (headers['content-type'] === '') delete headers['content-type'];
  };
  const weird = () => pick.one<unknown>([null, 5, 'x', [], {}, true, [1], { a: 1 }, '{}', pick.json()]);
  switch (kind) {
    case 'json-body': {
      const body: Record<string, unknown> = {};
      if (!pick.chance(0.1)) body.query = pick.chance(0.8) ? valid.document : weird();
      if (pick.chance(0.5)) body.variables = pick.chance(0.6) ? valid.variables : weird();
      if (pick.chance(0.2)) body.operationName = pick.one<unknown>(['Fuzz1', 'Nope', '', null, 5, ['x']]);
      if (pick.chance(0.15)) body.extensions = pick.one<unknown>([{ persistedQuery: { version: 1, sha256Hash: 'abc' } }, weird(), { http: { status: 500 } }]);
      if (pick.chance(0.05)) body.query = `${valid.document}\nquery Other { __typename }`;
      contentType('application/json');
      return { transport: 'raw', method: 'POST', search: '', body: JSON.stringify(body), headers };
    }
    case 'batch': {
      const n = pick.one([0, 1, 2, 20, 1_000]);
      contentType('application/json');
      return { transport: 'raw', method: 'POST', search: '', body: JSON.stringify(Array.from({ length: n }, () => ({ query: valid.document, variables: valid.variables }))), headers };
    }
    case 'not-json': {
      const full = JSON.stringify({ query: valid.document, variables: valid.variables });
      const body = pick.one([
        full.slice(0, pick.int(0, full.length - 1)),
        '',
        'null',
        '"{ __typename }"',
        `\ufeff${full}`,
        `${full}${full}`,
        full.replace(/"/g, "'"),
        full.replace('{', '{ // comment\n'),
        '{"query": "{ __typename }", "variables": NaN}',
        '{"query": "{ __typename }", "variables": {"n": 1e999}}',
        '{"query": "{ __typename }", "query": 5}',
        '{"query": "\\ud800"}',
        '{"query": "{ __typename }"}\u0000',
        pick.anyString(50),
      ]);
      contentType('application/json');
      return { transport: 'raw', method: 'POST', search: '', body: pick.chance(0.1) ? Uint8Array.from(Array.from({ length: pick.int(0, 64) }, () => pick.int(0, 255))) : body, headers };
    }
    case 'get': {
      const params = new URLSearchParams();
      if (!pick.chance(0.1)) params.set('query', pick.chance(0.9) ? valid.document : pick.one(['mutation { removeBox(boxId: "eA==") { __typename } }', 'subscription { boxStatusChanged { id } }', '']));
      if (pick.chance(0.4)) params.set('variables', pick.chance(0.7) ? JSON.stringify(valid.variables) : pick.one(['{', 'null', '[]', '5', '"x"', '{"a":', 'undefined']));
      if (pick.chance(0.15)) params.set('operationName', pick.one(['Fuzz1', 'Nope', '']));
      if (pick.chance(0.1)) params.set('extensions', pick.one(['{}', '{', '[]', '{"persistedQuery":{"version":1,"sha256Hash":"x"}}']));
      let search = params.toString();
      if (pick.chance(0.05)) search += pick.one(['&query=%7B__typename%7D', '&%ZZ', '&query', '=']);
      if (search.length > 7_000) search = search.slice(0, 7_000);
      return { transport: 'raw', method: 'GET', search, body: undefined, headers };
    }
    case 'form': {
      const params = new URLSearchParams();
      params.set('query', valid.document);
      if (pick.chance(0.5)) params.set('variables', pick.chance(0.5) ? JSON.stringify(valid.variables) : pick.one(['{', '[]', 'x']));
      contentType('application/x-www-form-urlencoded');
      return { transport: 'raw', method: 'POST', search: '', body: params.toString(), headers };
    }
    case 'multipart': {
      const operations = pick.one([JSON.stringify({ query: valid.document, variables: { file: null } }), '{', 'null', '[]', '5', JSON.stringify([{ query: '{ __typename }' }])]);
      const map = pick.one<string | null>([null, '{"0": ["variables.file"]}', '{"0": ["variables.a.b.c"]}', '{"0": 5}', '{"0": [5]}', '{"0": ["__proto__.x"]}', '[]', '{', '{"1": ["variables.file"]}', '{"0": ["0.variables.file"]}', '{"0": ["query"]}']);
      headers['content-type'] = pick.chance(0.9) ? 'multipart/form-data; boundary=fuzz' : pick.one(['multipart/form-data', 'multipart/form-data; boundary=other']);
      return { transport: 'raw', method: 'POST', search: '', body: multipartBody(pick, operations, map), headers };
    }
    case 'method': {
      const method = pick.one(['PUT', 'PATCH', 'DELETE', 'OPTIONS']);
      contentType('application/json');
      return { transport: 'raw', method, search: '', body: method === 'DELETE' && pick.chance(0.5) ? undefined : JSON.stringify({ query: valid.document }), headers };
    }
    case 'graphql-body': {
      contentType('application/graphql');
      return { transport: 'raw', method: 'POST', search: '', body: valid.document, headers };
    }
    case 'huge': {
      const size = pick.chance(0.2) ? pick.one([1_100_000, 2_000_000]) : pick.one([10_000, 100_000]);
      const body = pick.one([`{"query": "{ __typename }", "pad": "${'x'.repeat(size)}"}`, `{"query": "{ __typename }"}${' '.repeat(size)}`, `{"query": "{ __typename }", "variables": {"a": [${'1,'.repeat(Math.min(size / 2, 100_000))}1]}}`]);
      contentType('application/json');
      return { transport: 'raw', method: 'POST', search: '', body, headers };
    }
    case 'deep-json': {
      const depth = pick.chance(0.3) ? pick.one([5_000, 100_000]) : pick.one([32, 100, 1_000]);
      const where = pick.one(['variables', 'extensions', 'unused']);
      const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`;
      const body = where === 'unused' ? `{"query": "{ __typename }", "x": ${nested}}` : `{"query": "{ __typename }", "${where}": {"v": ${nested}}}`;
      contentType('application/json');
      return { transport: 'raw', method: 'POST', search: '', body, headers };
    }
  }
}

export function describeRequest(request: FuzzRequest): string {
  const cut = (text: string, max = 600) => JSON.stringify(text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text);
  if (request.transport === 'operation') {
    const variables = request.variables === undefined ? '' : ` variables ${cut(JSON.stringify(request.variables) ?? '', 300)}`;
    return `graphql() accept ${JSON.stringify(request.accept)} document ${cut(request.document)}${variables}`;
  }
  const body = request.body === undefined ? '(none)' : typeof request.body === 'string' ? cut(request.body) : `<${request.body.length} bytes>`;
  return `graphqlRaw() ${request.method} ?${cut(request.search, 300)} headers ${JSON.stringify(request.headers).slice(0, 300)} body ${body}`;
}
