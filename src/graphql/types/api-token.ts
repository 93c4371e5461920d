import type { ApiRole } from '../../auth/roles';
import { checkTokenName, createApiToken, findApiToken, listApiTokens, revokeApiToken, TokenInputError, type ApiTokenRow } from '../../auth/tokens';
import type { ConfigFieldError } from '../../box-api/config-keys';
import { builder } from '../builder';
import { decodeGlobalId, encodeGlobalId, parseDatabaseId } from '../global-id';
import { ErrorInterface, InputProblem, problemsMessage, resolveByClass } from './error';

// API tokens: who may read (viewer), change boxes (operator), and manage tokens (admin). The secret
// is shown once, by createApiToken (or `npm run token -- create`); the database keeps its SHA-256.

export const ApiRoleEnum = builder.enumType('ApiRole', {
  description: 'What a token may do. Each role may do what the one before may, and more.',
  values: {
    VIEWER: { value: 'viewer', description: 'Queries and subscriptions (without camera URLs and box settings).' },
    OPERATOR: { value: 'operator', description: 'Also box mutations, box settings (`boxConfig`), camera URLs and the config audit trail.' },
    ADMIN: { value: 'admin', description: 'Also API tokens: create, list, revoke.' },
  } satisfies Record<string, { value: ApiRole; description: string }>,
});

export const ApiTokenRef = builder.objectRef<ApiTokenRow>('ApiToken').implement({
  description: 'An API token, without its secret. A token may read itself (`currentToken`); other tokens need the admin role.',
  // Decided on the token itself, whatever field leads to it.
  authScopes: (token, context) => token.id === context.principal?.tokenId || { admin: true },
  fields: (t) => ({
    id: t.id({ resolve: (row) => encodeGlobalId('ApiToken', row.id) }),
    name: t.exposeString('name'),
    role: t.field({ type: ApiRoleEnum, resolve: (row) => row.role }),
    prefix: t.exposeString('prefix', { description: 'The first characters of the secret (`fgt_` and 4 more), to tell tokens apart.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    createdBy: t.exposeString('createdBy', { nullable: true, description: 'The token that created it, `first start`, or `ADMIN_TOKEN`.' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true, description: 'About when it was last used (kept to the minute).' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    revokedBy: t.exposeString('revokedBy', { nullable: true }),
  }),
});

class InvalidTokenInput extends Error {
  constructor(readonly problems: ConfigFieldError[]) {
    super(problemsMessage(problems));
  }
}

class CreateApiTokenSuccess {
  constructor(
    readonly token: string,
    readonly apiToken: ApiTokenRow,
  ) {}
}

class RevokeApiTokenSuccess {
  constructor(readonly apiToken: ApiTokenRow) {}
}

builder.objectType(InvalidTokenInput, {
  name: 'InvalidTokenInput',
  description: 'The input cannot be used (an empty name, an unknown token); nothing changed.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof InvalidTokenInput,
  fields: (t) => ({
    problems: t.field({ type: [InputProblem], resolve: (error) => error.problems }),
  }),
});

builder.objectType(CreateApiTokenSuccess, {
  name: 'CreateApiTokenSuccess',
  isTypeOf: (value) => value instanceof CreateApiTokenSuccess,
  fields: (t) => ({
    token: t.exposeString('token', { description: 'The secret, for `Authorization: Bearer <token>`. Shown this once: it is not stored.' }),
    apiToken: t.field({ type: ApiTokenRef, resolve: (result) => result.apiToken }),
  }),
});

builder.objectType(RevokeApiTokenSuccess, {
  name: 'RevokeApiTokenSuccess',
  isTypeOf: (value) => value instanceof RevokeApiTokenSuccess,
  fields: (t) => ({
    apiToken: t.field({ type: ApiTokenRef, resolve: (result) => result.apiToken }),
  }),
});

const resolveType = resolveByClass([
  [CreateApiTokenSuccess, 'CreateApiTokenSuccess'],
  [RevokeApiTokenSuccess, 'RevokeApiTokenSuccess'],
  [InvalidTokenInput, 'InvalidTokenInput'],
]);
const CreateApiTokenResult = builder.errorUnion('CreateApiTokenResult', { types: [CreateApiTokenSuccess, InvalidTokenInput], resolveType });
const RevokeApiTokenResult = builder.errorUnion('RevokeApiTokenResult', { types: [RevokeApiTokenSuccess, InvalidTokenInput], resolveType });

function tokenIdFrom(id: string): number {
  const decoded = decodeGlobalId(id);
  if (decoded.typename !== 'ApiToken') throw new InvalidTokenInput([{ field: 'id', message: 'The ID is not an ApiToken ID; use an `id` from `apiTokens`.' }]);
  return parseDatabaseId(decoded.id, 'ApiToken');
}

builder.queryFields((t) => ({
  currentToken: t.field({
    type: ApiTokenRef,
    description: 'The token this request was made with: its name and role.',
    resolve: async (_root, _args, context) => {
      context.uncacheable = true; // per token, while the response cache keys by role
      const row = await findApiToken(context.pool, context.principal!.tokenId);
      if (!row) throw new Error('the token of this request is gone from the database');
      return row;
    },
  }),
  apiTokens: t.field({
    type: [ApiTokenRef],
    authScopes: { admin: true },
    description: 'Every API token, oldest first. Needs the admin role.',
    args: { includeRevoked: t.arg.boolean({ description: 'Also list revoked tokens. Default false.' }) },
    resolve: (_root, args, context) => listApiTokens(context.pool, { includeRevoked: args.includeRevoked ?? false }),
  }),
}));

builder.mutationFields((t) => ({
  createApiToken: t.field({
    type: CreateApiTokenResult,
    authScopes: { admin: true },
    description: 'Makes a token; its secret is in the answer and nowhere else. Needs the admin role.',
    args: {
      name: t.arg.string({ required: true, description: 'Who or what uses it, e.g. "wall dashboard" or "ops-console".' }),
      role: t.arg({ type: ApiRoleEnum, required: true }),
    },
    resolve: async (_root, args, context) => {
      try {
        checkTokenName(args.name);
      } catch (error) {
        if (error instanceof TokenInputError) throw new InvalidTokenInput([{ field: error.field, message: error.message }]);
        throw error;
      }
      const { token, row } = await createApiToken(context.pool, { name: args.name, role: args.role, createdBy: context.actor });
      context.uncacheable = true;
      return new CreateApiTokenSuccess(token, row);
    },
  }),
  revokeApiToken: t.field({
    type: RevokeApiTokenResult,
    authScopes: { admin: true },
    description:
      'Revokes a token at once: requests with it get 401, and its websockets and subscriptions end within seconds on every replica. The token stays listed (`includeRevoked`). Needs the admin role.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, context) => {
      const id = tokenIdFrom(args.id);
      const row = await revokeApiToken(context.pool, id, context.actor);
      if (!row) throw new InvalidTokenInput([{ field: 'id', message: 'There is no API token with this id.' }]);
      context.authenticator.revoked(id);
      return new RevokeApiTokenSuccess(row);
    },
  }),
}));
