import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import {
  type DocumentNode,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLSchema,
  getNamedType,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValueNode,
} from 'graphql';

/**
 * Abuse guards of the GraphQL endpoint (the body limit MAX_BODY_BYTES applies before these).
 * Each is computed in time linear in the document: a fragment is measured once however often
 * it is spread, so a document whose fragments each spread the next one twice costs no more
 * to check than its text is long.
 */
export const LIMITS = {
  /** fields nested deeper than this are refused (the UI's deepest operation has 7 levels); fragments add no level */
  maxDepth: 10,
  /** estimated result size for a caller with a token: every field counts 1, a connection multiplies its selection by its page size */
  maxCost: 200_000,
  /** the same for an anonymous caller (the UI's pages all need a token; its reads with a page size fit) */
  maxAnonymousCost: 50_000,
  /** largest page of a connection (`first`/`last` above it are capped); also the size when neither is given */
  maxPage: 100,
  /** tokens in a document (the parser stops beyond) */
  maxTokens: 5_000,
  /** aliases in a document (the UI uses none) */
  maxAliases: 30,
  /** directives in a document */
  maxDirectives: 50,
};

/** Reports an armor refusal as a validation error with our message and code (armor's own would abort validation). */
const reportAs =
  (message: string, code: string) => (context: ValidationContext | null, error: GraphQLError) => {
    if (!context) throw error;
    context.reportError(new GraphQLError(message, { extensions: { code } }));
  };

/**
 * Token, depth, alias and directive limits from graphql-armor, checked at parse and validation.
 * Introspection is left to graphql's own MaxIntrospectionDepthRule (in the standard rules), so
 * the standard introspection query passes. Armor's cost limit is off: it does not read page
 * sizes from variables (`first: $n` counts as one row), so `operationCost` below estimates cost.
 */
export const armor = EnvelopArmorPlugin({
  maxTokens: { n: LIMITS.maxTokens },
  maxDepth: {
    n: LIMITS.maxDepth,
    flattenFragments: true,
    ignoreIntrospection: true,
    propagateOnRejection: false,
    onReject: [
      reportAs(`The query is nested too deeply (more than ${LIMITS.maxDepth} levels).`, 'QUERY_TOO_DEEP'),
    ],
  },
  maxAliases: {
    n: LIMITS.maxAliases,
    propagateOnRejection: false,
    onReject: [reportAs(`The query has more than ${LIMITS.maxAliases} aliases.`, 'TOO_MANY_ALIASES')],
  },
  maxDirectives: {
    n: LIMITS.maxDirectives,
    propagateOnRejection: false,
    onReject: [
      reportAs(`The query has more than ${LIMITS.maxDirectives} directives.`, 'TOO_MANY_DIRECTIVES'),
    ],
  },
  costLimit: { enabled: false },
  // introspection is open, so suggestions reveal nothing it does not
  blockFieldSuggestion: { enabled: false },
});

/** The cost budget of a caller: lower without a token. */
export const costBudget = (anonymous: boolean) => (anonymous ? LIMITS.maxAnonymousCost : LIMITS.maxCost);

/** The page size a connection field will return: first/last (variables resolved), capped; maxPage when neither. */
function pageSize(
  args: readonly { name: { value: string }; value: ValueNode }[],
  variables: Record<string, unknown>,
) {
  let size: number | undefined;
  for (const arg of args) {
    if (arg.name.value !== 'first' && arg.name.value !== 'last') continue;
    const v =
      arg.value.kind === Kind.INT
        ? Number(arg.value.value)
        : arg.value.kind === Kind.VARIABLE
          ? variables[arg.value.name.value]
          : undefined;
    if (typeof v === 'number' && Number.isFinite(v)) size = Math.min(size ?? Number.POSITIVE_INFINITY, v);
  }
  return Math.max(0, Math.min(size ?? LIMITS.maxPage, LIMITS.maxPage));
}

type ParentType = ReturnType<typeof getNamedType> | null | undefined;

/**
 * Estimated cost of the operation that will run: each field 1; the selection of a connection
 * (a field whose type is `…Connection`) counts once per row it may return. A fragment's cost
 * depends only on the fragment (its type condition fixes its type), so each is computed once
 * and reused at every spread. A fragment cycle (already a validation error) counts nothing.
 */
export function operationCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown> = {},
): number {
  const fragments = new Map<string, FragmentDefinitionNode>();
  let operation: OperationDefinitionNode | undefined;
  for (const def of document.definitions) {
    if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
    else if (def.kind === Kind.OPERATION_DEFINITION && (!operationName || def.name?.value === operationName))
      operation ??= def;
  }
  if (!operation) return 0;
  const root =
    operation.operation === 'mutation'
      ? schema.getMutationType()
      : operation.operation === 'subscription'
        ? schema.getSubscriptionType()
        : schema.getQueryType();
  const fragmentCosts = new Map<string, number>();
  const fragmentCost = (name: string): number => {
    const known = fragmentCosts.get(name);
    if (known !== undefined) return known;
    const fragment = fragments.get(name);
    if (!fragment) return 0;
    fragmentCosts.set(name, 0);
    const cost = costOf(
      fragment.selectionSet,
      schema.getType(fragment.typeCondition.name.value) as ParentType,
    );
    fragmentCosts.set(name, cost);
    return cost;
  };
  const costOf = (set: SelectionSetNode, parent: ParentType): number => {
    let total = 0;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        const field = parent && isObjectType(parent) ? parent.getFields()[sel.name.value] : undefined;
        const type = field ? getNamedType(field.type) : undefined;
        let cost = 1;
        if (sel.selectionSet) {
          const inner = costOf(sel.selectionSet, type);
          const isConnection = !!type && type.name.endsWith('Connection');
          cost += isConnection ? pageSize(sel.arguments ?? [], variables) * inner : inner;
        }
        total += cost;
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        const type = sel.typeCondition ? schema.getType(sel.typeCondition.name.value) : parent;
        total += costOf(sel.selectionSet, type as ParentType);
      } else {
        total += fragmentCost(sel.name.value);
      }
    }
    return total;
  };
  return costOf(operation.selectionSet, root);
}
