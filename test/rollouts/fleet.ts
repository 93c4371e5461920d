import http from 'node:http';
import type { Socket } from 'node:net';
import { expect } from 'vitest';
import { encodeGlobalId } from '../../src/graphql/global-id';
import { GETCONFIGS, SETCONFIGS } from '../helpers/fake-box';
import { graphql } from '../helpers/graphql';
import { closedPort } from '../helpers/net';
import { until } from '../helpers/wait';

// Many boxes for the rollout tests: each a real HTTP server on a loopback port of its own that answers
// setconfigs and getconfigs as a box does (or refuses, hangs, holds its answer, or is a closed port),
// and counts what it got. The fleet counts the requests under way across all its boxes, so a test can
// check that a rollout's concurrency was never exceeded.

/**
 * `ok` takes the settings; `refuse` answers the documented error object; `hang` never answers;
 * `hold` answers (as `ok`) when the test calls `release()`; `closed` is a port nobody listens on.
 */
export type Behavior = 'ok' | 'refuse' | 'hang' | 'hold' | 'closed';

export interface FleetBox {
  index: number;
  port: number;
  behavior: Behavior;
  /** Box id (database) and global id once registered. */
  id: number;
  globalId: string;
  licenseKey: string;
  /** When each setconfigs arrived (ms since the epoch). */
  setconfigs: number[];
  config: Record<string, unknown>;
}

export interface Fleet {
  boxes: FleetBox[];
  /** Requests under way across the fleet now, and the most at any moment. */
  readonly active: number;
  readonly maxActive: number;
  /** setconfigs calls across the fleet. */
  readonly calls: number;
  /** Answers every held request, and those that arrive from now on. */
  release(): void;
  /** Sets a box's behavior (e.g. a refusing box that now takes the settings). */
  behave(index: number, behavior: Behavior): void;
  close(): Promise<void>;
}

export const REFUSAL = { code: 'INVALID_ARGUMENTS', message: 'GATE_PASS_MODE is read-only on this firmware' };

