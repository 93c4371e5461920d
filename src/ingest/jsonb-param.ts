/**
 * A jsonb array parameter for the ingest statements, built as bytes: each row's small fields are
 * JSON.stringify'd, and a report body, already UTF-8 JSON text, is copied in as it is. Sending the
 * body as a JSON string instead would escape it here, then unescape and parse it twice in Postgres.
 * The parameter goes in jsonb's binary format (a version byte, 1, then the text), so the statement
 * must cast it: `$1::jsonb`.
 */
export class JsonbRows {
  private readonly parts: Array<string | Buffer> = [];
  /** Bytes the parts can take: at most 3 UTF-8 bytes per UTF-16 unit of a string; version byte and brackets. */
  private bound = 3;
  private rows = 0;

  get length(): number {
    return this.rows;
  }

  /** Adds `fields` as one object; with `json`, that text also becomes its `key` property. */
  add(fields: object, key: string, json: Buffer | null): void {
    const text = JSON.stringify(fields);
    const separator = this.rows++ > 0 ? ',' : '';
    if (!json) {
      this.push(separator + text);
      return;
    }
    this.push(`${separator}${text.slice(0, -1)}${text === '{}' ? '' : ','}${JSON.stringify(key)}:`);
    this.parts.push(json);
    this.bound += json.length;
    this.push('}');
  }

  /** The parameter value: pg sends a Buffer in binary format. */
  toParam(): Buffer {
    const out = Buffer.allocUnsafe(this.bound);
    out[0] = 1; // jsonb binary format version
    out[1] = 0x5b; // [
    let offset = 2;
    for (const part of this.parts) offset += typeof part === 'string' ? out.write(part, offset) : part.copy(out, offset);
    out[offset++] = 0x5d; // ]
    return out.subarray(0, offset);
  }

  private push(text: string): void {
    this.parts.push(text);
    this.bound += 3 * text.length;
  }
}
