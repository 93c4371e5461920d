import { z } from 'zod';

// How one environment variable is declared: a zod schema that turns its text into a value, and what
// the operator's manual says about it. src/config.ts lists the variables; the README's table and
// every refusal are written from these declarations, so nothing about a variable is said twice.

/** What the manual (and a refusal) says about one variable. */
export interface VariableDoc {
  /** The environment variable, e.g. `PORT`. */
  env: string;
  /** Its kind of value, e.g. `integer`, `boolean`, `enum`. */
  type: string;
  /** The value it takes when unset, as it would be written in the environment; undefined: none. */
  default: string | undefined;
  /** What unset means, when there is no value to show, e.g. "the embedded Postgres". */
  unsetMeans?: string;
  /** The values allowed, short, for the table: `0–65535`, `open, registered, token`. */
  allowed: string;
  /** The same as a phrase for a refusal: "a whole number from 0 to 65535". */
  expected: string;
  /** What to do about a bad value, when "set one, or unset it" is not enough. */
  fix?: string;
  unit?: string;
  /** One line for the manual. */
  about: string;
  /** Never shown back in a refusal (only its length is). */
  secret?: boolean;
}

/** The documentation of each declared variable, by its schema (src/config.ts reads it back for the manual). */
export const variableDocs = z.registry<VariableDoc>();

/** A variable's value as a refusal may show it: credentials of a URL masked, a secret not at all. */
export function shownValue(doc: Pick<VariableDoc, 'env' | 'secret'>, raw: string): string {
  if (doc.secret) return `${doc.env} (${raw.length} characters, not shown)`;
  return `${doc.env}=${JSON.stringify(maskCredentials(raw))}`;
}

/** `postgres://user:secret@host/db` as `postgres://user:***@host/db`. */
export function maskCredentials(text: string): string {
  return text.replace(/(\/\/[^/@:\s]*):[^/@\s]*@/, '$1:***@');
}

/** One line per bad variable: what was given, what is allowed, what to do. */
function refusal(doc: VariableDoc, raw: string, reason: string | undefined): string {
  const unset = doc.default !== undefined ? `the default ${doc.default}` : (doc.unsetMeans ?? 'no value');
  const fix = doc.fix ?? `set ${doc.type === 'enum' ? 'one of them' : 'one'}, or unset ${doc.env} for ${unset}`;
  return `${shownValue(doc, raw)} is not ${doc.expected}${reason ? ` (${reason})` : ''}; ${fix}.`;
}

/**
 * The schema of one variable: unset or blank gives `fallback()`; anything else must pass `value`, or the
 * variable is refused with a message written from `doc` (custom issues' messages say why).
 */
export function variable<Out, Fallback extends Out | undefined>(doc: VariableDoc, value: z.ZodType<Out, string>, fallback: () => Fallback) {
  const schema = z
    .string()
    .optional()
    .transform((raw, ctx): Out | Fallback => {
      if (raw === undefined || raw.trim() === '') return fallback();
      const result = value.safeParse(raw);
      if (result.success) return result.data;
      const reasons = result.error.issues.filter((issue) => issue.code === 'custom').map((issue) => issue.message.replace(/\.$/, ''));
      ctx.issues.push({ code: 'custom', message: refusal(doc, raw, reasons.join('; ') || undefined), input: raw });
      return z.NEVER;
    });
  variableDocs.add(schema, doc);
  return schema;
}

type About = { env: string; about: string; unit?: string };

/** A whole number from `min` to `max`. */
export function wholeNumber(o: About & { default: number; min: number; max: number }) {
  const value = z
    .string()
    .trim()
    .regex(/^-?\d+$/)
    .transform(Number)
    .pipe(z.int().min(o.min).max(o.max));
  const range = `${o.min}–${o.max}`;
  return variable({ ...o, type: 'integer', default: String(o.default), allowed: range, expected: `a whole number from ${o.min} to ${o.max}` }, value, () => o.default);
}

/** true or false (also 1/0, yes/no, on/off), in any case. */
export function flag(o: About & { default: boolean }) {
  const value = z.stringbool({ truthy: ['true', '1', 'yes', 'on'], falsy: ['false', '0', 'no', 'off'] });
  return variable({ ...o, type: 'boolean', default: String(o.default), allowed: '`true`, `false`', expected: 'true or false' }, value, () => o.default);
}

/** One of `values`, in any case. */
export function oneOf<const Values extends readonly [string, ...string[]]>(o: About & { values: Values; default: Values[number] }) {
  const value = z.string().trim().toLowerCase().pipe(z.enum(o.values));
  const list = o.values.join(', ');
  return variable({ ...o, type: 'enum', default: o.default, allowed: o.values.map((v) => `\`${v}\``).join(', '), expected: `one of ${list}` }, value, () => o.default);
}

/** Text, checked and shaped by `value`; unset gives undefined, which `unsetMeans` explains. */
export function optionalText<Out>(o: About & Pick<VariableDoc, 'type' | 'allowed' | 'expected' | 'fix' | 'secret'> & { unsetMeans: string; value: z.ZodType<Out, string> }) {
  const { value, ...doc } = o;
  return variable({ ...doc, default: undefined }, value, () => undefined);
}

/** Text with a default, checked and shaped by `value` (the default too, when it is used). */
export function text<Out>(o: About & Pick<VariableDoc, 'type' | 'allowed' | 'expected'> & { default: string; value: z.ZodType<Out, string> }) {
  const { value, ...doc } = o;
  return variable(doc, value, () => value.parse(o.default));
}
