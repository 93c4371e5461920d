import { lexicographicSortSchema, printSchema } from 'graphql';
import { builder } from './builder';
import './types/pagination';
import './types/box';
import './types/box-health';
import './types/device';
import './types/status-event';
import './types/fleet-summary';
import './types/box-config-change';
import './types/box-call-results';
import './types/box-config';
import './types/box-admin';
import './types/box-onboarding';
import './types/media-device';
import './types/live';
import './types/api-token';
import './types/availability';
import './types/fleet-availability';
import './types/alert-rule';
import './types/alert-rule-writes';
import './types/alert';
import './types/webhook-channel';
import './types/webhook-notification';
import './types/alert-changed';
import './types/alert-counts';
import './types/rollout';
import './types/rollout-progress';

/** The executable schema. Only the server (and the printer and tests) import this file. */
export const schema = builder.toSchema({ sortSchema: false });

/** The SDL committed as schema.graphql: types and fields in alphabetical order, so diffs stay small. */
export function printSchemaSdl(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
