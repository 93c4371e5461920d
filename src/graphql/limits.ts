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
  type IntValueNode,
  type ListValueNode,
  type SelectionSetNode,
  type ValueNode,
  type ValidationRule,
  validate,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { DEFAULT_PAGE_SIZE } from './page-size';

/**
 * What one GraphQL operation may ask for; see src/config.ts for each limit's variable and default.
 * They are checked cheapest first, each before the work it protects: the body's size (yoga, while
 * reading it), the document's size, its tokens (while parsing), then its shape (depth, aliases,
 * directives, repeated fields, introspection) and its cost, and only then graphql-js's own
 * validation (whose merge check is quadratic in repeated fields) and execution.
 */
export interface GraphQLLimits {
  /** Bytes of the document text, comments and string literals included. */
  maxDocumentBytes: number;
  /** Deepest field nesting; fragments do not add a level. */
  maxDepth: number;
  /** Aliased fields in the operation (fragments counted where spread), `__typename` too. */
  maxAliases: number;
  /** Directives in the operation. */
  maxDirectives: number;
  /** Lexical tokens in the document; checked while parsing, so a huge document is never fully parsed. */
  maxTokens: number;
  /** Merge checks that repeated fields cost graphql-js's validation; see repeatedFieldChecks. */
  maxRepeatedFields: number;
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

/**
 * How many items a field may return: its `first` or `last`, the default page size for a connection
 * without either, the number of `ids` it is given (`nodes`), else 1.
 */
function pageSize(field: FieldNode, definition: GraphQLField<unknown, unknown> | undefined, variables: Record<string, unknown>): number {
  const valueOf = (value: ValueNode): unknown => (value.kind === Kind.VARIABLE ? variables[value.name.value] : value);
  for (const argument of field.arguments ?? []) {
    const name = argument.name.value;
    if (name === 'ids') {
      const ids = valueOf(argument.value);
      if (Array.isArray(ids)) return ids.length;
      if (ids && (ids as ValueNode).kind === Kind.LIST) return (ids as ListValueNode).values.length;
      return 1; // a single id is coerced to a list of one
    }
    if (name !== 'first' && name !== 'last') continue;
    const value = valueOf(argument.value);
    const size = value && (value as ValueNode).kind === Kind.INT ? Number((value as IntValueNode).value) : value;
    if (typeof size === 'number' && Number.isFinite(size)) return Math.max(0, size);
  }
  return definition?.args.some((arg) => arg.name === 'first' || arg.name === 'last') ? DEFAULT_PAGE_SIZE : 1;
}

const BUCKET_MS: Record<string, number> = { HOUR: 3_600_000, DAY: 86_400_000 };

/**
 * How many buckets a history field (one with a `bucket` argument: `Box.health`, `fleetAvailability`)
 * may return: its range cut into UTC buckets, `until` defaulting to now; undefined for other fields.
 * Unreadable arguments count as one bucket: the field itself refuses them.
 */
function bucketCount(field: FieldNode, variables: Record<string, unknown>): number | undefined {
  const args = new Map((field.arguments ?? []).map((argument) => [argument.name.value, argument.value]));
  const bucketNode = args.get('bucket');
  if (!bucketNode) return undefined;
  const valueOf = (value: ValueNode | undefined): unknown =>
    value === undefined ? undefined : value.kind === Kind.VARIABLE ? variables[value.name.value] : value.kind === Kind.STRING || value.kind === Kind.ENUM ? value.value : undefined;
  const size = BUCKET_MS[String(valueOf(bucketNode))];
  const since = Date.parse(String(valueOf(args.get('since'))));
  const untilValue = valueOf(args.get('until'));
  const until = untilValue == null ? Date.now() : Date.parse(String(untilValue));
  if (!size || !Number.isFinite(since) || !Number.isFinite(until) || until <= since) return 1;
  return Math.ceil(until / size) - Math.floor(since / size);
}

/**
 * The cost of an operation: every field selected costs 1, and what is selected under a paginated field
 * counts once per item it may return (`first`/`last`, else the default page size). So
 * `boxes(first: 50) { nodes { devices(first: 20) { nodes { id name } } } }` costs about 50 × 20 × 3.
 * A history list with a `bucket` argument costs one per bucket of its range.
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
        // A bucket of a history list is a fixed set of figures: each costs one, so a box's 1,000 hours
        // pass, and the same hours for each box of a page do not.
        const buckets = bucketCount(selection, variables);
        if (buckets !== undefined) cost += 1 + buckets;
        else cost += 1 + pageSize(selection, definition, variables) * selectionCost(selection.selectionSet, fieldType);
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
 * The merge checks that graphql-js's OverlappingFieldsCanBeMergedRule would make, counted up to
 * `budget` (so counting costs at most the budget plus the document's size). Every pair of fields with
 * the same response name in one selection set must be compared, and so must the fields under them,
 * pair by pair: repeated fields cost the validation quadratically (4,990 copies of one field took
 * seconds). Fragments are counted where spread (a fragment reached twice by two paths counts once,
 * as graphql-js does not compare a node with itself), and each pair of fragments spread in one
 * selection set costs one. It may overestimate graphql-js's work, never underestimate it much.
 */
export function repeatedFieldChecks(document: DocumentNode, budget: number): number {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  let checks = 0;
  // Walking selections is cheap next to a merge check, but a fragment bomb must still run out of budget.
  let steps = 0;
  const maxSteps = 1_000 * (budget + 1);
  const spent = () => checks > budget || steps > maxSteps;
  const flattened = new Map<SelectionSetNode, { fields: Map<string, FieldNode[]>; fragmentCount: number }>();
  /** The fields of a selection set by response name, through inline fragments and spreads. */
  const flatten = (selectionSet: SelectionSetNode) => {
    let result = flattened.get(selectionSet);
    if (result) return result;
    const fields = new Map<string, FieldNode[]>();
    const spread = new Set<string>();
    // A fragment reached twice adds the same field nodes again, which graphql-js compares for free.
    const walked = new Set<string>();
    const walk = (set: SelectionSetNode, top: boolean) => {
      for (const selection of set.selections) {
        if (spent()) return;
        steps += 1;
        if (selection.kind === Kind.FIELD) {
          const name = selection.alias?.value ?? selection.name.value;
          const list = fields.get(name);
          if (list) list.push(selection);
          else fields.set(name, [selection]);
        } else if (selection.kind === Kind.INLINE_FRAGMENT) {
          walk(selection.selectionSet, top);
        } else {
          const name = selection.name.value;
          if (top) spread.add(name);
          const fragment = fragments.get(name);
          if (!fragment || walked.has(name)) continue; // unknown fragments are validation's to report
          walked.add(name);
          walk(fragment.selectionSet, false);
        }
      }
    };
    walk(selectionSet, true);
    result = { fields, fragmentCount: spread.size };
    flattened.set(selectionSet, result);
    return result;
  };
  const compare = (a: FieldNode, b: FieldNode) => {
    checks += 1;
    if (spent() || !a.selectionSet || !b.selectionSet || a.selectionSet === b.selectionSet) return;
    between(flatten(a.selectionSet).fields, flatten(b.selectionSet).fields);
  };
  const between = (a: Map<string, FieldNode[]>, b: Map<string, FieldNode[]>) => {
    const [small, large] = a.size <= b.size ? [a, b] : [b, a];
    steps += small.size;
    for (const [name, left] of small) {
      const right = large.get(name);
      if (!right) continue;
      for (const x of left) for (const y of right) if (x !== y && !spent()) compare(x, y);
    }
  };
  const within = (selectionSet: SelectionSetNode) => {
    const { fields, fragmentCount } = flatten(selectionSet);
    checks += (fragmentCount * (fragmentCount - 1)) / 2;
    for (const list of fields.values()) {
      for (let i = 0; i < list.length && !spent(); i++) {
        for (let j = i + 1; j < list.length && !spent(); j++) compare(list[i]!, list[j]!);
      }
    }
  };
  // Every selection set of the document is checked on its own, as the rule visits each.
  const visit = (selectionSet: SelectionSetNode) => {
    if (spent()) return;
    within(selectionSet);
    for (const selection of selectionSet.selections) if (selection.kind !== Kind.FRAGMENT_SPREAD && selection.selectionSet) visit(selection.selectionSet);
  };
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION || definition.kind === Kind.FRAGMENT_DEFINITION) visit(definition.selectionSet);
  }
  return steps > maxSteps ? Math.max(checks, budget + 1) : checks;
}

