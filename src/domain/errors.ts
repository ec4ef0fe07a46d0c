/**
 * What a request can be refused for, in the product's terms. The rules (gateway features) throw
 * these; each surface maps them to its own answer: REST to an HTTP status and body
 * (docs/api.md, "Errors"), GraphQL to an error with a code.
 */
export class DomainError extends Error {}

export class NotFoundError extends DomainError {
  constructor() {
    super('Not found.');
  }
}

/** The action does not fit the record's state (publish a release that is not staged, ...). */
export class ConflictError extends DomainError {}

/** Bad input: each field with its messages, as the original coordinator answered. */
export class InvalidError extends DomainError {
  constructor(readonly fields: Record<string, string[]>) {
    super(
      Object.entries(fields)
        .map(([field, messages]) => `${field}: ${messages.join(' ')}`)
        .join('; '),
    );
  }
}

/** No usable credentials. */
export class UnauthorizedError extends DomainError {}

/** Credentials, but not the right to do this. */
export class ForbiddenError extends DomainError {}

export const NotFound = () => new NotFoundError();
export const Conflict = (detail: string) => new ConflictError(detail);
export const Invalid = (fields: Record<string, string[]>) => new InvalidError(fields);
export const Unauthorized = (detail: string) => new UnauthorizedError(detail);
export const Forbidden = (detail: string) => new ForbiddenError(detail);

/** The gateway's answers to a caller whose credentials do not do (REST, GraphQL and the dashboard say the same). */
export const AUTH_REFUSALS = {
  noCredentials: 'Authentication credentials were not provided.',
  malformed: 'Authorization header must be "Bearer <token>".',
  unverified: 'Token could not be verified.',
  providerAway: 'The identity provider cannot be reached; retry shortly.',
};
