import {
  type ASTVisitor,
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

/** Abuse guards of the GraphQL endpoint (the body limit MAX_BODY_BYTES applies before these). */
export const LIMITS = {
  /** fields nested deeper than this are refused (the UI's deepest operation has 7 levels) */
  maxDepth: 10,
  /** the same inside `__schema` / `__type`, so the standard introspection query passes */
  maxIntrospectionDepth: 15,
  /** estimated result size: every field counts 1, a connection multiplies its selection by its page size */
  maxCost: 200_000,
  /** largest page of a connection (`first`/`last` above it are capped); also the size when neither is given */
  maxPage: 100,
  /** tokens in a document (graphql's parser stops beyond) */
  maxTokens: 5_000,
};

const isIntrospection = (name: string) => name === '__schema' || name === '__type';

/** Refuses a document whose selections nest deeper than LIMITS.maxDepth (fragments followed, cycles cut). */
export function depthLimitRule(context: ValidationContext): ASTVisitor {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of context.getDocument().definitions) {
    if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  }
  /** the deepest level under `set`; records the first field past its limit */
  let tooDeep: { depth: number; limit: number } | undefined;
  const depthOf = (
    set: SelectionSetNode,
    depth: number,
    seen: Set<string>,
    introspection: boolean,
  ): number => {
    let deepest = depth;
    for (const sel of set.selections) {
      if (tooDeep) return deepest;
      if (sel.kind === Kind.FIELD) {
        const intro = introspection || isIntrospection(sel.name.value);
        const limit = intro ? LIMITS.maxIntrospectionDepth : LIMITS.maxDepth;
        const d =
          depth + 1 > limit || !sel.selectionSet
            ? depth + 1
            : depthOf(sel.selectionSet, depth + 1, seen, intro);
        if (d > limit) tooDeep ??= { depth: d, limit };
        deepest = Math.max(deepest, d);
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        deepest = Math.max(deepest, depthOf(sel.selectionSet, depth, seen, introspection));
      } else {
        const name = sel.name.value;
        const fragment = fragments.get(name);
        if (!fragment || seen.has(name)) continue;
        deepest = Math.max(
          deepest,
          depthOf(fragment.selectionSet, depth, new Set([...seen, name]), introspection),
        );
      }
    }
    return deepest;
  };
  return {
    OperationDefinition(node) {
      tooDeep = undefined;
      depthOf(node.selectionSet, 0, new Set(), false);
      const found = tooDeep as { depth: number; limit: number } | undefined;
      if (found) {
        context.reportError(
          new GraphQLError(`The query is nested too deeply (more than ${found.limit} levels).`, {
            nodes: [node],
            extensions: { code: 'QUERY_TOO_DEEP' },
          }),
        );
      }
    },
  };
}

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

/**
 * Estimated cost of the operation that will run: each field 1; the selection of a connection
 * (a field whose type is `…Connection`) counts once per row it may return. Fragments are followed
 * (a fragment cycle is already a validation error, and is cut here too).
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
  const costOf = (
    set: SelectionSetNode,
    parent: ReturnType<typeof getNamedType> | null | undefined,
    seen: Set<string>,
  ): number => {
    let total = 0;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        const field = parent && isObjectType(parent) ? parent.getFields()[sel.name.value] : undefined;
        const type = field ? getNamedType(field.type) : undefined;
        let cost = 1;
        if (sel.selectionSet) {
          const inner = costOf(sel.selectionSet, type, seen);
          const isConnection = !!type && type.name.endsWith('Connection');
          cost += isConnection ? pageSize(sel.arguments ?? [], variables) * inner : inner;
        }
        total += cost;
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        const type = sel.typeCondition ? schema.getType(sel.typeCondition.name.value) : parent;
        total += costOf(sel.selectionSet, type as typeof parent, seen);
      } else {
        const fragment = fragments.get(sel.name.value);
        if (!fragment || seen.has(sel.name.value)) continue;
        total += costOf(
          fragment.selectionSet,
          schema.getType(fragment.typeCondition.name.value) as typeof parent,
          new Set([...seen, sel.name.value]),
        );
      }
      if (total > LIMITS.maxCost * 10) return total;
    }
    return total;
  };
  return costOf(operation.selectionSet, root, new Set());
}