export async function startFleet(behaviors: readonly Behavior[]): Promise<Fleet> {
  let active = 0;
  let maxActive = 0;
  let calls = 0;
  let released = false;
  const held: Array<() => void> = [];
  const servers: http.Server[] = [];
  const sockets = new Set<Socket>();
  const boxes: FleetBox[] = [];

  for (const [index, initial] of behaviors.entries()) {
    const box: FleetBox = { index, port: 0, behavior: initial, id: 0, globalId: '', licenseKey: '', setconfigs: [], config: { MEDIA_DEVICE_MONITOR_REPORT_PEROID: 60 } };
    boxes.push(box);
    if (initial === 'closed') {
      box.port = await closedPort();
      continue;
    }
    const server = http.createServer((req, res) => {
      active++;
      maxActive = Math.max(maxActive, active);
      res.on('close', () => active--);
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        } catch {
          // answered below as a box answers a body it cannot read
        }
        const send = (status: number, answer: unknown) => {
          const text = JSON.stringify(answer);
          res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
          res.end(text);
        };
        if (req.url === SETCONFIGS) {
          calls++;
          box.setconfigs.push(Date.now());
        }
        const answer = () => {
          if (req.url === GETCONFIGS) return send(200, box.config);
          if (req.url !== SETCONFIGS) return send(404, { error: { code: 'NOT_FOUND', message: 'no such path' } });
          if (box.behavior === 'refuse') return send(400, { error: REFUSAL });
          const dict = (body.config_dict ?? {}) as Record<string, unknown>;
          Object.assign(box.config, dict);
          send(200, dict);
        };
        if (box.behavior === 'hang' && req.url === SETCONFIGS) return;
        if (box.behavior === 'hold' && req.url === SETCONFIGS && !released) return void held.push(answer);
        answer();
      });
    });
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    box.port = (server.address() as { port: number }).port;
    servers.push(server);
  }

  return {
    boxes,
    get active() {
      return active;
    },
    get maxActive() {
      return maxActive;
    },
    get calls() {
      return calls;
    },
    release() {
      released = true;
      for (const answer of held.splice(0)) answer();
    },
    behave(index, behavior) {
      boxes[index]!.behavior = behavior;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}

const RegisterBox = `mutation RegisterBox($licenseKey: String!, $address: String, $apiPort: Int) {
  registerBox(licenseKey: $licenseKey, address: $address, apiPort: $apiPort) {
    __typename
    ... on Error { message }
    ... on RegisterBoxSuccess { box { id } }
  }
}`;

let fleets = 0;

/** Registers every box of the fleet with the gateway (its loopback address and API port), 20 at a time. */
export async function registerFleet(url: string, fleet: Fleet): Promise<void> {
  const prefix = `RO-${process.pid}-${++fleets}`;
  for (let from = 0; from < fleet.boxes.length; from += 20) {
    await Promise.all(
      fleet.boxes.slice(from, from + 20).map(async (box) => {
        box.licenseKey = `${prefix}-${box.index}.`;
        const { body } = await graphql<any, any>(url, RegisterBox, { licenseKey: box.licenseKey, address: '127.0.0.1', apiPort: box.port });
        expect(body.data?.registerBox.__typename).toBe('RegisterBoxSuccess');
        box.globalId = body.data.registerBox.box.id;
        box.id = Number(Buffer.from(box.globalId, 'base64').toString('utf8').split(':')[1]);
        expect(encodeGlobalId('Box', box.id)).toBe(box.globalId);
      }),
    );
  }
}

export const RolloutFields = `
  fragment RolloutFields on Rollout {
    id state pausedReason settings selection concurrency failureThreshold createdBy createdAt finishedAt
    progress { total pending running applied failed cancelled }
  }`;

export const StartRollout = `mutation StartRollout($input: StartRolloutInput!) {
  startRollout(input: $input) {
    __typename
    ... on Error { message }
    ... on InvalidRolloutInput { problems { field message } }
    ... on RolloutSuccess { rollout { ...RolloutFields } }
  }
}
${RolloutFields}`;

const command = (name: string) => `mutation Command($id: ID!${name === 'resumeRollout' ? ', $retryFailed: Boolean' : ''}) {
  ${name}(id: $id${name === 'resumeRollout' ? ', retryFailed: $retryFailed' : ''}) {
    __typename
    ... on Error { message }
    ... on RolloutWrongState { state }
    ... on RolloutNotFound { id }
    ... on RolloutSuccess { rollout { ...RolloutFields } }
  }
}
${RolloutFields}`;
export const PauseRollout = command('pauseRollout');
export const ResumeRollout = command('resumeRollout');
export const CancelRollout = command('cancelRollout');

export const RolloutQuery = `query Rollout($id: ID!, $first: Int, $after: String, $states: [RolloutTargetState!]) {
  rollout(id: $id) {
    ...RolloutFields
    targets(first: $first, after: $after, states: $states) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { box { id } position state outcome message attempts startedAt finishedAt change { id outcome errorCode } }
    }
  }
}
${RolloutFields}`;

export const RolloutProgressSubscription = `subscription Progress($id: ID!) { rolloutProgress(id: $id) { ...RolloutFields } }
${RolloutFields}`;

/** Sends an operation and returns its data's only field (the request itself must succeed). */
export async function call(url: string, document: string, variables: Record<string, unknown>): Promise<any> {
  const { body } = await graphql<any, any>(url, document, variables);
  expect(body.errors).toBeUndefined();
  return Object.values(body.data as object)[0];
}

/** Every target of a rollout, in call order. */
export async function allTargets(url: string, id: string): Promise<any[]> {
  const targets: any[] = [];
  let after: string | null = null;
  for (;;) {
    const rollout = await call(url, RolloutQuery, { id, first: 500, after });
    targets.push(...rollout.targets.nodes);
    if (!rollout.targets.pageInfo.hasNextPage) return targets;
    after = rollout.targets.pageInfo.endCursor;
  }
}

/** Waits for the rollout to satisfy `done` (read through the API) and returns it. */
export async function rolloutWhen(url: string, id: string, done: (rollout: any) => boolean, what: string, timeoutMs = 30_000): Promise<any> {
  let last: any;
  return until(
    async () => {
      last = await call(url, RolloutQuery, { id, first: 0 });
      return done(last) ? last : undefined;
    },
    () => `${what}; last seen ${JSON.stringify(last && { state: last.state, progress: last.progress })}`,
    { timeoutMs, intervalMs: 50 },
  );
}
