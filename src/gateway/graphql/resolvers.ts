import { GraphQLScalarType, Kind } from 'graphql';
import { iso } from '../../domain/urls';
import { mutationResolvers } from './mutation';
import { queryResolvers } from './query';
import {
  eventNode,
  releaseHalt,
  releaseNode,
  releaseNoteNode,
  studyNode,
  syncStudiesMutation,
  taskNode,
  taskServiceNode,
  userNode,
} from './type-resolvers';

const dateTime = () =>
  new GraphQLScalarType({
    name: 'DateTime',
    description: 'An ISO-8601 date and time in UTC',
    serialize: (v) => iso(v as Date | string),
    parseValue: (v) => new Date(String(v)),
    parseLiteral: (ast) => (ast.kind === Kind.STRING ? new Date(ast.value) : null),
  });

/**
 * Resolvers: reads through Drizzle with the visibility rules (reads.ts); writes through the shared
 * services (mutation.ts). One module per root type: query.ts, mutation.ts, type-resolvers.ts.
 */
export function createResolvers() {
  return {
    DateTime: dateTime(),
    Node: {
      __resolveType: (obj: { __typename?: string }) => obj.__typename ?? null,
    },
    ReleaseNode: releaseNode,
    ReleaseHalt: releaseHalt,
    TaskNode: taskNode,
    TaskServiceNode: taskServiceNode,
    EventNode: eventNode,
    StudyNode: studyNode,
    ReleaseNoteNode: releaseNoteNode,
    UserNode: userNode,
    Query: queryResolvers,
    Mutation: mutationResolvers,
    SyncStudiesMutation: syncStudiesMutation,
  };
}
