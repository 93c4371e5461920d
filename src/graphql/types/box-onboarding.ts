import { issuedBoxNames, validateIssue } from '../../box-api/registration';
import { hardwareSerialProblem } from '../../models/box-login';
import { rebindBoxHardware } from '../../models/box-hardware';
import type { ConfigChangeRow } from '../../models/box-config';
import type { BoxRow } from '../../models/boxes';
import { MAX_BOXES_PER_ISSUE, registerIssuedBoxes } from '../../models/license-keys';
import { builder } from '../builder';
import { BoxRef } from './box';
import { InvalidBoxInput } from './box-admin';
import { boxIdFrom } from './box-config';
import { BoxConfigChangeRef } from './box-config-change';
import { resolveByClass } from './error';

// Onboarding: the hardware a box's licence key is bound to (its login, src/ingest/login.ts), boxes
// registered in bulk with keys this gateway issues, and an operator's rebind after a box is replaced.

builder.objectFields(BoxRef, (t) => ({
  hardwareSerial: t.exposeString('hardwareSerial', {
    nullable: true,
    description: 'The hardware serial (`device_sn`) its licence key is bound to: by its first login, registerBox or rebindBoxHardware; null until then. Logins with another serial are refused (600002).',
  }),
  hardwareBoundAt: t.expose('hardwareBoundAt', { type: 'DateTime', nullable: true, description: 'When the key was bound to `hardwareSerial`.' }),
  lastLoginAt: t.expose('lastLoginAt', { type: 'DateTime', nullable: true, description: 'When the box last logged in (`/BoxLogin`); null if it never did.' }),
}));

class RegisterBoxesSuccess {
  constructor(readonly boxes: BoxRow[]) {}
}

class RebindBoxHardwareSuccess {
  constructor(
    readonly box: BoxRow,
    readonly change: ConfigChangeRow,
  ) {}
}

builder.objectType(RegisterBoxesSuccess, {
  name: 'RegisterBoxesSuccess',
  isTypeOf: (value) => value instanceof RegisterBoxesSuccess,
  fields: (t) => ({
    boxes: t.field({ type: [BoxRef], description: 'The new boxes in order, each with its issued `licenseKey`.', resolve: (result) => result.boxes }),
  }),
});

builder.objectType(RebindBoxHardwareSuccess, {
  name: 'RebindBoxHardwareSuccess',
  isTypeOf: (value) => value instanceof RebindBoxHardwareSuccess,
  fields: (t) => ({
    box: t.field({ type: BoxRef, resolve: (result) => result.box }),
    change: t.field({ type: BoxConfigChangeRef, description: 'The audit row (action REBIND_HARDWARE, request `{"hardwareSerial": {"from", "to"}}`).', resolve: (result) => result.change }),
  }),
});

const resolveType = resolveByClass([
  [RegisterBoxesSuccess, 'RegisterBoxesSuccess'],
  [RebindBoxHardwareSuccess, 'RebindBoxHardwareSuccess'],
  [InvalidBoxInput, 'InvalidBoxInput'],
]);
const RegisterBoxesResult = builder.errorUnion('RegisterBoxesResult', { types: [RegisterBoxesSuccess, InvalidBoxInput], resolveType });
const RebindBoxHardwareResult = builder.errorUnion('RebindBoxHardwareResult', { types: [RebindBoxHardwareSuccess, InvalidBoxInput], resolveType });

builder.mutationFields((t) => ({
  registerBoxes: t.field({
    authScopes: { operator: true },
    type: RegisterBoxesResult,
    description: `Registers \`count\` boxes (1 to ${MAX_BOXES_PER_ISSUE}) with licence keys this gateway issues, in one transaction: all of them or none. Each is OFFLINE until it reports; its first login binds its hardware serial.`,
    args: {
      count: t.arg.int({ required: true }),
      namePrefix: t.arg.string({ description: 'Names the boxes `<namePrefix>1…<namePrefix>N`, zero-padded (`gate-01`…`gate-12`). Absent: no names.' }),
    },
    resolve: async (_root, args, context) => {
      const problems = validateIssue(args.count, args.namePrefix);
      if (problems.length > 0) throw new InvalidBoxInput(problems);
      const boxes = await registerIssuedBoxes(context.pool, context.config.licenseKeyPrefix, issuedBoxNames(args.count, args.namePrefix).map((name) => ({ name })));
      return new RegisterBoxesSuccess(boxes);
    },
  }),
  rebindBoxHardware: t.field({
    authScopes: { operator: true },
    type: RebindBoxHardwareResult,
    description:
      'Binds a box’s licence key to other hardware (the box was replaced): logins with `hardwareSerial` succeed from now on, with the old serial they are refused (600002). Null unbinds it: the next login binds its serial. Kept in the box’s audit trail (`configChanges`, action REBIND_HARDWARE).',
    args: {
      boxId: t.arg.id({ required: true }),
      hardwareSerial: t.arg.string({ description: 'The new box’s serial (`device_sn`), as it shows it; null or absent: unbound.' }),
    },
    resolve: async (_root, args, context) => {
      const boxId = boxIdFrom(args.boxId);
      const serial = args.hardwareSerial ?? null;
      const problem = serial === null ? undefined : hardwareSerialProblem(serial);
      const problems = [
        ...(typeof boxId === 'number' ? [] : [boxId]),
        ...(problem ? [{ field: 'hardwareSerial', message: `The hardware serial ${problem}; give it as the box shows it (1 to 128 printable characters), or null to unbind.` }] : []),
      ];
      if (problems.length > 0 || typeof boxId !== 'number') throw new InvalidBoxInput(problems);
      const result = await rebindBoxHardware(context.pool, { boxId, hardwareSerial: serial, requestedBy: context.actor });
      if (!result) throw new InvalidBoxInput([{ field: 'boxId', message: 'There is no box with this id: it never reported, was never registered, or was removed.' }]);
      return new RebindBoxHardwareSuccess(result.box, result.change);
    },
  }),
}));
