import type { ConfigFieldError } from '../../box-api/config-keys';
import type { ConfigureOutcome } from '../../box-api/configure';
import type { RolloutState, RolloutTargetState } from '../../db/schema';
import { keysetCondition } from '../../models/query-parts';
import { readsCredentials } from '../../auth/roles';
import { redactJsonCredentials } from '../../redaction/url-credentials';
import {
  cancelRollout,
  countRolloutsQuery,
  countTargetsPerRollout,
  pauseRollout,
  progressByRolloutIds,
  resumeRollout,
  ROLLOUT_ORDERING,
  rolloutsByIds,
  rolloutsPage,
  startRollout,
  TARGET_ORDERING,
  targetsPagePerRollout,
  type CommandOutcome,
  type RolloutProgress,
  type RolloutRow,
  type RolloutTargetRow,
} from '../../rollouts/rollouts';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { encodeCursor } from '../cursors';
import { decodeGlobalId, encodeGlobalId, parseDatabaseId } from '../global-id';
import { BoxFilter, BoxRef } from './box';
import { BoxConfigChangeRef } from './box-config-change';
import { BoxConfigInput, boxIdFrom } from './box-config';
import { ErrorInterface, InputProblem, problemsMessage, resolveByClass } from './error';
import { batchLoader, connectionArgs, connectionFromRows, countRows, groupBy, pageWindow, type CursorSpec, type PageArgs } from './pagination';

// Rollouts: settings applied to many boxes through configureBox (src/rollouts/ does the work; this
// file maps arguments and rows). startRollout, pauseRollout, resumeRollout, cancelRollout (operator),
// rollout, rollouts and the rolloutProgress subscription (viewer).

// ---------------------------------------------------------------------------------------------
// Types

const RolloutStateEnum = builder.enumType('RolloutState', {
  values: {
    RUNNING: { value: 'running', description: 'Its boxes are being called, at most `concurrency` at once.' },
    PAUSED: { value: 'paused', description: 'No new call starts (see `pausedReason`); resumeRollout continues it.' },
    CANCELLED: { value: 'cancelled', description: 'Stopped for good: the boxes not yet called were not.' },
    COMPLETED: { value: 'completed', description: 'Every box was called (`progress` says with what result).' },
  } satisfies Record<Uppercase<RolloutState>, { value: RolloutState; description: string }>,
});

const RolloutTargetStateEnum = builder.enumType('RolloutTargetState', {
  values: {
    PENDING: { value: 'pending', description: 'Waits its turn.' },
    RUNNING: { value: 'running', description: 'Its call is under way.' },
    APPLIED: { value: 'applied', description: 'The box took the settings and confirmed every key.' },
    FAILED: { value: 'failed', description: 'Anything else, including success with unconfirmed keys: `message` says why.' },
    CANCELLED: { value: 'cancelled', description: 'Not called: the rollout was cancelled first.' },
  } satisfies Record<Uppercase<RolloutTargetState>, { value: RolloutTargetState; description: string }>,
});

const RolloutPausedReasonEnum = builder.enumType('RolloutPausedReason', {
  values: {
    FAILURE_THRESHOLD: { value: 'failure_threshold', description: 'Failures since it started (or was last resumed) reached `failureThreshold`.' },
    OPERATOR: { value: 'operator', description: 'An operator paused it (pauseRollout).' },
  },
});

const RolloutCallOutcomeEnum = builder.enumType('RolloutCallOutcome', {
  description: 'What configureBox answered for a box of a rollout (the members of ConfigureBoxResult).',
  values: {
    APPLIED: { value: 'applied', description: 'ConfigureBoxSuccess (the target is FAILED when some keys were not confirmed).' },
    REJECTED: { value: 'rejected', description: 'BoxRejectedConfig.' },
    UNREACHABLE: { value: 'unreachable', description: 'BoxUnreachable.' },
    TIMED_OUT: { value: 'timed_out', description: 'BoxTimedOut.' },
    BAD_ANSWER: { value: 'bad_answer', description: 'BoxBadAnswer.' },
    ADDRESS_REFUSED: { value: 'address_refused', description: 'BoxAddressRefused.' },
    INVALID: { value: 'invalid', description: 'InvalidConfig: e.g. the box was removed, or has no known address.' },
  } satisfies Record<string, { value: ConfigureOutcome['kind']; description: string }>,
});