function repeatedFieldsRule(max: number): ValidationRule {
  return (context) => ({
    Document: {
      enter(document) {
        const checks = repeatedFieldChecks(document, max);
        if (checks > max) {
          context.reportError(
            limitError(
              `Repeated fields limit of ${max} merge checks exceeded. Select each field once per selection set, and spread each fragment once.`,
              'TOO_MANY_REPEATED_FIELDS',
            ),
          );
        }
        return false; // nothing further to visit
      },
    },
  });
}

function documentBytes(source: string | { body: string }): number {
  return Buffer.byteLength(typeof source === 'string' ? source : source.body, 'utf8');
}

/** One error as it is, several as an AggregateError: yoga answers each, and the websocket transport unpacks it. */
function refusal(errors: readonly GraphQLError[]): Error {
  return errors.length === 1 ? errors[0]! : new AggregateError(errors, errors.map((error) => error.message).join(' '));
}

/**
 * The limits as yoga plugins, in the order they run: the document's size and tokens while parsing,
 * then its shape and cost before graphql-js validates it. The shape depends on the document only
 * and is remembered per parsed document (yoga's parser cache hands the same one back); the cost
 * depends on the variables (`first: $first`) and is computed for every operation.
 * A refusal is thrown, not returned as validation errors: yoga's validation cache keys on the
 * document alone and must neither keep nor override an answer that depends on the variables.
 */
