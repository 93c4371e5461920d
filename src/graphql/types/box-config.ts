import { decodeGlobalID } from '@pothos/plugin-relay';
import { isIPv6 } from 'node:net';
import { readsCredentials } from '../../auth/roles';
import { redactUrlCredentials } from '../../redaction/url-credentials';
import { DEFAULT_BOX_API_PORT } from '../../box-api/client';
import type { ConfigFieldError } from '../../box-api/config-keys';
import { configureBox, readBoxConfig, type BoxConfigDeps } from '../../box-api/configure';
import { pointBoxAtGateway } from '../../box-api/point-at-gateway';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { BoxRef } from './box';
import { boxConfigResult, BoxConfigResult, ConfigureBoxResult, configureResult, InvalidConfig, PointBoxAtGatewayResult } from './box-call-results';

// configureBox, pointBoxAtGateway and boxConfig: a box's settings through its own REST API, with
// every attempt to change them kept as a BoxConfigChange (./box-config-change.ts) and answered as a
// member of a result union (./box-call-results.ts). The work is in src/box-api/configure.ts and
// src/box-api/point-at-gateway.ts; this file maps arguments and results.

// ---------------------------------------------------------------------------------------------
// Where a box's REST API is

builder.objectFields(BoxRef, (t) => ({
  apiAddress: t.string({
    nullable: true,
    description: 'Address the gateway calls for its REST API: `configuredApiAddress`, else the source address of its last report.',
    resolve: (box) => box.apiAddress ?? box.address,
  }),
  apiPort: t.int({
    description: `Port the gateway calls for its REST API: \`configuredApiPort\`, else ${DEFAULT_BOX_API_PORT}.`,
    resolve: (box) => box.apiPort ?? DEFAULT_BOX_API_PORT,
  }),
  configuredApiAddress: t.exposeString('apiAddress', { nullable: true, description: 'The API address an operator set (registerBox, updateBox).' }),
  configuredApiPort: t.exposeInt('apiPort', { nullable: true, description: 'The API port an operator set (registerBox, updateBox).' }),
  monitorUrl: t.string({
    nullable: true,
    description:
      'MEDIA_DEVICE_MONITOR_URL the box last took through this gateway (where it sends its reports), if any. Its credentials (an ingest secret, user-info, token-like parameters) are masked for roles below operator.',
    resolve: (box, _args, context) => (readsCredentials(context.principal) ? box.monitorUrl : redactUrlCredentials(box.monitorUrl)),
  }),
}));

// ---------------------------------------------------------------------------------------------
// Operations

/** The box id inside a global id, or the problem with it; never throws (an unknown box is an InvalidConfig). */
export function boxIdFrom(globalId: string, field = 'boxId'): number | ConfigFieldError {
  try {
    const { typename, id } = decodeGlobalID(globalId);
    const value = Number(id);
    if (typename === 'Box' && /^[1-9][0-9]{0,9}$/.test(id) && value <= 2_147_483_647) return value;
  } catch {
    // not base64 of "Type:id"
  }
  return { field, message: `${JSON.stringify(globalId)} is not a Box id; use the \`id\` of a Box this API returned.` };
}

export function boxConfigDeps(context: GraphQLContext): BoxConfigDeps {
  return { pool: context.pool, log: context.log, call: { timeoutMs: context.config.boxApiTimeoutMs, networks: context.boxNetworks }, queue: context.boxCalls };
}

/**
 * The URL boxes reach this gateway's ingest at: PUBLIC_URL, else `http://<HOST>:<PORT>` as it
 * listens. With HOST 0.0.0.0 (or ::) the address is the interface this request came in on, and
 * with PORT 0 the port it came in on: right on a flat network, wrong behind NAT or a proxy, which is
 * why production sets PUBLIC_URL.
 */
export function gatewayIngestUrl(context: GraphQLContext): string | undefined {
  const { publicUrl, host, port } = context.config;
  if (publicUrl) return `${publicUrl}/DeviceStatus`;
  const socket = context.req?.socket;
  const wildcard = host === '' || host === '0.0.0.0' || host === '::';
  let address = wildcard ? socket?.localAddress : host;
  const listening = port === 0 ? socket?.localPort : port;
  if (address && listening) {
    if (address.startsWith('::ffff:')) address = address.slice(7);
    return `http://${isIPv6(address) ? `[${address}]` : address}:${listening}/DeviceStatus`;
  }
  const url = context.request?.url;
  return url && URL.canParse(url) ? `${new URL(url).origin}/DeviceStatus` : undefined;
}

type InputFields = Parameters<NonNullable<Parameters<typeof builder.inputType>[1]['fields']>>[0];

