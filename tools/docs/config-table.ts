import { configVariables } from '../../src/config';

// The README's configuration table, written from the variables' declarations in src/config.ts:
// `npm run docs:config` puts it between the markers, and test/config/readme-table.test.ts fails when
// the README holds another.

export const TABLE_START = '<!-- config-table:start -->';
export const TABLE_END = '<!-- config-table:end -->';

const cell = (text: string) => text.replace(/\|/g, '\\|');
const code = (text: string) => `\`${text}\``;

/** The configuration table in Markdown, one row per variable, in declaration order. */
export function renderConfigTable(): string {
  const rows = configVariables().map((doc) =>
    [
      code(doc.env),
      doc.type,
      doc.default === undefined ? `unset: ${doc.unsetMeans}` : code(doc.default),
      doc.allowed,
      doc.unit ?? '',
      doc.about,
    ].map(cell),
  );
  return [
    '| variable | type | default | allowed | unit | what |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

/** `readme` with the text between the markers replaced by the current table; throws without markers. */
export function withConfigTable(readme: string): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start === -1 || end < start) throw new Error(`README.md has no ${TABLE_START} ... ${TABLE_END} markers around its configuration table.`);
  return `${readme.slice(0, start + TABLE_START.length)}\n${renderConfigTable()}\n${readme.slice(end)}`;
}
