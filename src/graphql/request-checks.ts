import { GraphQLError, Kind, type DocumentNode, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';

// Requests yoga would otherwise answer with a 500: a GET (or form) whose `variables` or `extensions`
// is not JSON, and variables nested so deep that walking them overflows the stack.

/** Deepest nesting of arrays and objects in `variables`; no input type of this schema needs more than a few. */
export const MAX_VARIABLES_DEPTH = 32;

function badRequest(message: string, code: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status: 400, spec: true } } });
}

/** Whether variables nest deeper than MAX_VARIABLES_DEPTH (checked without recursion). */
export function variablesTooDeep(variables: unknown): boolean {
  return depthExceeds(variables, MAX_VARIABLES_DEPTH);
}

/** Nesting depth of a JSON value, without recursion (the value may be deeper than the stack). */
function depthExceeds(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * `@skip`/`@include` on a subscription's root field: the spec forbids it (a subscription has exactly
 * one root field), but graphql-js 16 does not check: its SingleFieldSubscriptionsRule throws an error
 * without a code (`if: $var`), and subscribe fails (`if: false`). Checked before the standard rules run.
 */
export function conditionalSubscriptionRoot(document: DocumentNode): GraphQLError | undefined {
  const fragments = new Map(document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])));
  const conditional = (selectionSet: SelectionSetNode, seen: Set<string>): boolean =>
    selectionSet.selections.some((selection) => {
      if (selection.directives?.some((d) => d.name.value === 'skip' || d.name.value === 'include')) return true;
      if (selection.kind === Kind.INLINE_FRAGMENT) return conditional(selection.selectionSet, seen);
      if (selection.kind === Kind.FRAGMENT_SPREAD && !seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        return fragment ? conditional(fragment.selectionSet, seen) : false;
      }
      return false;
    });
  const operation = document.definitions.find(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION && d.operation === 'subscription' && conditional(d.selectionSet, new Set()),
  );
  return operation
    ? new GraphQLError('A subscription’s root field cannot be conditional: remove @skip and @include from it.', {
        nodes: operation,
        extensions: { code: 'GRAPHQL_VALIDATION_FAILED', http: { status: 400, spec: true } },
      })
    : undefined;
}

export function useRequestChecks(): Plugin {
  return {
    onValidate({ params, setResult }) {
      const error = conditionalSubscriptionRoot(params.documentAST);
      if (error) setResult([error]);
    },
    onRequestParse({ request, requestParser, setRequestParser, endResponse, fetchAPI }) {
      if (!requestParser) {
        // yoga's own answer here is an empty 415.
        const type = request.headers.get('content-type') ?? '(none)';
        const body = {
          errors: [
            {
              message: `Content-Type ${type} is not accepted; send application/json (or a GET with the query in the URL).`,
              extensions: { code: 'UNSUPPORTED_MEDIA_TYPE' },
            },
          ],
        };
        return endResponse(new fetchAPI.Response(JSON.stringify(body), { status: 415, headers: { 'content-type': 'application/json; charset=utf-8' } }));
      }
      setRequestParser(async (request) => {
        try {
          return await requestParser(request);
        } catch (error) {
          if (!(error instanceof SyntaxError)) throw error;
          throw badRequest('The `variables` or `extensions` parameter is not valid JSON.', 'BAD_REQUEST');
        }
      });
    },
    onResponse({ response, serverContext }) {
      // A body refused before it was read whole leaves the rest on the connection: close it after the
      // answer (as proxies do for 413) rather than let the next request be read from the middle of it.
      const res = (serverContext as { res?: { shouldKeepAlive: boolean; headersSent: boolean } } | undefined)?.res;
      if (response.status === 413 && res && !res.headersSent) res.shouldKeepAlive = false;
    },
    onParams({ params }) {
      if (params.variables && variablesTooDeep(params.variables)) {
        throw badRequest(`Variables are nested deeper than ${MAX_VARIABLES_DEPTH} levels.`, 'BAD_USER_INPUT');
      }
    },
  };
}
