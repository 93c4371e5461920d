import { sql, type SQL } from '../db/sql';
import { CREDENTIAL_RULES } from '../redaction/url-credentials';

/**
 * `expr` with URL credentials masked, in Postgres: the same rules as redactUrlCredentials (both
 * languages read the patterns alike), so a role below operator searches and sorts by what it is shown.
 */
export function redactedSql(expr: SQL): SQL {
  let result = expr;
  for (const { pattern, replacement } of CREDENTIAL_RULES) {
    result = sql`regexp_replace(${result}, ${sql.raw(`'${pattern.replace(/'/g, "''")}'`)}, ${sql.raw(`'${replacement.replace(/\$1/g, '\\1')}'`)}, 'gi')`;
  }
  return result;
}
