/**
 * Multi round-trip requests (SEP-2322) for 2026-07-28 clients in front of 2025-11-25 upstreams.
 *
 * A 2025-11-25 upstream asks its client mid-call (sampling/createMessage, elicitation/create,
 * roots/list) and waits for the answer on its session. A 2026-07-28 client is asked differently: its
 * request is answered with an InputRequiredResult (`inputRequests` + `requestState`) and it retries
 * the request with `inputResponses`. Gatehouse joins the two: the upstream's requests are collected
 * (a short window, so requests the upstream sends together are asked together), the client's request
 * is answered with them, and the upstream call is **held** (its upstream request stays open) under a
 * random id sealed into the `requestState` (src/rev2026/state.ts). The retry, authorized like any
 * request, opens the state, checks principal, grant, method, name and expiry, takes the held call
 * (single use), answers the upstream's requests with the client's responses, and continues the call
 * on the retry's exchange: its result, or the next round of requests, goes to the retry.
 *
 * - Keys of `inputRequests` are the gateway's (`input-1`, …), unless the upstream names one in
 *   `_meta["dev.gatehouse/inputKey"]` of its request (unique, `[A-Za-z0-9_.-]{1,64}`).
 * - A request needing a capability the retry's `_meta` does not declare is refused to the upstream
 *   (-32601, what a client without it answers); when none is left to ask, the client's request is
 *   answered with MissingRequiredClientCapabilityError (-32021, HTTP 400, data.requiredCapabilities)
 *   and the upstream call is cancelled.
 * - A held call expires after {@link HOLD_MS}: its upstream requests are refused and the call
 *   cancelled; the state then no longer opens anything.
 * - Missing responses on a retry are asked again (a new InputRequiredResult, a new state).
 */
import { randomBytes } from 'node:crypto';
import { canonicalDigest } from '../audit/canonical.ts';
import { GatehouseError } from '../errors.ts';
import { idKey, type JsonRpcId, type JsonRpcRequest, type JsonRpcResponse } from '../protocol/jsonrpc.ts';
import type { PostExchange } from '../session/exchange.ts';
import type { UpstreamLink } from '../session/link.ts';
import type { FrontCall, ModernCall, Session } from '../session/session.ts';
import { principalDigest, RequestStateCodec, type StatePayload } from './state.ts';

/** Server-to-client requests a 2026-07-28 client answers through inputResponses, and the capability each needs. */
const INPUT_METHODS: ReadonlyMap<string, string> = new Map([
  ['sampling/createMessage', 'sampling'],
  ['elicitation/create', 'elicitation'],
  ['roots/list', 'roots'],
]);
/** "Servers MUST NOT send InputRequiredResult responses on any other client requests." */
const MRTR_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read']);

/** How long a held call waits for the client's retry. */
export const HOLD_MS = 5 * 60_000;
/** Requests the upstream sends together are asked together: they are collected this long. */
const COLLECT_MS = 25;
/** Bounds per pooled session (T30): held calls, and requests per round. */
const MAX_HELD = 256;
const MAX_PER_ROUND = 16;
const KEY_META = 'dev.gatehouse/inputKey';
const KEY_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

interface Pending {
  readonly method: string;
  readonly params: Record<string, unknown> | undefined;
  readonly upstreamId: JsonRpcId;
}

interface Held {
  readonly call: FrontCall;
  readonly link: UpstreamLink;
  readonly pending: Map<string, Pending>;
  readonly timer: NodeJS.Timeout;
}

interface Collecting {
  readonly link: UpstreamLink;
  readonly requests: Pending[];
}

interface SessionState {
  readonly held: Map<string, Held>;
  readonly collecting: Map<FrontCall, Collecting>;
}

/** One key per gateway process: held calls live in its memory only. */
const codec = new RequestStateCodec();
const states = new WeakMap<Session, SessionState>();