/** The settings fields of ConfigureBoxInput, shared with BoxConfigInput (startRollout's settings): checked alike. */
const configInputFields = (t: InputFields) => ({
  monitorUrl: t.string({ description: 'MEDIA_DEVICE_MONITOR_URL: where the box POSTs its device status reports. Absolute http or https.' }),
  reportPeriodSeconds: t.float({
    description:
      'MEDIA_DEVICE_MONITOR_REPORT_PEROID: seconds between reports, a whole number from 1 to 3600. A Float so that 2.5 is answered with InvalidConfig like any other bad period.',
  }),
  settings: t.field({
    type: 'JSON',
    description: 'Other box settings by their box names, e.g. `{"GATE_PASS_MODE": "allpass"}`; values are strings, numbers or booleans.',
  }),
});

export const ConfigureBoxInput = builder.inputType('ConfigureBoxInput', {
  description: 'Settings to set on a box; leave out (or null) what should stay as it is. At least one is required.',
  fields: (t) => ({
    boxId: t.id({ required: true, description: 'The Box to configure.' }),
    ...configInputFields(t),
  }),
});

export const BoxConfigInput = builder.inputType('BoxConfigInput', {
  description: 'Settings to set on boxes, as configureBox takes them (without the box); leave out (or null) what should stay as it is. At least one is required.',
  fields: (t) => configInputFields(t),
});

builder.mutationFields((t) => ({
  configureBox: t.field({
    authScopes: { operator: true },
    type: ConfigureBoxResult,
    description:
      'Sets settings on a box through `POST /sophon/v2/face/setconfigs` on its recorded address and API port, and answers what the box said. Calls to one box run one at a time. Every attempt is kept in `Box.configChanges`.',
    args: { input: t.arg({ type: ConfigureBoxInput, required: true }) },
    resolve: async (_root, { input }, context) => {
      const boxId = boxIdFrom(input.boxId);
      if (typeof boxId !== 'number') throw new InvalidConfig([boxId]);
      const outcome = await configureBox(boxConfigDeps(context), {
        boxId,
        input: { monitorUrl: input.monitorUrl, reportPeriodSeconds: input.reportPeriodSeconds, settings: input.settings as Record<string, unknown> | null | undefined },
        requestedBy: context.actor,
      });
      return configureResult(outcome);
    },
  }),
  pointBoxAtGateway: t.field({
    authScopes: { operator: true },
    type: PointBoxAtGatewayResult,
    description:
      'configureBox with `monitorUrl` set to this gateway’s own ingest URL: `PUBLIC_URL` + `/DeviceStatus` (see docs/graphql.md for the default). With INGEST_POLICY=token the URL ends in a new secret of this box’s (`/DeviceStatus/<secret>`); the box’s previous secret stops working once the box holds the new one. Needs the operator role.',
    args: { boxId: t.arg.id({ required: true }) },
    resolve: async (_root, args, context) => {
      const boxId = boxIdFrom(args.boxId);
      if (typeof boxId !== 'number') throw new InvalidConfig([boxId]);
      const ingestUrl = gatewayIngestUrl(context);
      if (!ingestUrl) throw new InvalidConfig([{ field: 'monitorUrl', message: 'The gateway cannot tell its own URL here; set PUBLIC_URL.' }]);
      const outcome = await pointBoxAtGateway(
        { ...boxConfigDeps(context), secretsChanged: context.ingestSecretsChanged },
        { boxId, ingestUrl, withSecret: context.config.ingestPolicy === 'token', requestedBy: context.actor },
      );
      return configureResult(outcome);
    },
  }),
}));

builder.queryField('boxConfig', (t) =>
  t.field({
    type: BoxConfigResult,
    // It calls the box: an operator's tool, and its answer shows the box's settings.
    authScopes: { operator: true },
    description:
      'Reads settings from the box itself through `POST /sophon/v2/face/getconfigs` (never from a cache): `keys`, or every setting it lists when left out. Needs the operator role.',
    args: {
      boxId: t.arg.id({ required: true }),
      keys: t.arg.stringList({ description: 'Box setting names, e.g. ["MEDIA_DEVICE_MONITOR_URL", "MEDIA_DEVICE_MONITOR_REPORT_PEROID"].' }),
    },
    resolve: async (_root, args, context) => {
      // The answer comes from the box, not the database: the snapshot response cache must not keep it.
      context.uncacheable = true;
      const boxId = boxIdFrom(args.boxId);
      if (typeof boxId !== 'number') throw new InvalidConfig([boxId]);
      const outcome = await readBoxConfig(boxConfigDeps(context), boxId, args.keys ?? undefined);
      return boxConfigResult(outcome);
    },
  }),
);
