import { createHash } from 'node:crypto';
import { GraphQLError } from 'graphql';
import { fromGlobalId, toGlobalId } from 'graphql-relay';

export type NodeType =
  | 'ReleaseNode'
  | 'TaskNode'
  | 'TaskServiceNode'
  | 'EventNode'
  | 'StudyNode'
  | 'ReleaseNoteNode'
  | 'UserNode';

/** base64("<TypeName>:<kf_id>"), as graphene-django produced them. */
export const globalId = (type: NodeType, kfId: string) => toGlobalId(type, kfId);

const BARE_ID = /^[A-Z]{2}_[0-9A-Z]{8}$/;

/** A Relay id → its type and kf_id, or undefined when it is not one. */
export function parseGlobalId(id: string): { type: string; kfId: string } | undefined {
  try {
    const { type, id: kfId } = fromGlobalId(id);
    if (/^[A-Za-z]+$/.test(type) && (BARE_ID.test(kfId) || (type === 'UserNode' && kfId)))
      return { type, kfId };
  } catch {
    // not base64
  }
  return undefined;
}

/**
 * The kf_id named by a Relay id of the expected type. A bare kf_id (`RE_3G2409A2`) is accepted
 * too; any other value is a GraphQL error.
 */
export function kfIdOf(id: string, type: NodeType): string {
  const parsed = parseGlobalId(id);
  if (parsed?.type === type) return parsed.kfId;
  if (BARE_ID.test(id)) return id;
  throw new GraphQLError(`Must receive a ${type} id.`, { extensions: { code: 'BAD_USER_INPUT' } });
}

/** RFC 4122 name-based (version 5, SHA-1) UUID of a kf_id under the coordinator's namespace. */
const NAMESPACE = Buffer.from('6f3b2a4e9c1d4f0b8a7e5d2c1b0a9f8e', 'hex');
export function uuidOf(kfId: string): string {
  const hash = createHash('sha1').update(NAMESPACE).update(kfId, 'utf8').digest();
  const b = Buffer.from(hash.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
