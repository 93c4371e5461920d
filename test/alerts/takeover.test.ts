import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlertRule } from '../../src/alerts/rules';
import { createTestDatabase } from '../helpers/database';
import { spawnGateway, type GatewayProcess } from '../helpers/process';
import { until } from '../helpers/wait';
import { alertsOf, insertBox } from './fixtures';

// Gateway processes on one database, as replicas: one evaluates at a time, the database keeps one
// open alert per rule and subject, and a kill -9 of the evaluating process loses no alert nor its
// time: the next evaluator fires it at condition_since + forSeconds, read from the tables.

const INTERVAL_MS = 200;
const EVALUATING = 'this replica now runs the alert evaluator';
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let pool: pg.Pool;
const processes: GatewayProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
});
afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await Promise.all(processes.map((p) => p.exited));
  await pool?.end();
  await database?.drop();
});

async function start(): Promise<GatewayProcess> {
  const gateway = await spawnGateway({ PORT: '0', DATABASE_URL: database.url, ALERT_EVALUATION_INTERVAL_MS: String(INTERVAL_MS) });
  processes.push(gateway);
  return gateway;
}

async function kill9(gateway: GatewayProcess): Promise<void> {
  gateway.child.kill('SIGKILL');
  await gateway.exited;
}

/** Boxes that never reported (the offline sweep leaves them alone), set offline by hand at `since`. */
async function silentBoxes(count: number, since: Date): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(await insertBox(pool, { status: 'offline', statusSince: since }));
  await pool.query(`update boxes set last_report_at = null where id = any($1)`, [ids]);
  return ids;
}

describe('alert evaluation across replicas', () => {
  it('two replicas: one evaluator, one alert per subject; kill -9 of it mid-condition -> the other fires on time', { timeout: 120_000 }, async () => {
    const a = await start();
    await until(() => a.output().includes(EVALUATING), 'A to take the evaluator', { timeoutMs: 20_000 });
    const b = await start();
    // The condition begins now; its alerts are due in 3 s, while A still evaluates.
    const since = new Date();
    const boxes = await silentBoxes(20, since);
    const rule = await createAlertRule(pool, { name: 'down', kind: 'box_offline', severity: 'critical', forSeconds: 3, boxIds: boxes }, 'op', since);
    expect(await alertsOf(pool, rule.id)).toEqual([]);
    await kill9(a);
    expect(b.output()).not.toContain(EVALUATING);
    const fired = await until(async () => {
      const alerts = await alertsOf(pool, rule.id);
      return alerts.length === boxes.length ? alerts : undefined;
    }, 'B to fire every alert', { timeoutMs: 20_000 });
    expect(b.output()).toContain(EVALUATING);
    expect(new Set(fired.map((x) => x.subject)).size).toBe(boxes.length);
    for (const alert of fired) {
      expect(alert).toMatchObject({ state: 'firing', condition_since: since, fires_at: new Date(since.getTime() + 3000) });
      // B asks for the lock every interval: it fires within one interval of the due time (+ a busy machine's slack).
      expect(alert.fired_at.getTime() - alert.fires_at.getTime()).toBeLessThan(INTERVAL_MS + 800);
    }
    const { rows: changes } = await pool.query(`select count(*)::int as n from alert_changes c join alerts a on a.id = c.alert_id where a.rule_id = $1`, [rule.id]);
    expect(changes[0].n).toBe(boxes.length);
  });

  it('a condition that began while no evaluator ran fires on start-up with its own condition_since and fires_at', { timeout: 120_000 }, async () => {
    const [box] = await silentBoxes(1, new Date());
    await pool.query(`update boxes set status = 'online' where id = $1`, [box]);
    const rule = await createAlertRule(pool, { name: 'long down', kind: 'box_offline', severity: 'major', forSeconds: 30, boxIds: [box!] }, 'op');
    for (const p of processes) if (p.child.exitCode === null) await kill9(p);
    // While no gateway runs, the box went offline a minute ago (e.g. marked so by a replica that then died).
    const since = new Date(Date.now() - 60_000);
    await pool.query(`update boxes set status = 'offline', status_since = $2 where id = $1`, [box, since]);
    const startedAt = Date.now();
    const c = await start();
    const [alert] = await until(() => alertsOf(pool, rule.id).then((a) => (a.length > 0 ? a : undefined)), 'the restarted gateway to fire', { timeoutMs: 20_000 });
    expect(c.output()).toContain(EVALUATING);
    expect(alert).toMatchObject({ state: 'firing', condition_since: since, fires_at: new Date(since.getTime() + 30_000) });
    expect(alert!.fired_at.getTime()).toBeGreaterThanOrEqual(startedAt);
  });
});
