import { readsCredentials } from '../../auth/roles';
import { redactJsonCredentials, redactUrlCredentials } from '../../redaction/url-credentials';
import {
  boxByLicenseKey,
  boxesByIds,
  boxesPage,
  boxOrdering,
  countBoxesQuery,
  type BoxFilter as BoxFilterShape,
  type BoxColumn,
  type BoxOrderField,
  lastReportsByBoxIds,
  type BoxRow,
  type LastReportRow,
} from '../../models/boxes';
import { reportedNumber } from '../../models/health-figures';
import { keysetCondition } from '../../models/query-parts';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { badUserInput } from '../errors';
import { encodeCursor } from '../cursors';
import { parseDatabaseId } from '../global-id';
import {
  batchLoader,
  connectionArgs,
  connectionFromRows,
  countRows,
  OrderDirection,
  pageWindow,
  searchText,
  type CursorSpec,
  type PageArgs,
} from './pagination';

export const BoxStatus = builder.enumType('BoxStatus', {
  description: 'Whether a box is reporting. It goes offline when its reports stop for longer than its report period allows.',
  values: {
    ONLINE: { value: 'online' },
    OFFLINE: { value: 'offline' },
  } as const,
});

export const ReportFormat = builder.enumType('ReportFormat', {
  description: 'The dialect of device-status report a box sends.',
  values: {
    NEW: { value: 'new', description: '`mq_license_key` with `media_devices` (`media_device_*` fields).' },
    OLD: { value: 'old', description: '`dev_sno` with `sub_devices` (`ep_*` fields), often with `gateway_*` box details.' },
  } as const,
});

