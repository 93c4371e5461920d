import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';
import { freePort } from '../helpers/net';
import { runScript, spawnGateway } from '../helpers/process';
import { sseSubscribe, subscriptionSetUps, wsClient, wsSubscribe } from '../helpers/subscriptions';
import { createToken, revokeToken } from '../helpers/tokens';
import { until } from '../helpers/wait';

type TestDatabase = Awaited<ReturnType<typeof createTestDatabase>>;

// Tokens: made by mutation or CLI, stored hashed, revoked everywhere within seconds, and the first
// admin token printed once by a first start.

describe('revoking a token', () => {
  let database: TestDatabase;
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    database = await createTestDatabase();
    // Two replicas on one database; each checks for revocations every 200 ms.
    a = await startGateway({ tokenCheckMs: 200 }, database.url);
    b = await startGateway({ tokenCheckMs: 200, adminToken: a.token }, database.url);
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await database?.drop();
  });

  it('ends its websockets (4403) and SSE subscriptions on every replica within seconds, and refuses its requests', async () => {
    const viewer = await createToken(a.url, 'viewer', 'wall dashboard');
    const other = await createToken(a.url, 'viewer', 'other dashboard');
    const setUpsOnA = await subscriptionSetUps(a.url);
    const setUpsOnB = await subscriptionSetUps(b.url);
    const onA = wsClient(a.url, { token: viewer.token });
    const onB = wsClient(b.url, { token: viewer.token });
    const untouched = wsClient(b.url, { token: other.token });
    const subA = wsSubscribe(onA, 'subscription { statusEvents(filter: { subject: DEVICE }) { toStatus } }');
    const subB = wsSubscribe(onB, 'subscription { statusEvents(filter: { subject: DEVICE }) { toStatus } }');
    const subUntouched = wsSubscribe(untouched, 'subscription { statusEvents(filter: { subject: DEVICE }) { toStatus } }');
    const sseB = sseSubscribe(b.url, 'subscription { statusEvents(filter: { subject: DEVICE }) { toStatus } }', undefined, { token: viewer.token });
    await Promise.all([setUpsOnA.reach(1), setUpsOnB.reach(3)]);
    await postReport(a.url, { mq_license_key: 'REVOKE-0001', media_devices: [{ media_device_id: 'cam', media_device_status: 'online' }] });
    for (const sub of [subA, subB, subUntouched, sseB]) expect((await sub.next()).data.statusEvents.toStatus).toBe('ONLINE');
    expect((await graphql(b.url, '{ boxes { totalCount } }', undefined, { token: viewer.token })).status).toBe(200);

    const revokedAt = Date.now();
    await revokeToken(a.url, viewer.id);
    expect(await onA.closed).toEqual(expect.objectContaining({ code: 4403, reason: 'The API token was revoked' }));
    expect(await onB.closed).toEqual(expect.objectContaining({ code: 4403, reason: 'The API token was revoked' }));
    // SSE: a last result with the reason, then the end of the stream.
    const last = await sseB.next();
    expect(last.errors).toEqual([expect.objectContaining({ message: 'The API token of this subscription was revoked.', extensions: { code: 'TOKEN_REVOKED' } })]);
    expect(await sseB.ended).toBeUndefined();
    expect(Date.now() - revokedAt).toBeLessThan(5_000);
    for (const url of [a.url, b.url]) {
      const refused = await graphql(url, '{ boxes { totalCount } }', undefined, { token: viewer.token });
      expect(refused.status).toBe(401);
      expect(refused.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    // Another token's subscription goes on.
    await postReport(a.url, { mq_license_key: 'REVOKE-0001', media_devices: [{ media_device_id: 'cam', media_device_status: 'offline' }] });
    expect((await subUntouched.next()).data.statusEvents.toStatus).toBe('OFFLINE');
    await untouched.dispose();
  });

  it('keeps the token listed as revoked, by whom, and stores only its hash', async () => {
    const made = await createToken(a.url, 'operator', 'ci');
    await revokeToken(a.url, made.id);
    const list = await graphql<any, unknown>(a.url, '{ apiTokens(includeRevoked: true) { name role prefix createdBy revokedBy revokedAt } }');
    expect(list.body.data.apiTokens).toContainEqual({
      name: 'ci',
      role: 'OPERATOR',
      prefix: made.token.slice(0, 8),
      createdBy: 'ADMIN_TOKEN (token #1)',
      revokedBy: 'ADMIN_TOKEN (token #1)',
      revokedAt: expect.any(String),
    });
    const live = await graphql<any, unknown>(a.url, '{ apiTokens { name } }');
    expect(live.body.data.apiTokens.map((t: { name: string }) => t.name)).not.toContain('ci');
    const { rows } = await a.sql.query(`select encode(token_hash, 'hex') as hash, t::text as row from api_tokens t where name = 'ci'`);
    expect(rows[0].hash).toHaveLength(64);
    expect(rows[0].row).not.toContain(made.token);
    expect(rows[0].row).not.toContain(made.token.slice(8));
  });

  it('answers unknown ids and bad names with InvalidTokenInput', async () => {
    const unknown = await graphql<any, unknown>(a.url, `mutation { revokeApiToken(id: "${Buffer.from('ApiToken:99999').toString('base64')}") { __typename ... on InvalidTokenInput { problems { field message } } } }`);
    expect(unknown.body.data.revokeApiToken).toEqual({ __typename: 'InvalidTokenInput', problems: [{ field: 'id', message: 'There is no API token with this id.' }] });
    const empty = await graphql<any, unknown>(a.url, 'mutation { createApiToken(name: "  ", role: VIEWER) { __typename ... on InvalidTokenInput { problems { field message } } } }');
    expect(empty.body.data.createApiToken).toEqual({
      __typename: 'InvalidTokenInput',
      problems: [{ field: 'name', message: 'A token name is 1 to 100 printable characters, e.g. "dashboard" or "ci".' }],
    });
  });
});

