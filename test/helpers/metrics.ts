import { until } from './wait';

/** A gateway's `/metrics` as a map from series (`name{labels}`) to value. */
export async function scrapeMetrics(baseUrl: string): Promise<Map<string, number>> {
  const response = await fetch(`${baseUrl}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  const series = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    series.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return series;
}

/** One series' value (0 while it has none yet). */
export async function metric(baseUrl: string, series: string): Promise<number> {
  return (await scrapeMetrics(baseUrl)).get(series) ?? 0;
}

/** Waits until `series` of the gateway at `baseUrl` is `accepted`; returns its value then. */
export async function waitForMetric(baseUrl: string, series: string, accepted: (value: number) => boolean, timeoutMs = 10_000): Promise<number> {
  let last: number | undefined;
  await until(
    async () => accepted((last = await metric(baseUrl, series))),
    () => `${series} to be accepted; it is ${last}`,
    { timeoutMs },
  );
  return last!;
}

/** Open websockets of a gateway, upgraded and not yet closed (authenticated or not). */
export const WEBSOCKETS = 'fleetgate_websocket_connections';

/** Waits until the gateway holds exactly `count` open websockets: closes it has seen, slots given back. */
export function waitForWebsockets(baseUrl: string, count: number, timeoutMs?: number): Promise<number> {
  return waitForMetric(baseUrl, WEBSOCKETS, (open) => open === count, timeoutMs);
}
