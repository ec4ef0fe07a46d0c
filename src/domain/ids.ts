const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export type IdPrefix = 'RE' | 'TA' | 'TS' | 'EV' | 'RN';

/** `RE_3G2409A2`: two-letter prefix and 8 random Crockford base32 characters (40 bits). */
export function newKfId(prefix: IdPrefix): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  let out = `${prefix}_`;
  for (const b of bytes) out += CROCKFORD[b & 31];
  return out;
}

/**
 * The kf_id that `seed` stands for, the same on every call and in every process (8 characters of its
 * SHA-256): what two requests carrying one idempotency key both hand out before either is stored.
 * Collides no more often than two random ids.
 */
export async function kfIdFor(prefix: IdPrefix, seed: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(seed)));
  let out = `${prefix}_`;
  for (const b of digest.subarray(0, 8)) out += CROCKFORD[b & 31];
  return out;
}

export const KF_ID_PATTERN = /^[A-Z]{2}_[0-9A-HJKMNP-TV-Z]{8}$/;

export function newMessageId(): string {
  return crypto.randomUUID();
}
