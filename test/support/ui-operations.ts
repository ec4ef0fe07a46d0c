/**
 * The operations of the Kids First release UI (kf-ui-release-coordinator, src/queries.js and
 * src/mutations.js), written out exactly as the UI sends them (spec: shared/spec/graphql.md).
 * Apollo adds `__typename` to every selection; `withTypename` does the same here.
 */

export const GET_RELEASE = `
  query GetRelease($id: ID!) {
    release(id: $id) {
      id
      author
      kfId
      version
      name
      state
      createdAt
      isMajor
      description
      studies {
        edges {
          node {
            id
            kfId
            name
            createdAt
          }
        }
      }
      notes {
        edges {
          node {
            id
            description
          }
        }
      }
    }
  }
`;

export const ALL_RELEASES = `
  query AllReleases($first: Int, $state: String) {
    allReleases(first: $first, state: $state, orderBy: "-created_at") {
      edges {
        node {
          id
          kfId
          version
          name
          state
          createdAt
          isMajor
          description
          author
          studies {
            edges {
              node {
                id
                kfId
                name
                createdAt
              }
            }
          }
          notes {
            edges {
              node {
                id
                description
                study {
                  id
                }
              }
            }
          }
        }
      }
    }
  }
`;

export const ALL_STUDIES = `
  query AllStudies($first: Int) {
    allStudies(first: $first, orderBy: "-created_at") {
      edges {
        node {
          id
          kfId
          name
          createdAt
          visible
          deleted
          releases(state: "published", first: 1, orderBy: "-created_at") {
            edges {
              node {
                id
                kfId
                version
              }
            }
          }
        }
      }
    }
  }
`;

export const GET_STUDY = `
  query GetStudy($id: ID!) {
    study(id: $id) {
      id
      kfId
      name
      createdAt
      visible
      deleted
      releases(orderBy: "-created_at") {
        edges {
          node {
            id
            kfId
            name
            description
            createdAt
            version
          }
        }
      }
    }
  }
`;

export const ALL_NOTES = `
  query AllNotes($release: ID) {
    allReleaseNotes(release: $release) {
      edges {
        node {
          id
          kfId
          description
          createdAt
          study {
            id
          }
        }
      }
    }
  }
`;

export const ALL_EVENTS = `
  query AllEvents($release: ID, $first: Int, $taskService: ID) {
    allEvents(
      release: $release
      taskService: $taskService
      orderBy: "-created_at"
      first: $first
    ) {
      edges {
        node {
          id
          createdAt
          message
          release {
            id
            kfId
            name
          }
          taskService {
            id
            kfId
            name
          }
          task {
            id
            kfId
          }
        }
      }
    }
  }
`;

export const ALL_SERVICES = `
  query AllServices {
    allTaskServices {
      edges {
        node {
          id
          kfId
          name
          description
          enabled
          url
          author
          healthStatus
        }
      }
    }
  }
`;

export const GET_SERVICE = `
  query GetService($id: ID!) {
    taskService(id: $id) {
      id
      author
      kfId
      name
      createdAt
      description
      healthStatus
      enabled
      url
    }
  }
`;

export const ALL_TASKS = `
  query AllTasks($first: Int, $release: String) {
    allTasks(first: $first, release: $release) {
      edges {
        node {
          id
          kfId
          state
          createdAt
          taskService {
            id
            name
          }
        }
      }
    }
  }
`;

export const MY_PROFILE = `
  query profile {
    myProfile {
      id
      username
      email
      roles
      groups
      picture
      slackNotify
      slackMemberId
      firstName
      lastName
    }
  }
`;

export const STATUS = `
  query Status {
    status {
      name
      version
      commit
    }
  }
`;

const RELEASE_SELECTION = `
      release {
        id
        kfId
        version
        name
        state
        createdAt
        isMajor
        description
        studies {
          edges {
            node {
              id
              kfId
              name
            }
          }
        }
        notes {
          edges {
            node {
              id
              description
            }
          }
        }
      }`;

export const START_RELEASE = `
  mutation StartRelease($input: ReleaseInput!) {
    startRelease(input: $input) {${RELEASE_SELECTION}
    }
  }
`;

export const PUBLISH_RELEASE = `
  mutation PublishRelease($release: ID!) {
    publishRelease(release: $release) {${RELEASE_SELECTION}
    }
  }
`;

export const CANCEL_RELEASE = `
  mutation CancelRelease($release: ID!) {
    cancelRelease(release: $release) {${RELEASE_SELECTION}
    }
  }
`;

export const UPDATE_RELEASE = `
  mutation UpdateRelease($input: UpdateReleaseInput!, $release: ID!) {
    updateRelease(release: $release, input: $input) {${RELEASE_SELECTION}
    }
  }
`;

export const CREATE_SERVICE = `
  mutation CreateService($input: TaskServiceInput!) {
    createTaskService(input: $input) {
      taskService {
        id
        kfId
        name
        createdAt
        description
        healthStatus
        enabled
        url
      }
    }
  }
`;

export const UPDATE_SERVICE = `
  mutation UpdateService($taskService: ID!, $input: TaskServiceInput!) {
    updateTaskService(taskService: $taskService, input: $input) {
      taskService {
        id
        kfId
        name
        createdAt
        description
        healthStatus
        enabled
        url
      }
    }
  }
`;

export const SYNC_STUDIES = `
  mutation SyncStudies {
    syncStudies {
      new {
        edges {
          node {
            id
            kfId
            name
            createdAt
            visible
            deleted
          }
        }
      }
      deleted {
        edges {
          node {
            id
            kfId
            name
            createdAt
            visible
            deleted
          }
        }
      }
    }
  }
`;

export const CREATE_RELEASE_NOTE = `
  mutation CreateReleaseNote($input: ReleaseNoteInput!) {
    createReleaseNote(input: $input) {
      releaseNote {
        id
      }
    }
  }
`;

export const UPDATE_RELEASE_NOTE = `
  mutation UpdateReleaseNote(
    $input: UpdateReleaseNoteInput!
    $releaseNote: ID!
  ) {
    updateReleaseNote(input: $input, releaseNote: $releaseNote) {
      releaseNote {
        id
      }
    }
  }
`;

export const REMOVE_RELEASE_NOTE = `
  mutation RemoveReleaseNote($releaseNote: ID!) {
    removeReleaseNote(releaseNote: $releaseNote) {
      success
    }
  }
`;

/** Adds `__typename` to every selection set, as Apollo Client's InMemoryCache does. */
export function withTypename(query: string): string {
  return query.replace(/\{(\s*)(?=[A-Za-z_])/g, (_, space: string) => `{${space}__typename${space}`);
}

/** base64("<Type>:<kf_id>") */
export const relayId = (type: string, kfId: string) => Buffer.from(`${type}:${kfId}`).toString('base64');

export interface GqlResponse {
  status: number;
  headers: Headers;
  body: { data?: any; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
}

/** POST /graphql as the UI sends it (`Bearer null` when logged out). */
export function graphqlClient(baseUrl: string) {
  return async (
    query: string,
    variables: Record<string, unknown> = {},
    token: string | null = null,
    headers: Record<string, string> = {},
  ): Promise<GqlResponse> => {
    const res = await fetch(`${baseUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
      body: JSON.stringify({ query: withTypename(query), variables }),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as GqlResponse['body'] };
  };
}
