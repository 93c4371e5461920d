/**
 * A `text[]` parameter built from UTF-8 bytes, in Postgres's binary array format, for the report
 * bodies of an ingest statement: each body is copied in as it is, where the text format would escape
 * every quote here and unescape it in Postgres. pg sends a Buffer in binary format, so the statement
 * must name the type: `$n::text[]`. Postgres checks each element is valid UTF-8, as for any text.
 */
export class TextArrayParam {
  private readonly items: Buffer[] = [];
  private bytes = 0;

  /** Appends `utf8` and returns its (1-based) subscript in the array. */
  add(utf8: Buffer): number {
    this.items.push(utf8);
    this.bytes += utf8.length;
    return this.items.length;
  }

  toParam(): Buffer {
    const n = this.items.length;
    // ndim, has-nulls flag, element type; then, for one dimension, its length and lower bound.
    const header = n === 0 ? 12 : 20;
    const out = Buffer.allocUnsafe(header + 4 * n + this.bytes);
    out.writeInt32BE(n === 0 ? 0 : 1, 0);
    out.writeInt32BE(0, 4);
    out.writeUInt32BE(TEXT_OID, 8);
    let offset = 12;
    if (n > 0) {
      out.writeInt32BE(n, 12);
      out.writeInt32BE(1, 16);
      offset = 20;
    }
    for (const item of this.items) {
      out.writeInt32BE(item.length, offset);
      offset += 4 + item.copy(out, offset + 4);
    }
    return out;
  }
}

const TEXT_OID = 25;