export function useGraphQLLimits(limits: GraphQLLimits): Plugin[] {
  const shapeRules: ValidationRule[] = [
    maxDepthRule({ n: limits.maxDepth, flattenFragments: true, ...reportAs('QUERY_TOO_DEEP') }) as unknown as ValidationRule,
    maxAliasesRule({ n: limits.maxAliases, allowList: [], ...reportAs('TOO_MANY_ALIASES') }) as unknown as ValidationRule,
    maxDirectivesRule({ n: limits.maxDirectives, ...reportAs('TOO_MANY_DIRECTIVES') }) as unknown as ValidationRule,
    repeatedFieldsRule(limits.maxRepeatedFields),
    ...(limits.introspection ? [] : [noIntrospectionRule]),
  ];
  const shapeErrors = new WeakMap<DocumentNode, readonly GraphQLError[]>();
  return [
    {
      onParse({ params }) {
        const bytes = documentBytes(params.source);
        if (bytes > limits.maxDocumentBytes) {
          throw limitError(
            `Document size limit of ${limits.maxDocumentBytes} bytes exceeded, found ${bytes}. Send a shorter query (comments and long literals count); pass values as variables.`,
            'DOCUMENT_TOO_LARGE',
          );
        }
      },
    },
    maxTokensPlugin({ n: limits.maxTokens, ...reportAs('TOO_MANY_TOKENS') }) as Plugin,
    {
      onValidate({ params: { schema, documentAST }, context }) {
        let errors = shapeErrors.get(documentAST);
        if (!errors) {
          errors = validate(schema, documentAST, shapeRules);
          shapeErrors.set(documentAST, errors);
        }
        if (errors.length > 0) throw refusal(errors);
        const params = (context as { params?: { operationName?: string | null; variables?: Record<string, unknown> | null } }).params;
        const cost = operationCost(schema, documentAST, params?.operationName, params?.variables ?? {});
        if (cost > limits.maxCost) {
          const found = Number.isFinite(cost) && cost < 1e15 ? String(cost) : 'more than 10^15';
          throw limitError(
            `Query cost limit of ${limits.maxCost} exceeded, found ${found}. Ask for fewer items per page (first/last) or fewer nested lists.`,
            'COST_LIMIT_EXCEEDED',
          );
        }
      },
    },
  ];
}