/** `npm run token -- ...` */
const tokenCli = (args: string[], env: Record<string, string>) => runScript('src/auth/cli.ts', args, env);

describe('npm run token', () => {
  let database: TestDatabase;
  let gateway: TestGateway;
  beforeAll(async () => {
    database = await createTestDatabase();
    gateway = await startGateway({}, database.url);
  });
  afterAll(async () => {
    await gateway?.close();
    await database?.drop();
  });

  it('creates a token (printed once, on stdout alone), lists it, and revokes it', { timeout: 60_000 }, async () => {
    const env = { DATABASE_URL: database.url, LOG_LEVEL: 'silent' };
    const created = await tokenCli(['create', '--role', 'operator', '--name', 'ci pipeline'], env);
    expect(created.code).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^fgt_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toMatch(/^Created token #\d+ "ci pipeline" \(operator\)\. It is shown this once:/);
    const asked = await graphql<any, unknown>(gateway.url, '{ currentToken { name role createdBy } }', undefined, { token });
    expect(asked.body.data.currentToken).toEqual({ name: 'ci pipeline', role: 'OPERATOR', createdBy: 'npm run token' });

    const listed = await tokenCli(['list'], env);
    expect(listed.stdout).toContain(`${token.slice(0, 8)}…\toperator\tci pipeline\t`);
    expect(listed.stdout).not.toContain(token);
    const id = /#(\d+)\t[^\n]*ci pipeline/.exec(listed.stdout)![1]!;
    const revoked = await tokenCli(['revoke', id], env);
    expect(revoked).toMatchObject({ code: 0, stdout: `Revoked token #${id} "ci pipeline"; gateways refuse it within seconds.\n` });
    // Refused from the gateway's next revocation check on.
    await until(async () => (await graphql(gateway.url, '{ currentToken { name } }', undefined, { token })).status === 401, 'the gateway to refuse the revoked token', {
      intervalMs: 100,
    });
  });

  it('explains a bad command, with exit status 2', async () => {
    const env = { DATABASE_URL: database.url };
    expect(await tokenCli(['create', '--role', 'root', '--name', 'x'], env)).toMatchObject({ code: 2, stderr: expect.stringContaining('--role must be one of viewer, operator, admin.') });
    expect(await tokenCli(['create', '--role', 'viewer'], env)).toMatchObject({ code: 2, stderr: expect.stringContaining('create needs --name') });
    expect(await tokenCli(['revoke', 'abc'], env)).toMatchObject({ code: 2, stderr: expect.stringContaining('revoke needs the token id') });
    expect(await tokenCli(['frobnicate'], env)).toMatchObject({ code: 2, stderr: expect.stringContaining('Unknown command "frobnicate".') });
    const generated = await tokenCli(['generate'], {});
    expect(generated.stdout.trim()).toMatch(/^fgt_[A-Za-z0-9_-]{43}$/);
  });
});

describe('the first start', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleetgate-first-start-'));
    await fs.chmod(dataDir, 0o777);
  });
  afterAll(async () => {
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('prints an admin token once, on the terminal and not in the JSON log; the next start prints none', { timeout: 120_000 }, async () => {
    const env = { PORT: '0', FLEETGATE_DATA_DIR: path.join(dataDir, 'postgres'), EMBEDDED_PG_PORT: String(await freePort()), ADMIN_TOKEN: '' };
    const first = await spawnGateway(env);
    try {
      const printed = /No API token existed, so an admin token was created\. It is shown this once; keep it:\n\n {4}(fgt_[A-Za-z0-9_-]{43})\n/;
      const match = await until(() => printed.exec(first.output()), () => `the admin token to be printed; output:\n${first.output()}`);
      const token = match![1]!;
      const jsonLines = first.output().split('\n').filter((line) => line.startsWith('{'));
      expect(jsonLines.length).toBeGreaterThan(0);
      for (const line of jsonLines) expect(line).not.toContain(token.slice(8));
      const asked = await graphql<any, unknown>(first.url, '{ currentToken { name role createdBy } }', undefined, { token });
      expect(asked.body.data.currentToken).toEqual({ name: 'first admin', role: 'ADMIN', createdBy: 'first start' });
      // Nothing is open: without the token, nothing is read.
      expect((await graphql(first.url, '{ boxes { totalCount } }', undefined, { token: null })).status).toBe(401);
      // The CLI finds the running gateway's embedded Postgres by its data folder (and leaves it running).
      const listed = await runScript('src/auth/cli.ts', ['list'], { FLEETGATE_DATA_DIR: env.FLEETGATE_DATA_DIR, EMBEDDED_PG_PORT: '1' });
      expect(listed.stdout).toMatch(new RegExp(`^#1\t${token.slice(0, 8)}…\tadmin\tfirst admin\tlast used `));
      expect((await graphql(first.url, '{ currentToken { name } }', undefined, { token })).status).toBe(200);
    } finally {
      first.child.kill('SIGTERM');
      await first.exited;
    }
    const second = await spawnGateway(env);
    try {
      expect(second.output()).not.toContain('No API token existed');
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });
});
