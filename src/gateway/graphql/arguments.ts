import { defaultFieldResolver, type GraphQLSchema, isObjectType } from 'graphql';
import { isStorableText, UNSTORABLE_TEXT } from '../http/validation';
import { gqlError } from './context';

/** The path of the first string in `value` (an argument, input object or list) REST would refuse. */
function unstorableAt(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return isStorableText(value) ? undefined : path;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, inner] of Object.entries(value)) {
    const at = unstorableAt(inner, `${path}.${key}`);
    if (at) return at;
  }
  return undefined;
}

/**
 * Every field of a query that takes arguments checks them first, with the rule of REST's
 * `storableText`: a string Postgres cannot store or compare exactly as sent (a NUL, an unpaired
 * surrogate) is a BAD_USER_INPUT error naming the argument (`extensions.argument`, and `fields`
 * as a REST 400 would), before anything is read. Filters included: Postgres refuses a NUL even in
 * a WHERE clause, which would otherwise be an internal error. Mutations are left to their own
 * check (the REST body schemas, whose storableText names the field as REST does).
 */
export function withStorableArguments<S extends GraphQLSchema>(schema: S): S {
  const mutation = schema.getMutationType();
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__') || type === mutation) continue;
    for (const field of Object.values(type.getFields())) {
      if (field.args.length === 0) continue;
      const resolve = field.resolve ?? defaultFieldResolver;
      field.resolve = (parent, args: Record<string, unknown>, context, info) => {
        for (const [name, value] of Object.entries(args)) {
          const at = unstorableAt(value, name);
          if (at) {
            throw gqlError(`Argument "${at}": ${UNSTORABLE_TEXT}`, 'BAD_USER_INPUT', {
              argument: at,
              fields: { [at]: [UNSTORABLE_TEXT] },
            });
          }
        }
        return resolve(parent, args, context, info);
      };
    }
  }
  return schema;
}