const RolloutProgressRef = builder.objectRef<RolloutProgress>('RolloutProgress').implement({
  description: 'How many of its boxes are in each state.',
  fields: (t) => ({
    total: t.exposeInt('total'),
    pending: t.exposeInt('pending'),
    running: t.exposeInt('running'),
    applied: t.exposeInt('applied'),
    failed: t.exposeInt('failed'),
    cancelled: t.exposeInt('cancelled'),
  }),
});

export const NO_TARGETS: RolloutProgress = { total: 0, pending: 0, running: 0, applied: 0, failed: 0, cancelled: 0 };

/** A rollout row; the subscription reads its progress with it, so every event shows both as they were together. */
export type RolloutNode = RolloutRow & { progress?: RolloutProgress };

const RolloutTargetRef = builder.objectRef<RolloutTargetRow>('RolloutTarget').implement({
  description: 'One box of a rollout and what its call did.',
  fields: (t) => ({
    box: t.field({ type: BoxRef, nullable: true, description: 'Null once the box is removed.', resolve: (target) => target.boxId }),
    position: t.exposeInt('position', { description: 'Its place in the order boxes are called in, from 1.' }),
    state: t.expose('state', { type: RolloutTargetStateEnum }),
    outcome: t.field({
      type: RolloutCallOutcomeEnum,
      nullable: true,
      description: 'What its last call answered; null before one.',
      resolve: (target) => target.outcome as ConfigureOutcome['kind'] | null,
    }),
    message: t.exposeString('message', { nullable: true, description: 'Why it failed (or was not called), and what to do.' }),
    change: t.field({
      type: BoxConfigChangeRef,
      nullable: true,
      description: 'Its last call as the box’s audit trail keeps it (operator role). Null before a call, or when the call was refused before an audit row.',
      resolve: (target) => target.changeId,
    }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    attempts: t.exposeInt('attempts', { description: 'Calls made: more than 1 after resumeRollout(retryFailed), or when a runner stopped during its call.' }),
  }),
});

const RolloutTargetConnection = builder.connectionObject({ type: RolloutTargetRef, name: 'RolloutTargetConnection' }, { name: 'RolloutTargetEdge' });

const TARGET_CURSOR_SCOPE = 'RolloutTarget';
const ROLLOUT_CURSOR_SCOPE = 'Rollout';

export const RolloutRef = builder.loadableNode('Rollout', {
  description: 'Settings applied to many boxes, each through configureBox (audited, one call per box at a time), by one replica at a time.',
  id: { resolve: (rollout: RolloutNode) => rollout.id, parse: (id) => parseDatabaseId(id, 'Rollout') },
  load: (ids: number[], context: GraphQLContext) => rolloutsByIds(context.pool, ids),
  toKey: (rollout) => rollout.id,
  sort: true,
  fields: (t) => ({
    state: t.expose('state', { type: RolloutStateEnum }),
    pausedReason: t.expose('pausedReason', { type: RolloutPausedReasonEnum, nullable: true, description: 'Why it is paused; null when it is not.' }),
    settings: t.field({
      type: 'JSON',
      description: 'The BoxConfigInput every box gets (`monitorUrl`, `reportPeriodSeconds`, `settings`); URL credentials masked for roles below operator.',
      resolve: (rollout, _args, context) => (readsCredentials(context.principal) ? rollout.settings : redactJsonCredentials(rollout.settings)),
    }),
    selection: t.field({
      type: 'JSON',
      description: 'How its boxes were chosen, as asked: `{"boxIds": [Box ids]}` or `{"filter": {BoxFilter}}`.',
      resolve: (rollout) => {
        const { boxIds } = rollout.selection as { boxIds?: number[] };
        return boxIds ? { ...rollout.selection, boxIds: boxIds.map((id) => encodeGlobalId('Box', id)) } : rollout.selection;
      },
    }),
    concurrency: t.exposeInt('concurrency', { description: 'Most box calls under way at once.' }),
    failureThreshold: t.exposeInt('failureThreshold', { description: 'Failures (counted since it started or was last resumed) that pause it.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    createdBy: t.exposeString('createdBy', { nullable: true, description: 'The API token that started it; its calls are audited as `<createdBy> (rollout <id>)`.' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true, description: 'When it was completed or cancelled.' }),
    progress: t.field({
      type: RolloutProgressRef,
      resolve: (rollout, _args, context) =>
        rollout.progress ?? batchLoader(context, 'Rollout.progress', (ids) => progressByRolloutIds(context.pool, ids), NO_TARGETS).load(rollout.id),
    }),
    targets: t.field({
      type: RolloutTargetConnection,
      description: 'Its boxes in the order they are called.',
      args: { ...connectionArgs, states: t.arg({ type: [RolloutTargetStateEnum], description: 'Only targets in these states.' }) },
      resolve: (rollout, args, context) => {
        const states = args.states ?? undefined;
        const spec: CursorSpec = { scope: TARGET_CURSOR_SCOPE, types: ['int'], keyset: (values, side) => keysetCondition(TARGET_ORDERING, values, side) };
        const window = pageWindow(args as PageArgs, spec);
        const key = `Rollout.targets:${JSON.stringify([states, args.first, args.after, args.last, args.before])}`;
        const loader = batchLoader(
          context,
          key,
          async (ids) => {
            const rows = await targetsPagePerRollout(context.pool, ids, states, window);
            const byRollout = groupBy(rows, (row) => row.rolloutId);
            const counts = batchLoader(context, `${key}.totalCount`, (parents) => countTargetsPerRollout(context.pool, parents, states), 0);
            return new Map(
              ids.map((id) => [
                id,
                connectionFromRows(byRollout.get(id) ?? [], window, (row) => encodeCursor(TARGET_CURSOR_SCOPE, [row.position]), () => counts.load(id)),
              ]),
            );
          },
          connectionFromRows<RolloutTargetRow>([], window, () => '', () => 0),
        );
        return loader.load(rollout.id);
      },
    }),
  }),
});

// ---------------------------------------------------------------------------------------------
// Results

export class RolloutSuccess {
  constructor(readonly rollout: RolloutRow) {}
}

export class InvalidRolloutInput extends Error {
  constructor(readonly problems: ConfigFieldError[]) {
    super(`${problemsMessage(problems)} Nothing was started.`);
  }
}

export class RolloutNotFound extends Error {
  constructor(readonly id: string) {
    super(`There is no rollout with id ${JSON.stringify(id)}; use the \`id\` of a Rollout this API returned (see the rollouts query).`);
  }
}

export class RolloutWrongState extends Error {
  constructor(
    message: string,
    readonly rollout: RolloutRow,
  ) {
    super(message);
  }
}

builder.objectType(RolloutSuccess, {
  name: 'RolloutSuccess',
  isTypeOf: (value) => value instanceof RolloutSuccess,
  fields: (t) => ({ rollout: t.field({ type: RolloutRef, description: 'The rollout as it now is.', resolve: (result) => result.rollout }) }),
});

builder.objectType(InvalidRolloutInput, {
  name: 'InvalidRolloutInput',
  description: 'The input cannot be used; nothing was started and no box was called. `field` is `boxIds`, `filter`, `settings.<field>`, `concurrency` or `failureThreshold`.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof InvalidRolloutInput,
  fields: (t) => ({ problems: t.field({ type: [InputProblem], resolve: (error) => error.problems }) }),
});

builder.objectType(RolloutNotFound, {
  name: 'RolloutNotFound',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof RolloutNotFound,
  fields: (t) => ({ id: t.exposeID('id', { description: 'The id asked for.' }) }),
});

builder.objectType(RolloutWrongState, {
  name: 'RolloutWrongState',
  description: 'The rollout is not in a state this mutation applies to (e.g. resuming one that is not paused); nothing changed.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof RolloutWrongState,
  fields: (t) => ({
    state: t.field({ type: RolloutStateEnum, resolve: (error) => error.rollout.state }),
    rollout: t.field({ type: RolloutRef, resolve: (error) => error.rollout }),
  }),
});

const resolveType = resolveByClass([
  [RolloutSuccess, 'RolloutSuccess'],
  [InvalidRolloutInput, 'InvalidRolloutInput'],
  [RolloutNotFound, 'RolloutNotFound'],
  [RolloutWrongState, 'RolloutWrongState'],
]);

const StartRolloutResult = builder.errorUnion('StartRolloutResult', {
  description: 'RolloutSuccess (the rollout, running), or why it was not started.',
  types: [RolloutSuccess, InvalidRolloutInput],
  resolveType,
});

const RolloutCommandResult = builder.errorUnion('RolloutCommandResult', {
  description: 'RolloutSuccess (the rollout after the change), or why nothing changed.',
  types: [RolloutSuccess, RolloutNotFound, RolloutWrongState],
  resolveType,
});

// ---------------------------------------------------------------------------------------------
// Operations

const StartRolloutInput = builder.inputType('StartRolloutInput', {
  description: 'Settings for many boxes: give exactly one of `boxIds` and `filter`.',
  fields: (t) => ({
    boxIds: t.idList({ description: 'The boxes, called in this order (duplicates once).' }),
    filter: t.field({ type: BoxFilter, description: 'The boxes it matches when the rollout starts, called in id order.' }),
    settings: t.field({ type: BoxConfigInput, required: true, description: 'What configureBox sets on each box; checked as configureBox checks it.' }),
    concurrency: t.int({ description: 'Most box calls under way at once, 1 to 100. Default 10.' }),
    failureThreshold: t.int({ description: 'Failures that pause the rollout, at least 1. Default 10% of its boxes (rounded up), at least 1.' }),
  }),
});

/** The rollout id inside a global id; undefined when it is not one. */
export function rolloutIdFrom(globalId: string): number | undefined {
  try {
    const { typename, id } = decodeGlobalId(globalId);
    return typename === 'Rollout' ? parseDatabaseId(id, 'Rollout') : undefined;
  } catch {
    return undefined;
  }
}

const WRONG_STATE: Record<'pause' | 'resume' | 'cancel', (state: RolloutState) => string> = {
  pause: (state) => `The rollout is ${state}; only a running rollout can be paused.`,
  resume: (state) =>
    state === 'running' ? 'The rollout is running already.' : `The rollout is ${state}, which is final; start a new rollout for the boxes (select its failed targets with targets(states: [FAILED])).`,
  cancel: (state) => `The rollout is ${state} already; only a running or paused rollout can be cancelled.`,
};

async function commandResult(id: string, action: keyof typeof WRONG_STATE, run: (id: number) => Promise<CommandOutcome>): Promise<RolloutSuccess> {
  const rolloutId = rolloutIdFrom(id);
  if (rolloutId === undefined) throw new RolloutNotFound(id);
  const outcome = await run(rolloutId);
  if (outcome.kind === 'not_found') throw new RolloutNotFound(id);
  if (outcome.kind === 'wrong_state') throw new RolloutWrongState(WRONG_STATE[action](outcome.rollout.state), outcome.rollout);
  return new RolloutSuccess(outcome.rollout);
}

builder.mutationFields((t) => ({
  startRollout: t.field({
    authScopes: { operator: true },
    type: StartRolloutResult,
    description:
      'Sets the same settings on many boxes, each through configureBox (audited with the rollout’s id, one call per box at a time), at most `concurrency` calls at once; pauses when failures reach `failureThreshold`. Follow it with rollout(id) or rolloutProgress. Needs the operator role.',
    args: { input: t.arg({ type: StartRolloutInput, required: true }) },
    resolve: async (_root, { input }, context) => {
      const problems: ConfigFieldError[] = [];
      const boxIds = input.boxIds?.map((globalId, index) => {
        const boxId = boxIdFrom(String(globalId), `boxIds.${index}`);
        if (typeof boxId === 'number') return boxId;
        problems.push(boxId);
        return 0;
      });
      if (problems.length > 0) throw new InvalidRolloutInput(problems);
      const outcome = await startRollout(context.pool, {
        boxIds: boxIds ?? null,
        filter: input.filter ? { status: input.filter.status ?? undefined, reportFormat: input.filter.reportFormat ?? undefined, search: input.filter.search?.trim() || undefined } : null,
        settings: {
          monitorUrl: input.settings.monitorUrl,
          reportPeriodSeconds: input.settings.reportPeriodSeconds,
          settings: input.settings.settings as Record<string, unknown> | null | undefined,
        },
        concurrency: input.concurrency,
        failureThreshold: input.failureThreshold,
        createdBy: context.actor,
      });
      if (outcome.kind === 'invalid') throw new InvalidRolloutInput(outcome.problems);
      if (outcome.kind === 'unknown_boxes') {
        const ids = outcome.boxIds.map((boxId) => encodeGlobalId('Box', boxId));
        throw new InvalidRolloutInput([{ field: 'boxIds', message: `No box has the id ${ids.join(', ')} (never registered, or removed): leave it out of boxIds.` }]);
      }
      return new RolloutSuccess(outcome.rollout);
    },
  }),
  pauseRollout: t.field({
    authScopes: { operator: true },
    type: RolloutCommandResult,
    description: 'Pauses a running rollout: no new box call starts; calls under way finish and are recorded. resumeRollout continues it. Needs the operator role.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, context) => commandResult(String(args.id), 'pause', (id) => pauseRollout(context.pool, id)),
  }),
  resumeRollout: t.field({
    authScopes: { operator: true },
    type: RolloutCommandResult,
    description:
      'Continues a paused rollout; failures count towards the threshold afresh from now. With `retryFailed`, its failed boxes are called again too. Needs the operator role.',
    args: { id: t.arg.id({ required: true }), retryFailed: t.arg.boolean({ defaultValue: false, description: 'Call the failed boxes again. Default false.' }) },
    resolve: (_root, args, context) => commandResult(String(args.id), 'resume', (id) => resumeRollout(context.pool, id, args.retryFailed === true)),
  }),
  cancelRollout: t.field({
    authScopes: { operator: true },
    type: RolloutCommandResult,
    description: 'Cancels a running or paused rollout: no new box call starts, boxes not yet called are not; calls under way finish and are recorded. Needs the operator role.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, context) => commandResult(String(args.id), 'cancel', (id) => cancelRollout(context.pool, id)),
  }),
}));

const RolloutConnection = builder.connectionObject({ type: RolloutRef, name: 'RolloutConnection' }, { name: 'RolloutEdge' });

builder.queryFields((t) => ({
  rollout: t.field({
    type: RolloutRef,
    nullable: true,
    description: 'One rollout; null when there is none with this id.',
    args: { id: t.arg.globalID({ for: RolloutRef, required: true }) },
    resolve: (_root, args) => args.id.id,
  }),
  rollouts: t.field({
    type: RolloutConnection,
    description: 'Rollouts, newest first.',
    args: { ...connectionArgs, states: t.arg({ type: [RolloutStateEnum], description: 'Only rollouts in these states.' }) },
    resolve: async (_root, args, context) => {
      const states = args.states ?? undefined;
      const spec: CursorSpec = { scope: ROLLOUT_CURSOR_SCOPE, types: ['int'], keyset: (values, side) => keysetCondition(ROLLOUT_ORDERING, values, side) };
      const window = pageWindow(args as PageArgs, spec);
      const rows = await rolloutsPage(context.pool, states, window);
      return connectionFromRows<RolloutNode>(rows, window, (row) => encodeCursor(ROLLOUT_CURSOR_SCOPE, [row.id]), () => countRows(context, countRolloutsQuery(states)));
    },
  }),
}));
