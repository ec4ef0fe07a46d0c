import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { LOCAL_AUDIENCE, LOCAL_ISSUER } from '../../src/infra/auth';

/** A signing key for SIGNING_KEY, and a way to mint tokens the coordinator (in local mode) accepts. */
export async function localSigningKey() {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk: JWK = { ...(await exportJWK(privateKey)), kid };
  const mint = (p: { username: string; roles: string[]; groups?: string[]; service?: boolean }) =>
    new SignJWT({
      preferred_username: p.username,
      'https://kidsfirstdrc.org/roles': p.roles,
      'https://kidsfirstdrc.org/groups': p.groups ?? [],
      ...(p.service ? { gty: 'client-credentials' } : {}),
    })
      .setProtectedHeader({ alg: 'ES256', kid })
      .setIssuer(LOCAL_ISSUER)
      .setAudience(LOCAL_AUDIENCE)
      .setSubject(p.username)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(privateKey);
  return { signingKey: JSON.stringify(privateJwk), mint };
}
