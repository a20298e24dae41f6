/**
 * The Gatehouse Cedar schema, as text. `schema.cedarschema` next to this file is the same text (a test
 * checks it), kept as a file for editors and `cedar validate`; this constant is what the engine uses, so a
 * build needs no asset copying.
 */

/** Cedar namespace of every Gatehouse entity type and action. */
export const NAMESPACE = 'Gatehouse';

/** The schema every policy is validated against (strict mode). */
export const GATEHOUSE_SCHEMA = `// Gatehouse Cedar schema. Policies are validated against it (strict mode) at load.
// Kept in sync with GATEHOUSE_SCHEMA in schema.ts (a test checks they are equal).
namespace Gatehouse {
  // An organisation boundary (the token's tenant claim).
  entity Tenant;
  // An operator-defined group of agents or users.
  entity Role in [Role];
  // The human (or service subject) an agent acts for.
  entity User in [Tenant, Role] {
    issuer: String,
  };
  // The agent: the OAuth client the token was issued to.
  entity Agent in [Tenant, Role] {
    issuer: String,
    // Present when the agent acts for a user.
    user?: User,
    // Delegation chain (RFC 8693 act claims), current actor first.
    actors: Set<String>,
    scopes: Set<String>,
    authMethod: String,
  };
  // An upstream MCP server.
  entity Server {
    // Operator marked this server trusted: its tool annotations are believed.
    trusted: Bool,
  };
  // A tool of one server. risk, sideEffect and owner are operator-assigned; the hints come
  // from upstream annotations and are only believed when the server is trusted.
  entity Tool in [Server] {
    name: String,
    server: Server,
    risk: String,
    sideEffect: String,
    owner: String,
    readOnlyHint: Bool,
    destructiveHint: Bool,
  };
  // A resource (by URI) and a prompt of one server.
  entity Resource in [Server] {
    name: String,
    server: Server,
  };
  entity Prompt in [Server] {
    name: String,
    server: Server,
  };
  // The grant (task-scoped authorization) the session runs under.
  entity Grant;
  // Call arguments: every top-level argument is a tag; strings as-is, other values as JSON text.
  entity Args tags String;
  // Numeric call arguments (integers) as Long tags, for limits: context.numbers.getTag("amount") < 1000.
  entity Numbers tags Long;

  type RequestContext = {
    grant: Grant,
    args: Args,
    numbers: Numbers,
    // Whether a human approved this call (see @approval in docs/policy.md).
    approved: Bool,
    // Request time, epoch seconds.
    time: Long,
    // Labels of what this grant has already read (for taint rules).
    read: Set<String>,
  };

  action list_tools appliesTo { principal: [Agent], resource: [Tool], context: RequestContext };
  action call_tool appliesTo { principal: [Agent], resource: [Tool], context: RequestContext };
  action read_resource appliesTo { principal: [Agent], resource: [Resource], context: RequestContext };
  action get_prompt appliesTo { principal: [Agent], resource: [Prompt], context: RequestContext };
}
`;
