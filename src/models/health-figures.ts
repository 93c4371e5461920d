/**
 * The health figures an older box sends in `gateway_ext_data` at every report, as both ingest (which
 * keeps them over time, in box_health) and the API (Box.gateway, the last report's) read them. Here so
 * that the two read a figure alike and neither imports the other.
 */

/** Numbers as boxes send them: 23.5, "23.5" or "52℃" (the number its text starts with). */
export function reportedNumber(value: unknown): number | null {
  const parsed = typeof value === 'number' ? value : typeof value === 'string' ? Number.parseFloat(value) : Number.NaN;
  return Number.isFinite(parsed) ? parsed : null;
}

/** The figures kept over time, by their name in box_health (`cpu_min`, ...) and in the API. */
export const HEALTH_FIGURES = ['cpu', 'memory', 'disk', 'temperature'] as const;
export type HealthFigure = (typeof HEALTH_FIGURES)[number];

/**
 * Where each figure is in `gateway_ext_data`, and the values that can be true of it. A value outside
 * is a box's glitch (a sensor's -273, a usage of 1e9), and one would spoil an hour's min, max and mean
 * for good, so it is left out like an unreadable one: a gap, not a sample. Usage is a percentage;
 * −50..150 °C spans what an SoC reports between a cold start outdoors and its thermal shutdown.
 */
export const HEALTH_FIGURE_SOURCES: Record<HealthFigure, { key: string; min: number; max: number }> = {
  cpu: { key: 'cpu_usage', min: 0, max: 100 },
  memory: { key: 'memory_usage', min: 0, max: 100 },
  disk: { key: 'disk_usage', min: 0, max: 100 },
  temperature: { key: 'temperature', min: -50, max: 150 },
};

/** One figure of `gateway_ext_data`, or null when it is absent, unreadable or out of its range. */
export function healthFigure(extData: Record<string, unknown>, figure: HealthFigure): number | null {
  const { key, min, max } = HEALTH_FIGURE_SOURCES[figure];
  const value = reportedNumber(extData[key]);
  return value !== null && value >= min && value <= max ? value : null;
}
