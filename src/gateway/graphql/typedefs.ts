/**
 * The schema the Kids First release UI (kf-ui-release-coordinator) was written against: Relay
 * style as graphene-django produced it (docs/api.md#graphql). Argument names and types
 * must stay exactly as they are: the UI's operations are validated against them.
 */
const PAGING = 'offset: Int, before: String, after: String, first: Int, last: Int';

const connection = (node: string) => `
"""A page of ${node}s (Relay connection)."""
type ${node}Connection {
  pageInfo: PageInfo!
  edges: [${node}Edge]!
  """every ${node} matching the filters, not only this page"""
  totalCount: Int
}
type ${node}Edge {
  node: ${node}
  cursor: String!
}`;

export const typeDefs = /* GraphQL */ `
"""An ISO-8601 date and time in UTC, e.g. 2026-11-23T15:40:02.114Z"""
scalar DateTime

"""An object with a Relay global id: base64 of "<TypeName>:<kf_id>"."""
interface Node {
  id: ID!
}

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

"""A release of a set of studies across every enabled task service."""
type ReleaseNode implements Node {
  id: ID!
  kfId: String!
  """a stable UUID derived from the kf_id (version 5)"""
  uuid: String!
  author: String!
  name: String!
  description: String!
  """waiting, initializing, running, staged, publishing, published, canceling, canceled, failed"""
  state: String!
  tags: [String]!
  version: String!
  isMajor: Boolean!
  createdAt: DateTime!
  """why the release halted (null unless it was canceled or failed)"""
  halt: ReleaseHalt
  """who asked to publish it, and when it became published"""
  publishedBy: String
  publishedAt: DateTime
  studies(${PAGING}, kfId: String, orderBy: String): StudyNodeConnection
  tasks(${PAGING}, state: String, orderBy: String): TaskNodeConnection
  notes(${PAGING}, orderBy: String): ReleaseNoteNodeConnection
  events(${PAGING}, eventType: String, orderBy: String): EventNodeConnection
}

"""What halted a release: the reason, the task and service that did (if one did), the message, who canceled it."""
type ReleaseHalt {
  """failed or canceled"""
  reason: String!
  task: TaskNode
  taskService: TaskServiceNode
  serviceName: String
  message: String!
  canceledBy: String
  at: DateTime
}

"""The work of one task service for one release."""
type TaskNode implements Node {
  id: ID!
  kfId: String!
  uuid: String!
  """waiting, initialized, running, staged, publishing, published, rejected, failed, canceled"""
  state: String!
  progress: Float
  release: ReleaseNode
  taskService: TaskServiceNode
  createdAt: DateTime!
  events(${PAGING}, eventType: String, orderBy: String): EventNodeConnection
}

type TaskServiceNode implements Node {
  id: ID!
  kfId: String!
  uuid: String!
  name: String!
  description: String!
  url: String!
  author: String!
  """consecutive failed health checks"""
  lastOkStatus: Int!
  """ok or down"""
  healthStatus: String!
  enabled: Boolean!
  createdAt: DateTime!
  tasks(${PAGING}, state: String, orderBy: String): TaskNodeConnection
  events(${PAGING}, eventType: String, orderBy: String): EventNodeConnection
}

type EventNode implements Node {
  id: ID!
  kfId: String!
  uuid: String!
  """info, warning or error"""
  eventType: String!
  message: String!
  createdAt: DateTime!
  release: ReleaseNode
  task: TaskNode
  taskService: TaskServiceNode
}

type StudyNode implements Node {
  id: ID!
  kfId: String!
  name: String!
  visible: Boolean!
  deleted: Boolean!
  createdAt: DateTime!
  releases(${PAGING}, state: String, orderBy: String): ReleaseNodeConnection
  notes(${PAGING}, orderBy: String): ReleaseNoteNodeConnection
}

type ReleaseNoteNode implements Node {
  id: ID!
  kfId: String!
  uuid: String!
  author: String!
  description: String!
  createdAt: DateTime!
  release: ReleaseNode
  study: StudyNode
}

"""The caller, as read from their token."""
type UserNode implements Node {
  id: ID!
  username: String!
  email: String
  roles: [String]!
  groups: [String]!
  picture: String
  slackNotify: Boolean!
  slackMemberId: String
  firstName: String
  lastName: String
}

type StatusType {
  name: String!
  version: String!
  commit: String!
}

${connection('ReleaseNode')}
${connection('TaskNode')}
${connection('TaskServiceNode')}
${connection('EventNode')}
${connection('StudyNode')}
${connection('ReleaseNoteNode')}

type Query {
  """any node by its Relay id"""
  node(id: ID!): Node
  release(id: ID!): ReleaseNode
  task(id: ID!): TaskNode
  taskService(id: ID!): TaskServiceNode
  event(id: ID!): EventNode
  study(id: ID!): StudyNode
  releaseNote(id: ID!): ReleaseNoteNode
  """ADMIN and DEV see every release; others published ones only"""
  allReleases(
    ${PAGING}
    state: String
    name: String
    nameContains: String
    author: String
    version: String
    isMajor: Boolean
    orderBy: String
  ): ReleaseNodeConnection
  """release and taskService are plain kf_ids. ADMIN and DEV see every task; others those of published releases"""
  allTasks(${PAGING}, release: String, taskService: String, state: String, kfId: String, orderBy: String): TaskNodeConnection
  """ADMIN and DEV only"""
  allTaskServices(
    ${PAGING}
    name: String
    nameContains: String
    url: String
    author: String
    enabled: Boolean
    orderBy: String
  ): TaskServiceNodeConnection
  """release, taskService and task are Relay ids. ADMIN and DEV see every event; others those of published releases"""
  allEvents(
    ${PAGING}
    release: ID
    taskService: ID
    task: ID
    eventType: String
    messageContains: String
    orderBy: String
  ): EventNodeConnection
  """release and study are Relay ids. ADMIN and DEV see every note; others those of published releases"""
  allReleaseNotes(${PAGING}, release: ID, study: ID, author: String, orderBy: String): ReleaseNoteNodeConnection
  """ADMIN and DEV see every study; others visible, not deleted ones"""
  allStudies(${PAGING}, kfId: String, visible: Boolean, deleted: Boolean, nameContains: String, orderBy: String): StudyNodeConnection
  """the caller; an error when anonymous"""
  myProfile: UserNode
  status: StatusType
}

input ReleaseInput {
  name: String!
  description: String
  isMajor: Boolean
  """Relay ids (or kf_ids) of the studies"""
  studies: [ID]!
  tags: [String]
}
input UpdateReleaseInput {
  name: String
  description: String
}
input TaskServiceInput {
  name: String!
  description: String
  url: String!
  enabled: Boolean
}
input ReleaseNoteInput {
  description: String!
  study: ID!
  release: ID!
}
input UpdateReleaseNoteInput {
  description: String!
}

type StartReleaseMutation {
  release: ReleaseNode
}
type UpdateReleaseMutation {
  release: ReleaseNode
}
type CancelReleaseMutation {
  release: ReleaseNode
}
type PublishReleaseMutation {
  release: ReleaseNode
}
type CreateTaskServiceMutation {
  taskService: TaskServiceNode
}
type UpdateTaskServiceMutation {
  taskService: TaskServiceNode
}
type SyncStudiesMutation {
  new(${PAGING}, orderBy: String): StudyNodeConnection
  deleted(${PAGING}, orderBy: String): StudyNodeConnection
}
type CreateReleaseNoteMutation {
  releaseNote: ReleaseNoteNode
}
type UpdateReleaseNoteMutation {
  releaseNote: ReleaseNoteNode
}
type RemoveReleaseNoteMutation {
  success: Boolean
}

"""ADMIN or DEV unless noted; the same rules and code paths as the REST API."""
type Mutation {
  """author = the caller's username"""
  startRelease(input: ReleaseInput!): StartReleaseMutation
  updateRelease(release: ID!, input: UpdateReleaseInput!): UpdateReleaseMutation
  cancelRelease(release: ID!): CancelReleaseMutation
  """ADMIN only; the release must be staged"""
  publishRelease(release: ID!): PublishReleaseMutation
  """the URL is checked live with GET {url}/status"""
  createTaskService(input: TaskServiceInput!): CreateTaskServiceMutation
  updateTaskService(taskService: ID!, input: TaskServiceInput!): UpdateTaskServiceMutation
  syncStudies: SyncStudiesMutation
  """the study must be in the release"""
  createReleaseNote(input: ReleaseNoteInput!): CreateReleaseNoteMutation
  updateReleaseNote(releaseNote: ID!, input: UpdateReleaseNoteInput!): UpdateReleaseNoteMutation
  removeReleaseNote(releaseNote: ID!): RemoveReleaseNoteMutation
}
`;
