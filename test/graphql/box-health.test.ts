import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensurePartitions } from '../../src/history/partitions';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { graphql as send, query } from '../helpers/graphql';
import { recordStatements } from '../helpers/statements';
import { olderReport, post } from './fleet-fixture';
import { graphql } from './generated';

// Box.health(since, until, bucket): hourly rows of box_health as UTC hours or days, every bucket of the
// range with its gaps, bad ranges refused with a code naming the argument, and one statement for all
// the boxes of a response. Rows of past hours are written here by hand, so each figure is checked
// against a sum done on paper; the last test reads what ingest itself wrote.

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Midnight UTC ten days ago: the hand-written hours are on that day and the next. */
const DAY_ONE = new Date(Math.floor(Date.now() / DAY) * DAY - 10 * DAY);
const at = (hours: number) => new Date(DAY_ONE.getTime() + hours * HOUR);

let gateway: TestGateway;
/** Box global id and database id by licence key. */
const boxes = new Map<string, { id: string; dbId: number }>();

type Figure = { min: number; max: number; sum: number; count: number } | null;
async function writeHour(key: string, hour: Date, reports: number, cpu: Figure, temperature: Figure = null) {
  await gateway.sql.query(
    `insert into box_health (box_id, hour, reports, cpu_min, cpu_max, cpu_sum, cpu_count, temperature_min, temperature_max, temperature_sum, temperature_count)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [boxes.get(key)!.dbId, hour, reports, cpu?.min, cpu?.max, cpu?.sum, cpu?.count ?? 0, temperature?.min, temperature?.max, temperature?.sum, temperature?.count ?? 0],
  );
}

beforeAll(async () => {
  gateway = await startGateway({ eventPollIntervalMs: 3_600_000, tokenCheckMs: 3_600_000 });
  // Start-up makes the months around now; the hours written by hand may be in the month before.
  await ensurePartitions(gateway.sql, 'box_health', new Date(DAY_ONE.getTime() - DAY), new Date());
  for (let i = 0; i < 25; i++) {
    const key = `HLT-${String(i).padStart(2, '0')}`;
    // The newer format sends no health: these boxes' buckets are all gaps.
    const { boxId } = await post(gateway, olderReport(key, [{ id: `${key}-cam` }], { gateway_ext_data: { sw_version: '1' } }));
    const { rows } = await gateway.sql.query('select id from boxes where license_key = $1', [key]);
    boxes.set(key, { id: boxId, dbId: rows[0].id });
  }
  // HLT-00, day one: 09:00 and 11:00 (10:00 a gap); day two: 02:00, temperature only.
  await writeHour('HLT-00', at(9), 3, { min: 10, max: 50, sum: 90, count: 3 }, { min: 40, max: 44, sum: 84, count: 2 });
  await writeHour('HLT-00', at(11), 2, { min: 5, max: 20, sum: 25, count: 2 });
  await writeHour('HLT-00', at(24 + 2), 4, null, { min: 61.5, max: 70, sum: 262, count: 4 });
  for (let i = 1; i < 25; i++) await writeHour(`HLT-${String(i).padStart(2, '0')}`, at(9), 1, { min: i, max: i, sum: i, count: 1 });
}, 60_000);
afterAll(() => gateway?.close());

const BoxHealth = graphql(`
  query BoxHealth($id: ID!, $since: DateTime!, $until: DateTime, $bucket: HistoryBucket!) {
    node(id: $id) {
      ... on Box {
        health(since: $since, until: $until, bucket: $bucket) {
          start
          end
          reports
          cpu { min avg max samples }
          memory { min avg max samples }
          disk { min avg max samples }
          temperature { min avg max samples }
        }
      }
    }
  }
`);

async function health(key: string, since: Date, until: Date | null, bucket: 'HOUR' | 'DAY') {
  const data = await query(gateway.url, BoxHealth, { id: boxes.get(key)!.id, since: since.toISOString(), until: until?.toISOString(), bucket });
  return (data.node as { health: Array<Record<string, any>> }).health;
}

const gap = { memory: null, disk: null };

describe('Box.health', () => {
  it('HOUR: every hour of the range, the stored ones as written and the others gaps', async () => {
    const buckets = await health('HLT-00', at(8), at(12), 'HOUR');
    expect(buckets).toEqual([
      { start: at(8).toISOString(), end: at(9).toISOString(), reports: 0, cpu: null, temperature: null, ...gap },
      {
        start: at(9).toISOString(),
        end: at(10).toISOString(),
        reports: 3,
        cpu: { min: 10, avg: 30, max: 50, samples: 3 },
        temperature: { min: 40, avg: 42, max: 44, samples: 2 },
        ...gap,
      },
      { start: at(10).toISOString(), end: at(11).toISOString(), reports: 0, cpu: null, temperature: null, ...gap },
      { start: at(11).toISOString(), end: at(12).toISOString(), reports: 2, cpu: { min: 5, avg: 12.5, max: 20, samples: 2 }, temperature: null, ...gap },
    ]);
  });

  it('a range not on the hour is answered in the whole hours it overlaps', async () => {
    const buckets = await health('HLT-00', new Date(at(9).getTime() + 30 * 60_000), new Date(at(11).getTime() + 1), 'HOUR');
    expect(buckets.map((b) => [b.start, b.reports])).toEqual([
      [at(9).toISOString(), 3],
      [at(10).toISOString(), 0],
      [at(11).toISOString(), 2],
    ]);
  });

  it('DAY folds the hours exactly: min of mins, max of maxes, mean over every sample', async () => {
    const buckets = await health('HLT-00', at(-24), at(48), 'DAY');
    expect(buckets).toEqual([
      { start: at(-24).toISOString(), end: at(0).toISOString(), reports: 0, cpu: null, temperature: null, ...gap },
      {
        start: at(0).toISOString(),
        end: at(24).toISOString(),
        reports: 5,
        // (90 + 25) / (3 + 2), not the mean of the hourly means (30 and 12.5).
        cpu: { min: 5, avg: 23, max: 50, samples: 5 },
        temperature: { min: 40, avg: 42, max: 44, samples: 2 },
        ...gap,
      },
      { start: at(24).toISOString(), end: at(48).toISOString(), reports: 4, cpu: null, temperature: { min: 61.5, avg: 65.5, max: 70, samples: 4 }, ...gap },
    ]);
  });

  it('until omitted is now: the last bucket holds what ingest wrote this hour', async () => {
    const key = 'LIVE-HLT';
    const figures = (cpu: unknown, temperature: unknown) => ({
      gateway_ext_data: { sw_version: '1', cpu_usage: cpu, memory_usage: 40, temperature },
    });
    const { boxId } = await post(gateway, olderReport(key, [{ id: 'cam' }], figures(20, '50℃')));
    await post(gateway, olderReport(key, [{ id: 'cam', status: 'offline' }], figures('30.5', 'n/a')));
    const data = await query(gateway.url, BoxHealth, { id: boxId, since: new Date(Date.now() - 3 * HOUR).toISOString(), bucket: 'HOUR' });
    const buckets = (data.node as { health: Array<Record<string, any>> }).health;
    expect(buckets.length).toBeGreaterThanOrEqual(3);
    // Both reports, in the last hour or (had they straddled one) the last two.
    const recent = buckets.slice(-2);
    expect(recent.reduce((n, b) => n + b.reports, 0)).toBe(2);
    const cpu = recent.flatMap((b) => (b.cpu ? [b.cpu] : []));
    expect(cpu.reduce((n, c) => n + c.samples, 0)).toBe(2);
    expect(Math.min(...cpu.map((c) => c.min))).toBe(20);
    expect(Math.max(...cpu.map((c) => c.max))).toBe(30.5);
    expect(recent.reduce((n, b) => n + (b.temperature?.samples ?? 0), 0)).toBe(1); // 'n/a' is a gap
    expect(recent.every((b) => b.disk === null)).toBe(true);
  });
});

describe('Box.health bad input', () => {
  async function errorOf(variables: Record<string, unknown>) {
    const res = await send(gateway.url, BoxHealth, { id: boxes.get('HLT-00')!.id, bucket: 'HOUR', ...variables } as never);
    expect(res.status).not.toBe(500);
    return res.body.errors?.[0];
  }

  it('refuses until not after since, since beyond retention, too many buckets, an unknown bucket', async () => {
    expect((await errorOf({ since: at(10).toISOString(), until: at(9).toISOString() }))?.extensions).toMatchObject({ code: 'INVALID_RANGE', argument: 'until' });
    expect((await errorOf({ since: at(10).toISOString(), until: at(10).toISOString() }))?.extensions).toMatchObject({ code: 'INVALID_RANGE', argument: 'until' });
    const beyond = await errorOf({ since: new Date(Date.now() - 401 * DAY).toISOString() });
    expect(beyond?.extensions).toMatchObject({ code: 'BEYOND_RETENTION', argument: 'since' });
    expect(beyond?.message).toMatch(/HISTORY_RETENTION_DAYS/);
    const tooMany = await errorOf({ since: new Date(Date.now() - 60 * DAY).toISOString() });
    expect(tooMany?.extensions).toMatchObject({ code: 'TOO_MANY_BUCKETS', argument: 'bucket' });
    // The same range by DAY is 61 buckets: fine.
    expect(await errorOf({ since: new Date(Date.now() - 60 * DAY).toISOString(), bucket: 'DAY' })).toBeUndefined();
    // An unknown bucket or a time that is not one: GraphQL itself refuses the variable, or the literal.
    const minute = await errorOf({ since: at(0).toISOString(), bucket: 'MINUTE' });
    expect(minute?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(minute?.message).toMatch(/\$bucket/);
    expect((await errorOf({ since: 'yesterday' }))?.extensions?.code).toBe('BAD_USER_INPUT');
    const literal = await send(gateway.url, `{ node(id: "${boxes.get('HLT-00')!.id}") { ... on Box { health(since: "${at(0).toISOString()}", bucket: WEEK) { reports } } } }`);
    expect(literal.status).not.toBe(500);
    expect(literal.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });
});

const BoxesHealth = graphql(`
  query BoxesHealth($first: Int!, $since: DateTime!, $until: DateTime) {
    boxes(first: $first, filter: { search: "HLT-" }) {
      nodes {
        licenseKey
        health(since: $since, until: $until, bucket: HOUR) { start reports cpu { avg samples } }
        lastDay: health(since: $since, until: $until, bucket: DAY) { reports cpu { max } }
      }
    }
  }
`);

describe('Box.health across a page of boxes', () => {
  it('reads the health of every box of the page in one statement per range and bucket', async () => {
    const pools = () => [gateway.app.apiPool, gateway.app.pool];
    const variables = { since: at(8).toISOString(), until: at(10).toISOString() };
    const small = await recordStatements(pools(), () => query(gateway.url, BoxesHealth, { first: 2, ...variables }));
    let nodes: Array<{ licenseKey: string; health: Array<{ reports: number; cpu: { avg: number } | null }> }> = [];
    const large = await recordStatements(pools(), async () => {
      nodes = (await query(gateway.url, BoxesHealth, { first: 25, ...variables })).boxes.nodes;
    });
    expect(nodes).toHaveLength(25);
    for (const node of nodes) {
      const n = Number(node.licenseKey.slice(4));
      expect(node.health.map((b) => b.reports)).toEqual([0, n === 0 ? 3 : 1]);
      expect(node.health[1]!.cpu!.avg).toBe(n === 0 ? 30 : n);
    }
    expect(large.filter((s) => s.includes('box_health')), large.join('\n---\n')).toHaveLength(2); // HOUR and DAY
    expect(small, small.join('\n---\n')).toHaveLength(large.length);
  });
});
