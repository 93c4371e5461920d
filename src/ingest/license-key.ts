/**
 * A licence key as logs and error messages show it: the first 4 and last 2 characters (`ABCD…YZ`).
 * Licence keys identify paid boxes and, under INGEST_POLICY=open, are all a report needs; they are
 * never written out in full.
 */
export function maskLicenseKey(key: string): string {
  if (key.length <= 6) return '…';
  return `${key.slice(0, 4)}…${key.slice(-2)}`;
}

/** The report field a licence key came from, for error paths. */
export function licenseKeyField(format: 'new' | 'old'): string {
  return format === 'new' ? 'mq_license_key' : 'dev_sno';
}
