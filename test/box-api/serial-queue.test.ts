import { expect, it } from 'vitest';
import { SerialQueue } from '../../src/box-api/serial-queue';
import { until } from '../helpers/wait';

const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

it('runs tasks of one key one at a time in arrival order, other keys alongside, and survives failures', async () => {
  const queue = new SerialQueue<number>();
  const log: string[] = [];
  const task = (name: string, fail = false) => async () => {
    log.push(`${name} start`);
    await tick();
    log.push(`${name} end`);
    if (fail) throw new Error(name);
    return name;
  };

  const a1 = queue.run(1, task('a1', true));
  const a2 = queue.run(1, task('a2'));
  const b1 = queue.run(2, task('b1'));
  expect(queue.busyKeys).toBe(2);

  await expect(a1).rejects.toThrow('a1');
  await expect(a2).resolves.toBe('a2');
  await expect(b1).resolves.toBe('b1');
  expect(log.indexOf('a2 start')).toBeGreaterThan(log.indexOf('a1 end'));
  expect(log.indexOf('b1 start')).toBeLessThan(log.indexOf('a1 end'));
  await until(() => queue.busyKeys === 0, 'the queue to let its keys go');
});
