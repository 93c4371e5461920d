import type { ConfigFieldError } from '../../box-api/config-keys';
import { validateRegistration } from '../../box-api/registration';
import { registerBox, removeBox, updateBox, type BoxPatch, type RegisterOutcome } from '../../models/box-admin';
import { hardwareSerialProblem } from '../../models/box-login';
import { licenseKeyAt } from '../../models/license-keys';
import type { BoxRow } from '../../models/boxes';
import { builder } from '../builder';
import { encodeGlobalId } from '../global-id';
import { BoxRef } from './box';
import { boxIdFrom } from './box-config';
import { ErrorInterface, InputProblem, problemsMessage, resolveByClass } from './error';

// registerBox, updateBox, removeBox: the boxes an operator tells the gateway about. Reports create
// boxes on their own; registering one first lets the gateway call it (configureBox) before it reports.

export class InvalidBoxInput extends Error {
  constructor(readonly problems: ConfigFieldError[]) {
    super(problemsMessage(problems));
  }
}

export class LicenseKeyTaken extends Error {
  constructor(readonly box: BoxRow) {
    super(`A box with licence key ${JSON.stringify(box.licenseKey)} is already known; change it with updateBox.`);
  }
}

class RegisterBoxSuccess {
  constructor(
    readonly box: BoxRow,
    readonly restored: boolean,
  ) {}
}

class UpdateBoxSuccess {
  constructor(readonly box: BoxRow) {}
}

class RemoveBoxSuccess {
  constructor(
    readonly boxId: number,
    readonly licenseKey: string,
    readonly historyDeleted: boolean,
  ) {}
}

builder.objectType(InvalidBoxInput, {
  name: 'InvalidBoxInput',
  description: 'The input cannot be used (an unknown box, an address or port no box can have, an empty licence key); nothing changed.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof InvalidBoxInput,
  fields: (t) => ({
    problems: t.field({ type: [InputProblem], resolve: (error) => error.problems }),
  }),
});

builder.objectType(LicenseKeyTaken, {
  name: 'LicenseKeyTaken',
  description: 'A box with this licence key exists already (it reported, or was registered); nothing changed.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof LicenseKeyTaken,
  fields: (t) => ({
    licenseKey: t.string({ resolve: (error) => error.box.licenseKey }),
    box: t.field({ type: BoxRef, description: 'The box that has it.', resolve: (error) => error.box }),
  }),
});

builder.objectType(RegisterBoxSuccess, {
  name: 'RegisterBoxSuccess',
  isTypeOf: (value) => value instanceof RegisterBoxSuccess,
  fields: (t) => ({
    box: t.field({ type: BoxRef, resolve: (result) => result.box }),
    restored: t.exposeBoolean('restored', { description: 'The key was a removed box’s: that box is listed again, with its history.' }),
  }),
});

builder.objectType(UpdateBoxSuccess, {
  name: 'UpdateBoxSuccess',
  isTypeOf: (value) => value instanceof UpdateBoxSuccess,
  fields: (t) => ({
    box: t.field({ type: BoxRef, resolve: (result) => result.box }),
  }),
});

builder.objectType(RemoveBoxSuccess, {
  name: 'RemoveBoxSuccess',
  isTypeOf: (value) => value instanceof RemoveBoxSuccess,
  fields: (t) => ({
    removedBoxId: t.id({ description: 'The id the box had.', resolve: (result) => encodeGlobalId('Box', result.boxId) }),
    licenseKey: t.exposeString('licenseKey'),
    historyDeleted: t.exposeBoolean('historyDeleted', {
      description: 'False: the box is hidden and its history kept (registerBox with its key lists it again). True: the box and all its rows are gone.',
    }),
  }),
});

const resolveType = resolveByClass([
  [RegisterBoxSuccess, 'RegisterBoxSuccess'],
  [UpdateBoxSuccess, 'UpdateBoxSuccess'],
  [RemoveBoxSuccess, 'RemoveBoxSuccess'],
  [LicenseKeyTaken, 'LicenseKeyTaken'],
  [InvalidBoxInput, 'InvalidBoxInput'],
]);
const RegisterBoxResult = builder.errorUnion('RegisterBoxResult', { types: [RegisterBoxSuccess, LicenseKeyTaken, InvalidBoxInput], resolveType });
const UpdateBoxResult = builder.errorUnion('UpdateBoxResult', { types: [UpdateBoxSuccess, InvalidBoxInput], resolveType });
const RemoveBoxResult = builder.errorUnion('RemoveBoxResult', { types: [RemoveBoxSuccess, InvalidBoxInput], resolveType });

const unknownBox = (): InvalidBoxInput =>
  new InvalidBoxInput([{ field: 'boxId', message: 'There is no box with this id: it never reported, was never registered, or was removed.' }]);

