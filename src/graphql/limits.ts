import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import type { GraphQLArmorRejectCallback } from '@escape.tech/graphql-armor-types';
import {
  getNamedType,
  getOperationAST,
  GraphQLError,
  isInterfaceType,
  isObjectType,
  Kind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationRule,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { DEFAULT_PAGE_SIZE } from './types/pagination';

/** What one GraphQL operation may ask for; see src/config.ts for each limit's variable and default. */
export interface GraphQLLimits {
  /** Deepest field nesting; fragments do not add a level. */
  maxDepth: number;
  /** Aliased fields in the operation (fragments counted where spread). */
  maxAliases: number;
  /** Directives in the operation. */
  maxDirectives: number;
  /** Lexical tokens in the document; checked while parsing, so a huge document is never fully parsed. */
  maxTokens: number;
  /** Most results the operation may ask for; see operationCost. */
  maxCost: number;
  /** Answer `__schema` and `__type`. */
  introspection: boolean;
}

/** The error a limit answers: a request error, status 400 for `application/graphql-response+json`, 200 for `application/json`. */
function limitError(message: string, code: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status: 400, spec: true } } });
}

/**
 * Armor reports "Syntax Error: ..." without a code, and throws it from validation, which would end a
 * websocket with "internal error". Its message is reported as a validation error with a code instead.
 */
function reportAs(code: string): { propagateOnRejection: false; onReject: GraphQLArmorRejectCallback[] } {
  return {
    propagateOnRejection: false,
    onReject: [
      (context, error) => {
        const rejection = limitError(error.message.replace(/^Syntax Error: /, ''), code);
        if (context) context.reportError(rejection);
        else throw rejection; // while parsing: there is no validation context, and throwing stops the parse
      },
    ],
  };
}

function noIntrospectionRule(context: Parameters<ValidationRule>[0]): ReturnType<ValidationRule> {
  return {
    Field(node) {
      if (node.name.value === '__schema' || node.name.value === '__type') {
        context.reportError(limitError('Introspection is disabled on this server.', 'INTROSPECTION_DISABLED'));
      }
    },
  };
}

/** How many items a list field may return: its `first` or `last`, the default page size for a connection without either, else 1. */
function pageSize(field: FieldNode, definition: GraphQLField<unknown, unknown> | undefined, variables: Record<string, unknown>): number {
  if (!definition?.args.some((arg) => arg.name === 'first' || arg.name === 'last')) return 1;
  for (const argument of field.arguments ?? []) {
    if (argument.name.value !== 'first' && argument.name.value !== 'last') continue;
    const value = argument.value;
    const size = value.kind === Kind.INT ? Number(value.value) : value.kind === Kind.VARIABLE ? variables[value.name.value] : undefined;
    if (typeof size === 'number' && Number.isFinite(size)) return Math.max(0, size);
  }
  return DEFAULT_PAGE_SIZE;
}

/**
 * The cost of an operation: every field selected costs 1, and what is selected under a paginated field
 * counts once per item it may return (`first`/`last`, else the default page size). So
 * `boxes(first: 50) { nodes { devices(first: 20) { nodes { id name } } } }` costs about 50 × 20 × 3.
 * Each fragment spread counts in full (execution would merge repeated spreads; a limit may overestimate),
 * and a fragment's cost is computed once, so a fragment bomb is measured without being expanded.
 */
export function operationCost(schema: GraphQLSchema, document: DocumentNode, operationName: string | null | undefined, variables: Record<string, unknown> = {}): number {
  const operation = getOperationAST(document, operationName);
  if (!operation) return 0;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const fragmentCosts = new Map<string, number>();

  const selectionCost = (selectionSet: SelectionSetNode, type: GraphQLNamedType | undefined): number => {
    let cost = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        if (!selection.selectionSet) {
          cost += 1;
          continue;
        }
        const definition = type && (isObjectType(type) || isInterfaceType(type)) ? type.getFields()[selection.name.value] : undefined;
        const fieldType = definition ? getNamedType(definition.type) : undefined;
        cost += 1 + pageSize(selection, definition, variables) * selectionCost(selection.selectionSet, fieldType);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const on = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : type;
        cost += selectionCost(selection.selectionSet, on);
      } else {
        const name = selection.name.value;
        let fragmentCost = fragmentCosts.get(name);
        if (fragmentCost === undefined) {
          fragmentCosts.set(name, 0); // a cycle (which validation rejects anyway) adds nothing
          const fragment = fragments.get(name);
          fragmentCost = fragment ? selectionCost(fragment.selectionSet, schema.getType(fragment.typeCondition.name.value)) : 0;
          fragmentCosts.set(name, fragmentCost);
        }
        cost += fragmentCost;
      }
    }
    return cost;
  };
  return selectionCost(operation.selectionSet, schema.getRootType(operation.operation) ?? undefined);
}

/**
 * The cost limit needs the variables (`first: $first`), which validation does not see and whose result
 * yoga caches per document, so it is checked before execution, for queries and subscriptions alike.
 */
function useCostLimit(maxCost: number): Plugin {
  const check = (args: { schema: GraphQLSchema; document: DocumentNode; operationName?: string | null; variableValues?: Record<string, unknown> | null }) => {
    const cost = operationCost(args.schema, args.document, args.operationName, args.variableValues ?? {});
    if (cost <= maxCost) return undefined;
    const found = Number.isFinite(cost) && cost < 1e15 ? String(cost) : 'more than 10^15';
    return {
      errors: [
        limitError(
          `Query cost limit of ${maxCost} exceeded, found ${found}. Ask for fewer items per page (first/last) or fewer nested lists.`,
          'COST_LIMIT_EXCEEDED',
        ),
      ],
    };
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const rejected = check(args);
      if (rejected) setResultAndStopExecution(rejected);
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const rejected = check(args);
      if (rejected) setResultAndStopExecution(rejected);
    },
  };
}

/** The limits as yoga plugins: tokens while parsing, depth/aliases/directives/introspection in validation, cost before execution. */
export function useGraphQLLimits(limits: GraphQLLimits): Plugin[] {
  const rules: ValidationRule[] = [
    maxDepthRule({ n: limits.maxDepth, flattenFragments: true, ...reportAs('QUERY_TOO_DEEP') }) as unknown as ValidationRule,
    maxAliasesRule({ n: limits.maxAliases, ...reportAs('TOO_MANY_ALIASES') }) as unknown as ValidationRule,
    maxDirectivesRule({ n: limits.maxDirectives, ...reportAs('TOO_MANY_DIRECTIVES') }) as unknown as ValidationRule,
    ...(limits.introspection ? [] : [noIntrospectionRule]),
  ];
  return [
    maxTokensPlugin({ n: limits.maxTokens, ...reportAs('TOO_MANY_TOKENS') }) as Plugin,
    {
      onValidate({ addValidationRule }) {
        for (const rule of rules) addValidationRule(rule);
      },
    },
    useCostLimit(limits.maxCost),
  ];
}