export const BoxRef = builder.loadableNode('Box', {
  description: 'A SOPHON SE AI box, known by the licence key in its reports. Removed boxes are not shown.',
  id: { resolve: (box: BoxRow) => box.id, parse: (id) => parseDatabaseId(id, 'Box') },
  load: (ids: number[], context: GraphQLContext) => boxesByIds(context.pool, ids),
  toKey: (box) => box.id,
  sort: true,
  fields: (t) => ({
    licenseKey: t.exposeString('licenseKey', { description: '`mq_license_key` (newer boxes) or `dev_sno` (older ones).' }),
    name: t.string({
      nullable: true,
      description: 'The name an older box reports as `gateway_name` (URL credentials in it masked for roles below operator).',
      resolve: (box, _args, context) => shownText(context, box.name),
    }),
    address: t.exposeString('address', {
      nullable: true,
      description: 'Source address of its last report (the address of its own REST API unless configured otherwise).',
    }),
    status: t.expose('status', { type: BoxStatus }),
    online: t.boolean({ resolve: (box) => box.status === 'online' }),
    statusSince: t.expose('statusSince', { type: 'DateTime', description: 'When `status` last changed.' }),
    firstReportAt: t.expose('firstReportAt', { type: 'DateTime', nullable: true }),
    lastReportAt: t.expose('lastReportAt', { type: 'DateTime', nullable: true }),
    reportCount: t.exposeInt('reportCount', { description: 'Reports received from it.' }),
    reportPeriodSeconds: t.int({
      nullable: true,
      description: 'Seconds between its reports: the configured period, else the observed one rounded; null before its second report.',
      resolve: (box) =>
        box.reportPeriodSeconds ?? (box.observedPeriodSeconds === null ? null : Math.round(box.observedPeriodSeconds)),
    }),
    configuredReportPeriodSeconds: t.exposeInt('reportPeriodSeconds', {
      nullable: true,
      description: 'MEDIA_DEVICE_MONITOR_REPORT_PEROID last applied to it through this gateway, if any.',
    }),
    observedReportPeriodSeconds: t.exposeFloat('observedPeriodSeconds', {
      nullable: true,
      description: 'Smoothed interval between its recent reports.',
    }),
    reportFormat: t.expose('reportFormat', { type: ReportFormat, nullable: true }),
    gateway: t.field({
      type: BoxGateway,
      nullable: true,
      description: 'What older boxes say about themselves (`gateway_*`, `gateway_ext_data`); null when the box sent none of it.',
      resolve: (box) => (box.gateway || box.gatewayExtData ? box : null),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

/** The columns each Box field reads (see columnsFor); keep in step with the fields above. */
export const BOX_FIELD_COLUMNS: Record<string, readonly BoxColumn[]> = {
  __typename: [],
  id: [],
  licenseKey: ['licenseKey'],
  name: ['name'],
  address: ['address'],
  status: ['status'],
  online: ['status'],
  statusSince: ['statusSince'],
  firstReportAt: ['firstReportAt'],
  lastReportAt: ['lastReportAt'],
  reportCount: ['reportCount'],
  reportPeriodSeconds: ['reportPeriodSeconds', 'observedPeriodSeconds'],
  configuredReportPeriodSeconds: ['reportPeriodSeconds'],
  observedReportPeriodSeconds: ['observedPeriodSeconds'],
  reportFormat: ['reportFormat'],
  gateway: ['gateway', 'gatewayExtData'],
  createdAt: ['createdAt'],
  lastReport: [],
  devices: [],
  deviceCounts: [],
  statusEvents: [],
  // Added by box-config.ts.
  apiAddress: ['apiAddress', 'address'],
  apiPort: ['apiPort'],
  configuredApiAddress: ['apiAddress'],
  configuredApiPort: ['apiPort'],
  monitorUrl: ['monitorUrl'],
  configChanges: [],
  // Added by box-onboarding.ts.
  hardwareSerial: ['hardwareSerial'],
  hardwareBoundAt: ['hardwareBoundAt'],
  lastLoginAt: ['lastLoginAt'],
  // Added by media-device.ts.
  mediaDeviceRequests: [],
  // Added by availability.ts.
  availability: [],
};

function text(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return null;
}

/** What a box sent about itself, as the reader may see it: URL credentials masked for roles that may not read URLs. */
function shownText(context: GraphQLContext, value: unknown): string | null {
  const shown = text(value);
  return readsCredentials(context.principal) ? shown : redactUrlCredentials(shown);
}

const BoxGateway = builder.objectRef<BoxRow>('BoxGateway').implement({
  description: "An older box's own details from its last report that had them. Typed fields are null when absent or unreadable.",
  fields: (t) => {
    const field = (name: string) => (box: BoxRow) => box.gateway?.[name];
    const ext = (name: string) => (box: BoxRow) => box.gatewayExtData?.[name];
    const shown = (read: (box: BoxRow) => unknown) => (box: BoxRow, _args: object, context: GraphQLContext) => shownText(context, read(box));
    return {
      ip: t.string({ nullable: true, description: '`gateway_ip`', resolve: shown(field('gateway_ip')) }),
      name: t.string({ nullable: true, description: '`gateway_name`', resolve: shown(field('gateway_name')) }),
      status: t.string({ nullable: true, description: '`gateway_status`, as the box reports it', resolve: shown(field('gateway_status')) }),
      serialNumber: t.string({ nullable: true, description: '`gateway_sn`', resolve: shown(field('gateway_sn')) }),
      port: t.int({
        nullable: true,
        description: '`gateway_port`: the port of its REST API',
        resolve: (box) => {
          const port = reportedNumber(field('gateway_port')(box));
          return port !== null && Number.isInteger(port) && port > 0 && port < 65536 ? port : null;
        },
      }),
      swVersion: t.string({ nullable: true, description: '`gateway_ext_data.sw_version`', resolve: shown(ext('sw_version')) }),
      sdkVersion: t.string({ nullable: true, description: '`gateway_ext_data.sdk_version`', resolve: shown(ext('sdk_version')) }),
      mac: t.string({ nullable: true, description: '`gateway_ext_data.gateway_mac`', resolve: shown(ext('gateway_mac')) }),
      cpuUsage: t.float({ nullable: true, description: '`gateway_ext_data.cpu_usage`, percent', resolve: (box) => reportedNumber(ext('cpu_usage')(box)) }),
      memoryUsage: t.float({ nullable: true, description: '`gateway_ext_data.memory_usage`, percent', resolve: (box) => reportedNumber(ext('memory_usage')(box)) }),
      diskUsage: t.float({ nullable: true, description: '`gateway_ext_data.disk_usage`, percent', resolve: (box) => reportedNumber(ext('disk_usage')(box)) }),
      temperature: t.float({ nullable: true, description: '`gateway_ext_data.temperature`, °C', resolve: (box) => reportedNumber(ext('temperature')(box)) }),
      raw: t.field({
        type: 'JSON',
        description: 'The `gateway_*` fields as sent, with `gateway_ext_data` inside; URL credentials masked for roles that may not read URLs.',
        resolve: (box, _args, context) => {
          const raw = { ...box.gateway, ...(box.gatewayExtData ? { gateway_ext_data: box.gatewayExtData } : {}) };
          return readsCredentials(context.principal) ? raw : redactJsonCredentials(raw);
        },
      }),
    };
  },
});

// ---------------------------------------------------------------------------------------------
// Lists

const BoxReport = builder.objectRef<LastReportRow>('BoxReport').implement({
  description: 'A report as the box sent it, kept for debugging. Needs the operator role, however it is reached: camera URLs in it carry credentials.',
  // The type decides, not the field leading to it; checked once per object (isTypeOf).
  authScopes: { operator: true },
  fields: (t) => ({
    receivedAt: t.expose('receivedAt', { type: 'DateTime', description: 'When the gateway received it.' }),
    body: t.exposeString('body', {
      description:
        'The body as received (JSON text), byte for byte unless it had to be rewritten: a body read as JSON5, or one with text Postgres cannot store (NUL, lone surrogates), is kept as the JSON it was read as.',
    }),
  }),
});

builder.objectField(BoxRef, 'lastReport', (t) =>
  t.field({
    type: BoxReport,
    nullable: true,
    description:
      'Its last report as it arrived, to see what the box really sent. Needs the operator role: camera URLs in it carry credentials. Null before its first report.',
    authScopes: { operator: true },
    resolve: (box, _args, context) => batchLoader(context, 'Box.lastReport', (ids) => lastReportsByBoxIds(context.pool, ids), null).load(box.id),
  }),
);

const BoxOrderFieldEnum = builder.enumType('BoxOrderField', {
  description: 'Orderings of boxes. Ties are broken by id, in the same direction.',
  values: {
    ID: { value: 'ID', description: 'Order of first report.' },
    LICENSE_KEY: { value: 'LICENSE_KEY' },
    NAME: { value: 'NAME', description: 'Boxes without a name sort as the empty string.' },
    LAST_REPORT_AT: { value: 'LAST_REPORT_AT', description: 'ASC puts the boxes silent longest first.' },
    STATUS_SINCE: { value: 'STATUS_SINCE', description: 'When the status last changed.' },
  } satisfies Record<BoxOrderField, { value: BoxOrderField; description?: string }>,
});

const BoxOrder = builder.inputType('BoxOrder', {
  fields: (t) => ({
    field: t.field({ type: BoxOrderFieldEnum, required: true }),
    direction: t.field({ type: OrderDirection, defaultValue: 'ASC', description: 'Default ASC (also when null).' }),
  }),
});

export const BoxFilter = builder.inputType('BoxFilter', {
  description: 'Conditions a box must all meet. A list matches any of its values.',
  fields: (t) => ({
    status: t.field({ type: [BoxStatus] }),
    reportFormat: t.field({ type: [ReportFormat] }),
    search: t.string({ description: 'Substring of the licence key, name or address, any letter case.' }),
  }),
});

export const BoxConnection = builder.connectionObject({ type: BoxRef, name: 'BoxConnection' }, { name: 'BoxEdge' });

export const boxListArgs = builder.args((t) => ({
  ...connectionArgs,
  filter: t.field({ type: BoxFilter }),
  orderBy: t.field({
    type: BoxOrder,
    defaultValue: { field: 'ID', direction: 'ASC' },
    description: 'Default: by id, ascending.',
  }),
}));

type BoxListArgs = PageArgs & {
  filter?: { status?: BoxRow['status'][] | null; reportFormat?: ('new' | 'old')[] | null; search?: string | null } | null;
  orderBy?: { field: BoxOrderField; direction?: 'ASC' | 'DESC' | null } | null;
};

/** `boxes(...)` and `fleetSummary.perBox(...)`: one statement for the page, one for totalCount if asked. */
export async function resolveBoxes(args: BoxListArgs, context: GraphQLContext) {
  const filter: BoxFilterShape = {
    status: args.filter?.status ?? undefined,
    reportFormat: args.filter?.reportFormat ?? undefined,
    search: searchText(args.filter?.search),
    masked: !readsCredentials(context.principal),
  };
  const field = args.orderBy?.field ?? 'ID';
  const ordering = boxOrdering(field, args.orderBy?.direction === 'DESC', filter.masked);
  const scope = `Box:${field}`;
  const spec: CursorSpec = {
    scope,
    types: ordering.key ? [ordering.key.type, 'int'] : ['int'],
    keyset: (values, side) => keysetCondition(ordering, values, side),
  };
  const window = pageWindow(args, spec);
  const rows = await boxesPage(context.pool, filter, ordering, window);
  // Whole rows: they prime the loader, so `Device.box` of their devices and events costs no statement.
  const loader = BoxRef.getDataloader(context);
  for (const box of rows) loader.prime(box.id, box);
  return connectionFromRows(
    rows,
    window,
    (box) => encodeCursor(scope, ordering.key ? [box.sortValue ?? '', box.id] : [box.id]),
    () => countRows(context, countBoxesQuery(filter)),
  );
}

builder.queryFields((t) => ({
  boxes: t.field({
    type: BoxConnection,
    description: 'Boxes of the fleet, a page at a time.',
    args: boxListArgs,
    resolve: (_root, args, context) => resolveBoxes(args, context),
  }),
  box: t.field({
    type: BoxRef,
    nullable: true,
    description: 'One box, by `id` or by `licenseKey` (give exactly one). Null when there is no such box.',
    args: {
      id: t.arg.globalID({ for: BoxRef }),
      licenseKey: t.arg.string(),
    },
    resolve: async (_root, args, context) => {
      if ((args.id == null) === (args.licenseKey == null)) {
        throw badUserInput('Pass exactly one of `id` and `licenseKey`.', { argument: args.id == null ? 'id' : 'licenseKey' });
      }
      if (args.id) return args.id.id;
      return (await boxByLicenseKey(context.pool, args.licenseKey!)) ?? null;
    },
  }),
}));
