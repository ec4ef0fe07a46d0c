import { GraphQLError } from 'graphql';
import { createSchema, createYoga, maskError, type Plugin } from 'graphql-yoga';
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { DomainError } from '../../domain/errors';
import { isUnavailable } from '../../infra/errors';
import type { AppEnv } from '../http/auth';
import type { GatewayDeps } from '../http/context';
import { ApiError, apiErrorOf } from '../http/errors';
import { withStorableArguments } from './arguments';
import { createLoaders, fromApiError, type GqlContext, viewerOf } from './context';
import { armor, costBudget, operationCost } from './limits';
import { createResolvers } from './resolvers';
import { typeDefs } from './typedefs';

export const schema = withStorableArguments(
  createSchema<GqlContext>({ typeDefs, resolvers: createResolvers() }),
);

/** The cost limit, with the variables and the caller's budget, before execution (armor checked the rest). */
const costLimit: Plugin<GqlContext> = {
  onExecute({ args, setResultAndStopExecution }) {
    const anonymous = !args.contextValue.viewer.principal;
    const budget = costBudget(anonymous);
    const cost = operationCost(
      args.schema,
      args.document,
      args.operationName,
      (args.variableValues ?? {}) as Record<string, unknown>,
    );
    if (cost > budget) {
      setResultAndStopExecution({
        errors: [
          new GraphQLError(
            `The query is too expensive (estimated ${cost}, at most ${budget}${anonymous ? ' without a token' : ''}): ask for fewer rows (first/last) or fewer nested lists.`,
            { extensions: { code: 'QUERY_TOO_EXPENSIVE' } },
          ),
        ],
      });
    }
  },
};

/**
 * POST/GET /graphql: the schema of the original coordinator for its web UI (graphql-yoga).
 * Mounted before the gateway's `authenticate`: the token is read here, `Bearer null` is
 * anonymous, and auth and permission problems are GraphQL errors in a 200.
 */
export function graphqlRoutes(deps: GatewayDeps) {
  const yoga = createYoga<
    { deps: GatewayDeps; viewer: GqlContext['viewer']; loaders: GqlContext['loaders'] },
    GqlContext
  >({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    // GraphiQL loads its assets from a CDN: off (the gateway serves nothing from one)
    graphiql: false,
    cors: false,
    batching: false,
    plugins: [armor, costLimit],
    logging: {
      debug: (...a: unknown[]) => deps.log.debug({ graphql: a.map(String) }, 'graphql'),
      info: (...a: unknown[]) => deps.log.debug({ graphql: a.map(String) }, 'graphql'),
      warn: (...a: unknown[]) => deps.log.warn({ graphql: a.map(String) }, 'graphql'),
      error: (...a: unknown[]) => deps.log.error({ graphql: a.map(String) }, 'graphql'),
    },
    maskedErrors: {
      // the services' ApiErrors become their message; anything unexpected is logged and masked
      maskError(error, message, isDev) {
        const original = error instanceof GraphQLError ? error.originalError : error;
        if (original instanceof DomainError) return fromApiError(apiErrorOf(original), error as GraphQLError);
        if (original instanceof ApiError) return fromApiError(original, error as GraphQLError);
        if (original && isUnavailable(original)) {
          return new GraphQLError('Service temporarily unavailable; retry shortly.', {
            path: error instanceof GraphQLError ? error.path : undefined,
            extensions: { code: 'SERVICE_UNAVAILABLE' },
          });
        }
        if (
          error instanceof GraphQLError &&
          (!error.originalError || error.originalError instanceof GraphQLError)
        )
          return error;
        deps.log.error({ err: original }, 'graphql resolver failed');
        return maskError(error, message, isDev);
      },
      errorMessage: 'Internal server error.',
    },
  });

  return new Hono<AppEnv>().on(['GET', 'POST'], '/', async (c) => {
    const viewer = await viewerOf(c.req.header('authorization'), deps.auth);
    const res = await yoga.fetch(c.req.raw, { deps, viewer, loaders: createLoaders(deps.db) });
    // yoga answers some protocol errors (e.g. 415) with an empty body: keep errors JSON, in GraphQL's shape
    if (res.status >= 400 && !res.headers.get('content-type')?.includes('json')) {
      const reason =
        res.status === 415
          ? 'Send application/json (or application/graphql).'
          : res.statusText || 'Bad request.';
      return c.json(
        { errors: [{ message: reason, extensions: { code: 'BAD_REQUEST' } }] },
        res.status as 400,
      );
    }
    return res;
  });
}

/** CORS for /graphql: the UI sends credentials, so only configured origins are echoed (never `*`). */
export function graphqlCors(origins: string[]) {
  const allowed = new Set(origins);
  return cors({
    origin: (origin) => (allowed.has(origin) ? origin : null),
    credentials: true,
    allowMethods: ['GET', 'POST', 'OPTIONS'],
    maxAge: 600,
  });
}
