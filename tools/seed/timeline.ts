// The seed's timelines as SQL expressions. A timeline of `changes` changes from `first` to `end` puts
// its k-th change (k >= 1) at a random point of the k-th of `changes + 1` equal strata, so changes are
// in order by construction and any one of them, or the state at any instant, is computed without
// the others: the history is generated a day at a time, in time order, with no staging table.

/**
 * Every "random" choice is a hash of the row's number and a salt: parallel-safe, and the same seed
 * gives the same fleet. rnd(n, salt) is uniform in [0, 1); hash(n, salt) is 64 random bits.
 */
export const RANDOM_FUNCTION = `
  create or replace function pg_temp.rnd(n bigint, salt int) returns float8
  language sql immutable parallel safe as
  $$ select (hashint8extended(n, salt::int8 + $SEED) & 2147483647)::float8 / 2147483648 $$;
  create or replace function pg_temp.hash(n bigint, salt int) returns bigint
  language sql immutable parallel safe as
  $$ select hashint8extended(n, salt::int8 + $SEED) $$`;

/** Salt of the random offset of a change within its stratum. */
const CHANGE_SALT = 7;

/** The k-th change (k >= 1) of a timeline; `key` makes its random offset (unique per timeline and k). */
export const changeAt = (first: string, end: string, changes: string, k: string, key: string) =>
  `${first} + (${end} - ${first}) * ((${k} + pg_temp.rnd(${key}, ${CHANGE_SALT})) / (${changes} + 1))`;

/** Where instant `t` falls on a timeline, in strata: change k happens within [k, k + 1). */
const position = (first: string, end: string, changes: string, t: string) =>
  `(extract(epoch from ${t} - ${first}) / greatest(extract(epoch from ${end} - ${first}), 0.001) * (${changes} + 1))`;

/**
 * `generate_series` of the change numbers (0 = the first sighting, at `first`) that can fall in
 * [from, to): a few more than do, so the caller still filters on the instant.
 */
export const changesBetween = (first: string, end: string, changes: string, from: string, to: string) =>
  `generate_series(greatest(0, floor(${position(first, end, changes, from)})::int - 1),
                   least(${changes}, ceil(${position(first, end, changes, to)})::int))`;

/**
 * How many of the timeline's changes happened by instant `t` (0 before the first). `keyOf(k)` is the
 * key changeAt was given for change k.
 */
export function changesDoneBy(first: string, end: string, changes: string, t: string, keyOf: (k: string) => string): string {
  const k = `floor(${position(first, end, changes, t)})::int`;
  // Every change before stratum k is done; the one in it is when its offset is below t's.
  return `(case when ${t} < ${first} or ${changes} = 0 then 0
     else least(${changes}, greatest(0, ${k} - 1)
       + case when ${k} between 1 and ${changes}
                   and pg_temp.rnd(${keyOf(k)}, ${CHANGE_SALT}) <= ${position(first, end, changes, t)} - ${k} then 1 else 0 end) end)`;
}
