/**
 * MCP list methods (`tools/list`, `prompts/list`, …): the result key that holds the items and the
 * server capability that announces them. Shared by the router (merged lists) and the stages that treat
 * list requests apart (routing, audit, forwarding).
 */
export const LIST_METHODS = {
  'tools/list': { key: 'tools', cap: 'tools', named: true },
  'prompts/list': { key: 'prompts', cap: 'prompts', named: true },
  'resources/list': { key: 'resources', cap: 'resources', named: false },
  'resources/templates/list': { key: 'resourceTemplates', cap: 'resources', named: false },
} as const;

/** One of the list methods in {@link LIST_METHODS}. */
export type ListMethod = keyof typeof LIST_METHODS;

/** Whether `m` is a list method the gateway merges across upstreams (own keys only: `constructor` is not one). */
export function isListMethod(m: string): m is ListMethod {
  return Object.hasOwn(LIST_METHODS, m);
}
