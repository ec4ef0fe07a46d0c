const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export type IdPrefix = 'RE' | 'TA' | 'TS' | 'EV' | 'RN';

/** `RE_3G2409A2`: two-letter prefix and 8 random Crockford base32 characters (40 bits). */
export function newKfId(prefix: IdPrefix): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  let out = `${prefix}_`;
  for (const b of bytes) out += CROCKFORD[b & 31];
  return out;
}

export const KF_ID_PATTERN = /^[A-Z]{2}_[0-9A-HJKMNP-TV-Z]{8}$/;

export function newMessageId(): string {
  return crypto.randomUUID();
}
