import type { JWTPayload } from 'jose';

export type Role = 'ADMIN' | 'DEV' | 'USER';

/** Who is calling, as read from a verified token. */
export interface Principal {
  subject: string;
  username: string;
  roles: string[];
  groups: string[];
  /** a machine client (client-credentials token): may act as a task service for callbacks */
  service: boolean;
}

export interface ClaimPaths {
  roles: string;
  groups: string;
  username: string;
}

/** Reads a claim by its exact name first (Kids First claims are URLs with dots), then as a dot path. */
export function claim(payload: Record<string, unknown>, path: string): unknown {
  if (path in payload) return payload[path];
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

const strings = (v: unknown): string[] =>
  Array.isArray(v)
    ? v.filter((x): x is string => typeof x === 'string')
    : typeof v === 'string'
      ? v.split(/[\s,]+/).filter(Boolean)
      : [];

export function principalFrom(payload: JWTPayload, paths: ClaimPaths): Principal {
  const p = payload as Record<string, unknown>;
  // ego puts everything under context.user; client tokens under context.application
  const roles = [
    ...strings(claim(p, paths.roles)),
    ...strings(claim(p, 'context.user.roles')),
    ...strings(claim(p, 'roles')),
  ];
  const groups = [...strings(claim(p, paths.groups)), ...strings(claim(p, 'context.user.groups'))];
  const username =
    [
      claim(p, paths.username),
      claim(p, 'context.user.name'),
      claim(p, 'email'),
      claim(p, 'context.user.email'),
      p.sub,
    ].find((v): v is string => typeof v === 'string' && v.length > 0) ?? 'unknown';
  const service =
    p.gty === 'client-credentials' ||
    claim(p, 'context.application') !== undefined ||
    roles.some((r) => r.toUpperCase() === 'SERVICE');
  return {
    subject: typeof p.sub === 'string' ? p.sub : username,
    username,
    roles: [...new Set(roles.map((r) => r.toUpperCase()))],
    groups: [...new Set(groups)],
    service,
  };
}

export function hasRole(p: Principal | null | undefined, ...roles: Role[]): boolean {
  return !!p && roles.some((r) => p.roles.includes(r));
}
