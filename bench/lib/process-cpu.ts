// CPU a benchmarked server and its embedded Postgres used, read from Linux /proc.
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/**
 * CPU seconds used so far by a process (`root`) and by its descendants (the embedded Postgres), from
 * Linux /proc; undefined elsewhere. Descendants that exited meanwhile (autovacuum workers) are missed.
 */
export function treeCpuSeconds(rootPid: number | undefined): { root: number; descendants: number } | undefined {
  if (rootPid === undefined || !existsSync('/proc/self/stat')) return undefined;
  const children = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pid = Number(entry);
    const ppid = Number(fields[1]);
    ticks.set(pid, Number(fields[11]) + Number(fields[12])); // utime + stime
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  if (!ticks.has(rootPid)) return undefined;
  let descendants = 0;
  const pending = [...(children.get(rootPid) ?? [])];
  while (pending.length) {
    const pid = pending.pop() as number;
    descendants += ticks.get(pid) ?? 0;
    pending.push(...(children.get(pid) ?? []));
  }
  // USER_HZ is 100 on every mainstream Linux
  return { root: ticks.get(rootPid)! / 100, descendants: descendants / 100 };
}
