import { asc } from 'drizzle-orm';
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  importPKCS8,
  type CryptoKey as JoseKey,
  type JWK,
} from 'jose';
import type { Db } from '../db/client';
import { signingKeys } from '../db/schema';

export type SigningAlg = 'ES256' | 'RS256';

export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  privateKey: JoseKey | Uint8Array;
  publicJwk: JWK;
}

/**
 * The coordinator's signing key: SIGNING_KEY when configured (a private JWK as JSON, or a
 * PKCS#8 PEM), else the one kept in Postgres, generated (ES256) by the first process that needs it.
 */
export async function loadSigningKey(db: Db, configured?: string): Promise<SigningKey> {
  if (configured) return fromConfigured(configured);
  const stored = await firstStored(db);
  if (stored) return stored;
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  await db
    .insert(signingKeys)
    .values({ kid, alg: 'ES256', privateJwk: await exportJWK(privateKey), publicJwk })
    .onConflictDoNothing();
  // another process may have won the race: everyone uses the oldest key
  return (await firstStored(db))!;
}

async function firstStored(db: Db): Promise<SigningKey | undefined> {
  const [row] = await db.select().from(signingKeys).orderBy(asc(signingKeys.createdAt)).limit(1);
  if (!row) return undefined;
  const alg = row.alg as SigningAlg;
  return {
    kid: row.kid,
    alg,
    privateKey: await importJWK(row.privateJwk as JWK, alg),
    publicJwk: row.publicJwk as JWK,
  };
}

async function fromConfigured(value: string): Promise<SigningKey> {
  const trimmed = value.trim();
  if (trimmed.startsWith('{')) {
    const jwk = JSON.parse(trimmed) as JWK;
    if (!jwk.d) throw new Error('SIGNING_KEY is a public key; it must be a private JWK (with "d")');
    const alg: SigningAlg = jwk.kty === 'RSA' ? 'RS256' : 'ES256';
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = jwk;
    const kid = jwk.kid ?? (await calculateJwkThumbprint(publicJwk));
    return {
      kid,
      alg,
      privateKey: await importJWK(jwk, alg),
      publicJwk: { ...publicJwk, kid, alg, use: 'sig' },
    };
  }
  for (const alg of ['ES256', 'RS256'] as const) {
    try {
      const privateKey = await importPKCS8(trimmed, alg, { extractable: true });
      const full = await exportJWK(privateKey);
      const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = full;
      const kid = await calculateJwkThumbprint(publicJwk);
      return { kid, alg, privateKey, publicJwk: { ...publicJwk, kid, alg, use: 'sig' } };
    } catch {
      // try the next algorithm
    }
  }
  throw new Error('SIGNING_KEY is neither a private JWK nor a PKCS#8 PEM (EC P-256 or RSA)');
}

export function publicJwks(key: SigningKey): { keys: JWK[] } {
  return { keys: [{ ...key.publicJwk, kid: key.kid, alg: key.alg, use: 'sig' }] };
}
