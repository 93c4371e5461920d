import type { ConfigFieldError } from '../../box-api/config-keys';
import { builder } from '../builder';

// Expected failures of mutations (and of reads that call a box) are members of the field's result
// union, not GraphQL errors: a client selects `... on Error { message }` and the types it handles.
// GraphQL errors stay for malformed requests and for faults of the gateway itself.

export const ErrorInterface = builder.interfaceRef<Error>('Error').implement({
  description: 'An expected failure, returned as a member of a result union. `message` says what happened and what to do about it.',
  fields: (t) => ({
    message: t.exposeString('message'),
  }),
});

export const InputProblem = builder.objectRef<ConfigFieldError>('InputProblem').implement({
  description: 'One part of the input that cannot be used, and why.',
  fields: (t) => ({
    field: t.exposeString('field', {
      description: 'The input field: `boxId`, `monitorUrl`, `reportPeriodSeconds`, `settings.<KEY>`, `apiAddress`, `apiPort`, `licenseKey`, ...',
    }),
    message: t.exposeString('message'),
  }),
});

/**
 * `resolveType` for a result union whose members are classes: graphql-jit calls it without the
 * abstract type graphql-js's default resolver needs, so members are told apart here by class.
 */
export function resolveByClass(members: ReadonlyArray<readonly [abstract new (...args: never[]) => unknown, string]>) {
  return (value: unknown): string | undefined => members.find(([type]) => value instanceof type)?.[1];
}

/** The messages of `problems` as one sentence list. */
export function problemsMessage(problems: readonly ConfigFieldError[]): string {
  return problems.map((p) => p.message).join(' ');
}
