/**
 * THE PIPELINE. Stage order for both phases lives here and only here.
 * Later stages (authenticate, resolve-grant, authorize, await-approval,
 * lease-credential, check-definitions, record-audit) slot
 * into these tables; see docs/architecture.md.
 */

import type { ResponseStage } from '../session/session.ts';
import { authenticate } from '../stages/authenticate.ts';
import { authorize } from '../stages/authorize.ts';
import { checkIds } from '../stages/check-ids.ts';
import { checkOrigin } from '../stages/check-origin.ts';
import { checkProtocol } from '../stages/check-protocol.ts';
import { checkRevision } from '../stages/check-revision.ts';
import { checkScope } from '../stages/check-scope.ts';
import { forwardMessage } from '../stages/forward-message.ts';
import { leaseCredential } from '../stages/lease-credential.ts';
import { limitResult } from '../stages/limit-result.ts';
import { parseMessage } from '../stages/parse-message.ts';
import { readBody } from '../stages/read-body.ts';
import { recordIntent } from '../stages/record-intent.ts';
import { redactSecrets } from '../stages/redact-secrets.ts';
import { resolveSession } from '../stages/resolve-session.ts';
import { routeMessage } from '../stages/route-message.ts';
import { sanitizeResult } from '../stages/sanitize-result.ts';
import type { HttpContext, MessageContext, Stage } from './context.ts';

/** Per HTTP request on /mcp (POST). */
export const REQUEST_STAGES: readonly Stage<HttpContext>[] = [
  // ORDER: origin/host first: a rebinding page learns nothing, not even whether a session exists.
  { name: 'check-origin', run: checkOrigin },
  // ORDER: authentication before anything else reveals state (sessions, methods) or costs (body reading).
  { name: 'authenticate', run: authenticate },
  // ORDER: cheap header checks before reading a body.
  { name: 'check-protocol', run: checkProtocol },
  // ORDER: the size cap applies before any parsing.
  { name: 'read-body', run: readBody },
  { name: 'parse-message', run: parseMessage },
  // ORDER: needs the parsed body (headers are checked against it, refusals carry its id); before
  // resolve-session, which picks a session (2025-11-25) or the grant's pooled one (2026-07-28).
  { name: 'check-revision', run: checkRevision },
  // ORDER: needs the parsed body (initialize creates the session) and the principal (sessions are bound to it).
  { name: 'resolve-session', run: resolveSession },
  // ORDER: needs the parsed body (scope per method and tool); an HTTP 403 so clients can step up.
  { name: 'check-scope', run: checkScope },
  // ORDER: last: ids are claimed until their response, so no later request stage may refuse the POST.
  { name: 'check-ids', run: checkIds },
];

/** GET (standalone stream) and DELETE (end session) share the header stages. */
export const STREAM_STAGES: readonly Stage<HttpContext>[] = [
  { name: 'check-origin', run: checkOrigin },
  { name: 'authenticate', run: authenticate },
  { name: 'check-protocol', run: checkProtocol },
  { name: 'resolve-session', run: resolveSession },
];

/** Per JSON-RPC request in the body. */
export const MESSAGE_STAGES: readonly Stage<MessageContext>[] = [
  // ORDER: routing resolves the namespaced name that later policy stages decide on.
  { name: 'route-message', run: routeMessage },
  // ORDER: after routing (it decides on the routed server and tool), before anything leaves the gateway.
  // await-approval (src/stages/await-approval.ts) runs inside it, on its approval_required branch only,
  // so a call that needs no approval pays nothing for it: a human decides before a credential is
  // leased or the intent written.
  { name: 'authorize', run: authorize },
  // ORDER: after authorize (a denied call never mints a token), before record-intent (which records
  // the lease the call uses).
  { name: 'lease-credential', run: leaseCredential },
  // ORDER: after every decision (await-approval included: the record names the approval), before
  // forwarding: write-ahead.
  { name: 'record-intent', run: recordIntent },
  // ORDER: last; nothing may run after a request left the gateway.
  { name: 'forward-message', run: forwardMessage },
];

/**
 * Response phase, per upstream message to the client (results, errors,
 * notifications and server-to-client requests alike). Run by Session.serialize; the gateway hands the
 * table to the session registry (src/gateway.ts), so the session never imports the pipeline.
 */
export const RESPONSE_STAGES: readonly ResponseStage[] = [
  // ORDER: size first, so later stages (sanitize, audit) never scan an oversized message.
  { name: 'limit-result', run: limitResult },
  // ORDER: after the size cap (never scan an oversized message), before anything could copy it onward.
  { name: 'redact-secrets', run: redactSecrets },
  // ORDER: after redact-secrets: the leak guard's exact matches are already [REDACTED:<name>], so the
  // pattern rules, the findings in _meta and the audit never see (or echo) a brokered value; after the
  // size cap, so an oversized message is never scanned.
  { name: 'sanitize-result', run: sanitizeResult },
];