function stateOf(session: Session): SessionState {
  let s = states.get(session);
  if (!s) {
    s = { held: new Map(), collecting: new Map() };
    states.set(session, s);
  }
  return s;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function refuseUpstream(link: UpstreamLink, id: JsonRpcId, message: string): void {
  link.notify({ jsonrpc: '2.0', id, error: { code: -32601, message } }).catch(() => {});
}

/** A server-to-client request from an upstream of a pooled (2026-07-28) session. */
export function upstreamRequest(session: Session, link: UpstreamLink, msg: JsonRpcRequest): void {
  const call = session.relatedCall(link);
  if (!call?.modern || !MRTR_METHODS.has(call.method) || !INPUT_METHODS.has(msg.method)) {
    // Nobody to ask: no single 2026-07-28 request in flight on this link is waiting for it.
    refuseUpstream(link, msg.id, `${msg.method} cannot be sent to the client of this request`);
    return;
  }
  const st = stateOf(session);
  let c = st.collecting.get(call);
  if (!c) {
    const made: Collecting = { link, requests: [] };
    c = made;
    st.collecting.set(call, made);
    setTimeout(() => flush(session, call, made), COLLECT_MS).unref();
  }
  if (c.requests.length >= MAX_PER_ROUND) {
    refuseUpstream(link, msg.id, `more than ${MAX_PER_ROUND} input requests in one round`);
    return;
  }
  c.requests.push({ method: msg.method, params: msg.params, upstreamId: msg.id });
}

function flush(session: Session, call: FrontCall, c: Collecting): void {
  const st = stateOf(session);
  st.collecting.delete(call);
  if (session.calls.get(idKey(call.id)) !== call || !call.modern) {
    for (const r of c.requests) refuseUpstream(c.link, r.upstreamId, 'the request was answered or cancelled');
    return;
  }
  const declared = call.modern.capabilities;
  const ask: Pending[] = [];
  const missing: Record<string, Record<string, never>> = {};
  for (const r of c.requests) {
    const cap = INPUT_METHODS.get(r.method) as string;
    if (isObject(declared[cap])) ask.push(r);
    else {
      missing[cap] = {};
      refuseUpstream(c.link, r.upstreamId, `the client did not declare the ${cap} capability`);
    }
  }
  if (ask.length === 0) {
    if (call.upstreamId !== undefined) c.link.abandon(call.upstreamId, 'client capability missing');
    call.exchange.setStatus(400);
    const err = new GatehouseError(
      'missing_client_capability',
      `this request needs the client capabilities ${Object.keys(missing).join(', ')}, which its _meta does not declare`,
      { data: { requiredCapabilities: missing } },
    );
    session.answer(call, { jsonrpc: '2.0', id: call.id, error: err.toJsonRpcError() });
    return;
  }
  const pending = new Map<string, Pending>();
  let n = 0;
  for (const r of ask) {
    const proposed = isObject(r.params?._meta) ? r.params._meta[KEY_META] : undefined;
    let key = typeof proposed === 'string' && KEY_PATTERN.test(proposed) ? proposed : undefined;
    while (key === undefined || pending.has(key)) key = `input-${++n}`;
    pending.set(key, r);
  }
  hold(session, call, c.link, pending);
}

/** Answers the client's request with an InputRequiredResult and keeps the upstream call waiting. */
function hold(session: Session, call: FrontCall, link: UpstreamLink, pending: Map<string, Pending>): void {
  const st = stateOf(session);
  if (st.held.size >= MAX_HELD || !call.modern) {
    for (const r of pending.values()) refuseUpstream(link, r.upstreamId, 'too many calls wait for input');
    if (call.upstreamId !== undefined) link.abandon(call.upstreamId, 'too many calls wait for input');
    const err = new GatehouseError(
      'capacity_exceeded',
      `${MAX_HELD} requests already wait for the client's input`,
    );
    session.answer(call, { jsonrpc: '2.0', id: call.id, error: err.toJsonRpcError() });
    return;
  }
  const id = randomBytes(18).toString('base64url');
  const expires = Date.now() + HOLD_MS;
  const timer = setTimeout(() => expire(session, id), HOLD_MS);
  timer.unref();
  st.held.set(id, { call, link, pending, timer });
  const requestState = codec.seal({
    s: id,
    p: principalDigest(session.principalKey),
    g: session.grant.id,
    m: call.method,
    n: call.modern.name,
    a: call.modern.digest,
    e: expires,
  });
  const inputRequests: Record<string, unknown> = {};
  for (const [key, r] of pending) {
    const params = { ...(r.params ?? {}) };
    if (isObject(params._meta)) {
      const { [KEY_META]: _drop, ...rest } = params._meta;
      if (Object.keys(rest).length > 0) params._meta = rest;
      else delete params._meta;
    }
    inputRequests[key] = { method: r.method, params };
  }
  const res: JsonRpcResponse = {
    jsonrpc: '2.0',
    id: call.id,
    result: { resultType: 'input_required', inputRequests, requestState },
  };
  session.answer(call, res);
}

function expire(session: Session, id: string): void {
  const held = stateOf(session).held.get(id);
  if (!held) return;
  stateOf(session).held.delete(id);
  for (const r of held.pending.values())
    refuseUpstream(held.link, r.upstreamId, 'the client did not answer in time');
  if (held.call.upstreamId !== undefined) held.link.abandon(held.call.upstreamId, 'requestState expired');
}

/**
 * The retry of a request with `requestState`: checks it, takes the held call (single use), answers the
 * upstream's requests with the client's `inputResponses`, and continues the call on this exchange.
 */
export function resume(
  session: Session,
  req: { id: JsonRpcId; method: string; params?: Record<string, unknown> | undefined },
  exchange: PostExchange,
  onDone: FrontCall['onDone'],
  modern: ModernCall,
): GatehouseError | undefined {
  const refuse = (why: string): GatehouseError =>
    new GatehouseError('request_state_invalid', 'requestState refused', { detail: why });
  const payload = codec.open(req.params?.requestState);
  if (!payload) return refuse('not issued by this gateway, or altered');
  const why = stateMismatch(payload, {
    principalKey: session.principalKey,
    grant: session.grant.id,
    method: req.method,
    name: modern.name,
    digest: modern.digest,
    now: Date.now(),
  });
  if (why) return refuse(why);
  const st = stateOf(session);
  const held = st.held.get(payload.s);
  if (!held) return refuse('already used, or the held call ended');
  st.held.delete(payload.s);
  clearTimeout(held.timer);
  const call = held.call;
  call.id = req.id;
  call.exchange = exchange;
  call.onDone = onDone;
  call.modern = modern;
  session.registerCall(call);
  session.armTimeout(call);
  const responses = isObject(req.params?.inputResponses) ? req.params.inputResponses : {};
  const still = new Map<string, Pending>();
  for (const [key, r] of held.pending) {
    const answer = Object.hasOwn(responses, key) ? responses[key] : undefined;
    if (isObject(answer)) {
      held.link.notify({ jsonrpc: '2.0', id: r.upstreamId, result: answer }).catch(() => {});
    } else still.set(key, r);
  }
  // "the server SHOULD respond with a new InputRequiredResult re-requesting the missing information".
  if (still.size > 0) hold(session, call, held.link, still);
  return undefined;
}

/**
 * The approval of the held call a retry would resume (its state opens and matches this caller,
 * request and arguments, and the call is still held), so authorize does not ask a human again for
 * the same call. Undefined otherwise: the retry is decided like any call.
 */
export function heldApproval(
  session: Session,
  req: { method: string; params?: Record<string, unknown> | undefined },
  name: string,
): ModernCall['approval'] {
  const payload = codec.open(req.params?.requestState);
  if (!payload) return undefined;
  const why = stateMismatch(payload, {
    principalKey: session.principalKey,
    grant: session.grant.id,
    method: req.method,
    name,
    digest: canonicalDigest(req.params?.arguments ?? null),
    now: Date.now(),
  });
  if (why) return undefined;
  return stateOf(session).held.get(payload.s)?.call.modern?.approval;
}

/** Why an opened state may not resume this request (undefined: it may): T10-11, bound to caller and request. */
export function stateMismatch(
  payload: StatePayload,
  expect: { principalKey: string; grant: string; method: string; name: string; digest: string; now: number },
): string | undefined {
  if (payload.p !== principalDigest(expect.principalKey)) return 'issued to another principal';
  if (payload.g !== expect.grant) return 'issued under another grant';
  if (payload.m !== expect.method || payload.n !== expect.name) return 'issued for another request';
  // The held call runs with the arguments it was authorized with: a retry must name the same ones.
  if (payload.a !== expect.digest) return 'issued for other arguments';
  if (payload.e <= expect.now) return 'expired';
  return undefined;
}

/** Upstream params without what belongs to the 2026-07-28 envelope (the 2025-11-25 server never sees it). */
export function upstreamParams(
  params: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  if (params === undefined) return undefined;
  const { requestState: _s, inputResponses: _r, ...rest } = params;
  if (isObject(rest._meta)) {
    const meta: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(rest._meta))
      if (!k.startsWith('io.modelcontextprotocol/')) meta[k] = v;
    if (Object.keys(meta).length > 0) rest._meta = meta;
    else delete rest._meta;
  }
  return rest;
}
