import { GatehouseError } from '../errors.ts';
import type { MessageContext, Outcome } from '../pipeline/context.ts';
import { callFacts } from './record-intent.ts';

/**
 * The credentials a forwarded request needs come from live leases of the session's grant: made on
 * first use, renewed before expiry, refused once revoked (credential_revoked), and for a per-user
 * connection the user has not made, a link to make it: URL-mode elicitation (-32042) for clients that
 * declared it, else connection_required with the link in the message. Synchronous when every value is
 * fresh (the common case).
 */
export function leaseCredential(ctx: MessageContext): Outcome | Promise<Outcome> {
  const target = ctx.target;
  if (target?.kind !== 'upstream') return undefined;
  const creds = ctx.session.credentials.get(target.server);
  if (!creds) return undefined;
  const done = (err: GatehouseError | undefined): Outcome => {
    if (!err) {
      ctx.leases = creds.infos();
      return undefined;
    }
    ctx.http.gw.audit.credentialRefused(callFacts(ctx, target), err.code, err.data?.service);
    if (err.code === 'connection_required' && supportsUrlElicitation(ctx.session.clientCapabilities))
      return new GatehouseError('url_elicitation_required', err.message, { data: err.data ?? {} });
    return err;
  };
  const r = creds.ensure(true);
  return r instanceof Promise ? r.then(done) : done(r);
}

/** MCP 2025-11-25: `capabilities.elicitation.url` declares URL mode. */
function supportsUrlElicitation(caps: Record<string, unknown>): boolean {
  const e = caps.elicitation;
  return typeof e === 'object' && e !== null && 'url' in e;
}