builder.mutationFields((t) => ({
  registerBox: t.field({
    authScopes: { operator: true },
    type: RegisterBoxResult,
    description:
      'Makes a box known before it reports, with the address and port of its REST API, so configureBox can reach it (e.g. pointBoxAtGateway). It is OFFLINE until its first report. A removed box’s key lists that box again. Without `licenseKey` the gateway issues one (LICENSE_KEY_PREFIX + 4 random digits + the UTC time `yyyyMMddHHmmss`, 24 characters).',
    args: {
      licenseKey: t.arg.string({ description: 'The key the box reports as `mq_license_key` or `dev_sno`. Absent: a new key is issued.' }),
      hardwareSerial: t.arg.string({ description: 'Binds the key to this hardware serial now (the box logs in with it as `device_sn`). Absent: its first login binds one.' }),
      name: t.arg.string(),
      address: t.arg.string({ description: 'Address of its REST API (IP address or host name). Default: the source address of its reports.' }),
      apiPort: t.arg.int({ description: 'Port of its REST API. Default 5555.' }),
    },
    resolve: async (_root, args, context) => {
      const details = { name: args.name ?? null, apiAddress: args.address ?? null, apiPort: args.apiPort ?? null, hardwareSerial: args.hardwareSerial ?? null };
      const problems = validateRegistration({ ...details, ...(args.licenseKey != null ? { licenseKey: args.licenseKey } : {}) });
      const serialProblem = args.hardwareSerial != null ? hardwareSerialProblem(args.hardwareSerial) : undefined;
      if (serialProblem) problems.push({ field: 'hardwareSerial', message: `The hardware serial ${serialProblem}; give it as the box shows it (1 to 128 printable characters).` });
      if (problems.length > 0) throw new InvalidBoxInput(problems);
      let outcome: RegisterOutcome;
      if (args.licenseKey != null) outcome = await registerBox(context.pool, { ...details, licenseKey: args.licenseKey });
      else {
        // A drawn key that is taken (1 in 10,000 within the same second) is drawn again; never a removed box's restored.
        do outcome = await registerBox(context.pool, { ...details, licenseKey: licenseKeyAt(context.config.licenseKeyPrefix, new Date()) }, { mayRestore: false });
        while (outcome.kind === 'taken');
      }
      if (outcome.kind === 'taken') throw new LicenseKeyTaken(outcome.box);
      return new RegisterBoxSuccess(outcome.box, outcome.restored);
    },
  }),
  updateBox: t.field({
    authScopes: { operator: true },
    type: UpdateBoxResult,
    description: 'Changes what the gateway keeps about a box. A field left out stays as it is; null clears it (for `address` and `apiPort`: back to the report address and 5555).',
    args: {
      boxId: t.arg.id({ required: true }),
      name: t.arg.string(),
      address: t.arg.string({ description: 'Address of its REST API (IP address or host name).' }),
      apiPort: t.arg.int({ description: 'Port of its REST API.' }),
    },
    resolve: async (_root, args, context) => {
      const boxId = boxIdFrom(args.boxId);
      const patch: BoxPatch = {};
      if (args.name !== undefined) patch.name = args.name;
      if (args.address !== undefined) patch.apiAddress = args.address;
      if (args.apiPort !== undefined) patch.apiPort = args.apiPort;
      const problems = [...(typeof boxId === 'number' ? [] : [boxId]), ...validateRegistration(patch)];
      if (problems.length > 0 || typeof boxId !== 'number') throw new InvalidBoxInput(problems);
      // After any configureBox in flight for it, which reads the address and port it calls.
      const box = await context.boxCalls.run(boxId, () => updateBox(context.pool, boxId, patch));
      if (!box) throw unknownBox();
      return new UpdateBoxSuccess(box);
    },
  }),
  removeBox: t.field({
    authScopes: { operator: true },
    type: RemoveBoxResult,
    description:
      'Hides a box from every read and stops its offline detection; its history stays (registerBox with its key lists it again). `deleteHistory: true` deletes the box with its devices, status history and config audit trail.',
    args: {
      boxId: t.arg.id({ required: true }),
      deleteHistory: t.arg.boolean({ description: 'Default false.' }),
    },
    resolve: async (_root, args, context) => {
      const boxId = boxIdFrom(args.boxId);
      if (typeof boxId !== 'number') throw new InvalidBoxInput([boxId]);
      const outcome = await context.boxCalls.run(boxId, () => removeBox(context.pool, boxId, args.deleteHistory === true));
      if (outcome.kind === 'not_found') throw unknownBox();
      context.ingestSecretsChanged(); // its ingest secret stops working here at once (other replicas: within seconds)
      return new RemoveBoxSuccess(outcome.boxId, outcome.licenseKey, outcome.historyDeleted);
    },
  }),
}));
