/** A report the gateway refuses, answered as `{"error": {"code", "message", "path"}}`. */
export class ReportError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The offending field, e.g. `media_devices[2].media_device_id`; null for the body as a whole. */
    readonly path: string | null = null,
  ) {
    super(message);
  }

  toJSON() {
    return { error: { code: this.code, message: this.message, path: this.path } };
  }
}

/** Something odd in an accepted report, listed in the 200 answer's `warnings`. */
export interface ReportWarning {
  code: string;
  message: string;
  path: string;
}
