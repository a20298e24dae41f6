/**
 * `jsonrpc`: structure-aware mutations of valid MCP messages (initialize, tools/call with arguments,
 * prompts, resources, completion, logging, tasks, notifications, responses to server requests,
 * batches): wrong types, missing and extra fields, ids of every type, names from a dictionary that
 * holds every Object.prototype member, huge and distinct strings, lone surrogates, 1e999, 10k+ deep
 * nesting, `_meta` variants, params as array or null; duplicate ids in one batch and across
 * concurrent POSTs.
 */
import { BATCH_SLOT, type Family, type FuzzContext, type Probe } from '../core.ts';
import {
  clone,
  deepNest,
  fromPlain,
  get,
  isObj,
  type Json,
  type ObjJson,
  obj,
  raw,
  set,
  slots,
  toText,
} from '../json.ts';
import { requestIdsOf } from '../oracles.ts';
import type { Rng } from '../rng.ts';
import {
  bigString,
  hostileId,
  hostileMeta,
  hostileString,
  hostileValue,
  METHODS,
  PROMPTS,
  PROTO_NAMES,
  RAW_NUMBERS,
  RESOURCES,
  SURROGATES,
  TOOLS,
} from '../values.ts';

const VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26'];
const LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

/** Valid arguments for each tool of the fuzz upstreams. */
export const TOOL_ARGS: Record<string, (rng: Rng) => unknown> = {
  github__search_code: (r) => ({
    q: r.pick(['foo', 'bar']),
    ...(r.chance(0.5) ? { repo: 'acme/widgets' } : {}),
  }),
  github__read_file: () => ({ path: 'README.md' }),
  github__create_issue: (r) => ({ repo: r.pick(['acme/widgets', 'acme/secret']), title: 'bug' }),
  github__write_file: () => ({ path: 'a.txt', content: 'b' }),
  github__transfer: (r) => ({ amount: r.pick([5, 5000]), to: 'bob' }),
  github__pid: () => ({}),
  github__call_tool: (r) => ({
    name: r.pick(['search_code', 'delete_repo', 'nope']),
    arguments: { q: 'x', repo: 'r' },
  }),
  github__slow: (r) => ({ ms: r.pick([5, 200, 5000]) }),
  github__deploy: (r) => ({ env: r.pick(['staging', 'production']) }),
  github__delete_repo: () => ({ repo: 'acme/widgets' }),
  everything__echo: () => ({ message: 'hi' }),
  'everything__get-sum': () => ({ a: 1, b: 2 }),
  'everything__get-tiny-image': () => ({}),
  'everything__get-annotated-message': () => ({ messageType: 'error', includeImage: false }),
  'everything__get-structured-content': () => ({ location: 'New York' }),
  'everything__get-resource-links': () => ({ count: 2 }),
  'everything__get-resource-reference': () => ({ resourceType: 'text', resourceId: 1 }),
  'everything__toggle-simulated-logging': () => ({}),
  'everything__toggle-subscriber-updates': () => ({}),
  'everything__get-roots-list': () => ({}),
  'everything__get-env': () => ({}),
  'everything__gzip-file-as-resource': () => ({ name: 'x', data: 'data:text/plain,hi' }),
  'everything__trigger-long-running-operation': () => ({ duration: 1, steps: 2 }),
  'everything__trigger-sampling-request': () => ({ prompt: 'hi', maxTokens: 10 }),
  'everything__trigger-elicitation-request': () => ({}),
  'everything__trigger-url-elicitation': () => ({}),
  'everything__simulate-research-query': () => ({ topic: 'x', ambiguous: false }),
};

const ALL_TOOLS = Object.keys(TOOL_ARGS);
const SLOW_TOOLS: readonly string[] = TOOLS.slow;
const QUICK_TOOLS = ALL_TOOLS.filter((t) => !SLOW_TOOLS.includes(t));

/** A valid message of `method` (id `id`; notifications ignore it). */
function template(rng: Rng, method: string, id: number): Record<string, unknown> {
  const req = (params?: unknown): Record<string, unknown> => ({
    jsonrpc: '2.0',
    id,
    method,
    ...(params === undefined ? {} : { params }),
  });
  const note = (params?: unknown): Record<string, unknown> => ({
    jsonrpc: '2.0',
    method,
    ...(params === undefined ? {} : { params }),
  });
  switch (method) {
    case 'initialize':
      return req({
        protocolVersion: rng.pick(VERSIONS),
        capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } },
        clientInfo: { name: 'fuzz', version: '1' },
      });
    case 'tools/call': {
      // Slow tools (they wait out the call timeout) are a small share, or they would eat the run's time.
      const name = rng.chance(0.1) ? rng.pick(SLOW_TOOLS) : rng.pick(QUICK_TOOLS);
      const args = (TOOL_ARGS[name] ?? (() => ({})))(rng);
      return req({
        name,
        arguments: args,
        ...(rng.chance(0.2) ? { _meta: { progressToken: rng.chance(0.5) ? id : `p${id}` } } : {}),
      });
    }
    case 'tools/list':
    case 'prompts/list':
    case 'resources/list':
    case 'resources/templates/list':
      return req(rng.chance(0.3) ? { cursor: rng.pick(['', 'abc', 'eyJzIjowfQ']) } : undefined);
    case 'prompts/get': {
      const name = rng.pick(PROMPTS);
      return req({
        name,
        arguments: { city: 'Paris', resourceType: 'Text', resourceId: '1', department: 'Sales' },
      });
    }
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      return req({ uri: rng.pick(RESOURCES) });
    case 'completion/complete':
      return req(
        rng.chance(0.5)
          ? {
              ref: { type: 'ref/prompt', name: 'everything__completable-prompt' },
              argument: { name: 'department', value: 'E' },
            }
          : {
              ref: { type: 'ref/resource', uri: 'demo://resource/dynamic/text/{index}' },
              argument: { name: 'index', value: '1' },
            },
      );
    case 'logging/setLevel':
      return req({ level: rng.pick(LEVELS) });
    case 'tasks/get':
    case 'tasks/result':
    case 'tasks/cancel':
      return req({ taskId: rng.string(8) });
    case 'notifications/initialized':
    case 'notifications/roots/list_changed':
      return note();
    case 'notifications/cancelled':
      return note({ requestId: rng.chance(0.5) ? rng.int(50) : id, reason: 'fuzz' });
    case 'notifications/progress':
      return note({ progressToken: rng.int(50), progress: 1, total: 2 });
    default:
      return req(rng.chance(0.5) ? {} : undefined);
  }
}

/** A response to a server→client request (sampling, elicitation, roots) the gateway never asked for, or did. */
function responseTemplate(rng: Rng): Record<string, unknown> {
  const id = rng.weighted<unknown>([
    [3, rng.int(20)],
    [1, `${rng.string(6)}`],
    [1, null],
  ]);
  if (rng.chance(0.3)) return { jsonrpc: '2.0', id, error: { code: -32601, message: 'no' } };
  return {
    jsonrpc: '2.0',
    id,
    result: rng.pick<unknown>([
      {},
      { roots: [{ uri: 'file:///tmp', name: 'tmp' }] },
      { role: 'assistant', content: { type: 'text', text: 'x' }, model: 'm' },
      { action: 'accept', content: {} },
    ]),
  };
}

/** A hostile tool name, prompt name or resource URI. */
function hostileName(rng: Rng, kind: 'tool' | 'prompt' | 'uri', maxBig: number): Json {
  const proto = rng.pick(PROTO_NAMES);
  const server = rng.pick(['github', 'everything']);
  if (kind === 'uri') {
    return rng.weighted<() => Json>([
      [3, () => `${proto}://x`],
      [2, () => `${proto}:x`],
      [1, () => proto],
      [
        1,
        () =>
          `demo://resource/dynamic/text/${rng.pick(['999999999999999999999', '-1', '1e999', '0x10', ''])}`,
      ],
      [1, () => 'demo://resource/static/document/../../../../etc/passwd'],
      [
        1,
        () =>
          rng.pick([
            'file:///etc/passwd',
            'http://127.0.0.1:1/',
            '',
            'demo:',
            'DEMO://RESOURCE/DYNAMIC/TEXT/1',
          ]),
      ],
      [2, () => `demo://resource/${bigString(rng, rng.size(maxBig))}`],
      [1, () => raw(`"demo://resource/dynamic/text/1${rng.pick(SURROGATES)}"`)],
    ])();
  }
  const valid = kind === 'tool' ? rng.pick(ALL_TOOLS) : rng.pick(PROMPTS);
  return rng.weighted<() => Json>([
    [3, () => proto],
    [4, () => `${server}__${proto}`],
    [2, () => `${proto}__${valid.split('__')[1] ?? 'x'}`],
    [1, () => `${server}____proto__`],
    [1, () => `${server}__`],
    [1, () => `__${valid.split('__')[1] ?? ''}`],
    [1, () => 'evil__steal'],
    [1, () => `${valid}\u0000`],
    [1, () => `${valid} `],
    [1, () => valid.toUpperCase()],
    [3, () => `${server}__${bigString(rng, rng.size(maxBig))}`],
    [2, () => raw(`"${valid}${rng.pick(SURROGATES)}"`)],
    [1, () => raw(`"${rng.pick(SURROGATES)}"`)],
  ])();
}

/** One random structural mutation of a message (in place); returns a label. */
function mutate(rng: Rng, msg: ObjJson, maxBig: number): string {
  const params = get(msg, 'params');
  const op = rng.weighted<string>([
    [6, 'value'],
    [4, 'string'],
    [3, 'remove'],
    [3, 'add-key'],
    [1, 'dup-key'],
    [4, 'id'],
    [3, 'method'],
    [5, 'name'],
    [2, 'params'],
    [3, 'meta'],
    [1, 'jsonrpc'],
    [2, 'deep'],
    [2, 'number'],
  ]);
  switch (op) {
    case 'value':
    case 'string':
    case 'remove': {
      const all = slots(msg);
      const s = all.length > 0 ? rng.pick(all) : undefined;
      if (!s) return 'noop';
      if (op === 'remove') {
        s.remove();
        return `remove ${s.path}`;
      }
      s.replace(op === 'value' ? hostileValue(rng, maxBig) : hostileString(rng, maxBig));
      return `${op} ${s.path}`;
    }
    case 'add-key':
    case 'dup-key': {
      const targets: ObjJson[] = [msg];
      for (const s of slots(msg)) {
        const x = s.get();
        if (isObj(x)) targets.push(x);
      }
      const t = rng.pick(targets);
      if (op === 'dup-key' && t.obj.length > 0) {
        const [k] = rng.pick(t.obj);
        t.obj.push([k, hostileValue(rng, maxBig)]);
        return `dup-key ${k}`;
      }
      const key = rng.chance(0.7) ? rng.pick(PROTO_NAMES) : String(hostileString(rng, 64));
      t.obj.push([key, hostileValue(rng, maxBig)]);
      return `add-key ${key.slice(0, 20)}`;
    }
    case 'id':
      set(msg, 'id', hostileId(rng));
      return 'id';
    case 'method':
      set(
        msg,
        'method',
        rng.weighted<() => Json>([
          [3, () => rng.pick(PROTO_NAMES)],
          [3, () => rng.pick(METHODS)],
          [1, () => `tools/${rng.pick(PROTO_NAMES)}`],
          [1, () => `notifications/${rng.pick(PROTO_NAMES)}`],
          [1, () => bigString(rng, rng.size(maxBig))],
          [1, () => raw(`"tools/call${rng.pick(SURROGATES)}"`)],
          [1, () => hostileValue(rng, 64)],
        ])(),
      );
      return 'method';
    case 'name': {
      const method = get(msg, 'method');
      if (!isObj(params ?? null)) return 'noop';
      const p = params as ObjJson;
      if (
        method === 'resources/read' ||
        method === 'resources/subscribe' ||
        method === 'resources/unsubscribe'
      ) {
        set(p, 'uri', hostileName(rng, 'uri', maxBig));
        return 'uri';
      }
      if (method === 'completion/complete') {
        const ref = get(p, 'ref');
        if (ref && isObj(ref)) {
          if (rng.chance(0.5)) set(ref, 'name', hostileName(rng, 'prompt', maxBig));
          else set(ref, 'uri', hostileName(rng, 'uri', maxBig));
        }
        return 'ref';
      }
      set(p, 'name', hostileName(rng, method === 'prompts/get' ? 'prompt' : 'tool', maxBig));
      return 'name';
    }
    case 'params':
      set(
        msg,
        'params',
        rng.pick<Json>([[], [1, 2], null, 'x', 1, true, raw('1e999'), obj([['__proto__', obj([])]])]),
      );
      return 'params';
    case 'meta': {
      if (!isObj(params ?? null)) set(msg, 'params', obj([]));
      const p = get(msg, 'params') as ObjJson;
      set(p, '_meta', rng.chance(0.8) ? hostileMeta(rng, maxBig) : hostileValue(rng, maxBig));
      return '_meta';
    }
    case 'jsonrpc':
      set(msg, 'jsonrpc', rng.pick<Json>(['2', '2.00', ' 2.0', 2, 2.0, null, '', raw('"2.0\\u0000"')]));
      return 'jsonrpc';
    case 'deep': {
      const depth = rng.pick([1000, 5000, 10_000, 20_000, 40_000]);
      const kind = rng.pick(['array', 'object', 'mixed'] as const);
      const all = slots(msg).filter((s) => !['jsonrpc', 'method', 'id'].includes(s.path));
      const s = all.length > 0 ? rng.pick(all) : undefined;
      if (!s) return 'noop';
      s.replace(deepNest(depth, kind));
      return `deep ${s.path}`;
    }
    case 'number': {
      const all = slots(msg).filter((s) => typeof s.get() === 'number');
      const s = all.length > 0 ? rng.pick(all) : undefined;
      if (!s) {
        set(msg, 'id', raw(rng.pick(RAW_NUMBERS)));
        return 'number id';
      }
      s.replace(raw(rng.pick(RAW_NUMBERS)));
      return `number ${s.path}`;
    }
    default:
      return 'noop';
  }
}

/** Methods a probe may start from, with weights. */
const BASE_METHODS: readonly (readonly [number, string])[] = [
  [16, 'tools/call'],
  [3, 'tools/list'],
  [2, 'ping'],
  [2, 'prompts/list'],
  [4, 'prompts/get'],
  [2, 'resources/list'],
  [1, 'resources/templates/list'],
  [4, 'resources/read'],
  [2, 'resources/subscribe'],
  [1, 'resources/unsubscribe'],
  [3, 'completion/complete'],
  [2, 'logging/setLevel'],
  [1, 'tasks/get'],
  [1, 'tasks/list'],
  [2, 'notifications/cancelled'],
  [1, 'notifications/progress'],
  [1, 'notifications/initialized'],
  [1, 'notifications/roots/list_changed'],
  [2, 'response'],
];

/** Whether a body's requests may legitimately run into the call timeout. */
export function upstreamMayBeSlow(body: Buffer): boolean {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    return false;
  }
  const slow = new Set<string>(TOOLS.slow);
  for (const m of Array.isArray(v) ? v : [v]) {
    if (typeof m !== 'object' || m === null) continue;
    const r = m as { method?: unknown; params?: { name?: unknown; arguments?: { name?: unknown } } };
    if (typeof r.method === 'string' && r.method.startsWith('tasks/')) return true;
    // A request the client ties to a task (`_meta` related-task, a well-formed one passes the edge) is
    // answered through that task by task-aware upstreams (MCP tasks), not at once: the gateway's timeout
    // answer is the right one.
    const meta = (r.params as { _meta?: Record<string, unknown> } | undefined)?._meta;
    if (meta && typeof meta === 'object' && 'io.modelcontextprotocol/related-task' in meta) return true;
    if (r.method === 'tools/call' && typeof r.params?.name === 'string' && slow.has(r.params.name))
      return true;
  }
  return false;
}

/** A message tree: a template, then 0..n mutations. */
export function message(
  rng: Rng,
  id: number,
  maxBig: number,
  mutations: number,
): { msg: Json; label: string } {
  const method = rng.weighted(BASE_METHODS);
  const plain = method === 'response' ? responseTemplate(rng) : template(rng, method, id);
  const msg = fromPlain(plain) as ObjJson;
  const ops: string[] = [];
  for (let i = 0; i < mutations; i++) ops.push(mutate(rng, msg, maxBig));
  return { msg, label: `${method}${ops.length ? ` [${ops.map((o) => o.split(' ')[0]).join(',')}]` : ''}` };
}

export function mutationCount(rng: Rng): number {
  return rng.weighted([
    [15, 0],
    [45, 1],
    [20, 2],
    [12, 3],
    [8, 5],
  ]);
}

/** A probe for one body on a slot (or without a session for initialize). */
export async function probeFor(
  ctx: FuzzContext,
  body: Buffer,
  label: string,
  slot: number | undefined,
  opts: { initialize?: boolean } = {},
): Promise<Probe> {
  const ids = requestIdsOf(body);
  const session = slot === undefined ? undefined : await ctx.session(slot);
  const wire = await ctx.mcpPost(body, slot === undefined ? {} : { slot });
  const probe: Probe = {
    label,
    wire: {
      chunks: [{ data: wire }],
      methods: ['POST'],
      deadlineMs: opts.initialize ? ctx.initDeadline : ctx.mcpDeadline,
    },
    expect: {
      deadlineMs: opts.initialize ? ctx.initDeadline : ctx.mcpDeadline,
      mcp: true,
      wellFormed: true,
      ...(ids ? { requestIds: ids.ids, onlyNotifications: ids.notificationsOnly } : {}),
      upstreamErrorsOk: upstreamMayBeSlow(body),
    },
    ...(slot === undefined ? {} : { slot }),
    ...(session ? { sessionId: session.id } : {}),
  };
  if (opts.initialize) {
    probe.after = async (res) => {
      for (const r of res.responses) {
        const sid = r.headers.get('mcp-session-id')?.[0];
        if (sid) await ctx.deleteSession(sid, 'agent');
      }
    };
  }
  return probe;
}

/**
 * A refused or unknown request carrying a large, distinct string (tool or prompt name, URI, method,
 * argument key, progressToken): memory and logs must stay bounded however many of them come.
 */
export async function leakProbe(
  rng: Rng,
  ctx: FuzzContext,
  baseId: number,
  maxSize: number,
  slot: number,
): Promise<Probe> {
  // Refused or unknown requests carrying large, distinct strings: memory and logs must stay bounded.
  const size = rng.range(4096, Math.min(ctx.maxBig, maxSize));
  const big = bigString(rng, size);
  const kind = rng.pick(['tool', 'prompt', 'uri', 'method', 'arg-key', 'progress']);
  const server = rng.pick(['github', 'everything']);
  let plain: unknown;
  switch (kind) {
    case 'tool':
      plain = {
        jsonrpc: '2.0',
        id: baseId,
        method: 'tools/call',
        params: { name: `${server}__${big}`, arguments: {} },
      };
      break;
    case 'prompt':
      plain = {
        jsonrpc: '2.0',
        id: baseId,
        method: 'prompts/get',
        params: { name: `everything__${big}` },
      };
      break;
    case 'uri':
      plain = {
        jsonrpc: '2.0',
        id: baseId,
        method: 'resources/read',
        params: { uri: `demo://resource/${big}` },
      };
      break;
    case 'method':
      plain = { jsonrpc: '2.0', id: baseId, method: `x/${big}`, params: {} };
      break;
    case 'arg-key':
      plain = {
        jsonrpc: '2.0',
        id: baseId,
        method: 'tools/call',
        params: { name: rng.pick(TOOLS.refused), arguments: { [big]: big } },
      };
      break;
    default:
      plain = {
        jsonrpc: '2.0',
        id: baseId,
        method: 'tools/call',
        params: {
          name: 'github__delete_repo',
          arguments: { repo: 'x' },
          _meta: { progressToken: big },
        },
      };
  }
  return probeFor(
    ctx,
    Buffer.from(JSON.stringify(plain)),
    `leak ${kind} ${Math.round(size / 1024)}KiB`,
    rng.chance(0.5) ? 3 : slot,
  );
}

/** The `jsonrpc` family. */
export const jsonrpcFamily: Family = {
  name: 'jsonrpc',
  async generate(rng, ctx, index) {
    const maxBig = ctx.maxBig;
    const baseId = index * 8 + 1;
    const shape = rng.weighted<string>([
      [62, 'single'],
      [8, 'batch'],
      [1, 'concurrent-dup'],
      [10, 'leak'],
      [3, 'initialize'],
      [5, 'deep'],
      [4, 'text'],
    ]);
    const slot = rng.weighted<number>([
      [5, 0],
      [2, 1],
      [1, 2],
      [2, 3],
      [1, 4],
    ]);
    switch (shape) {
      case 'single': {
        const { msg, label } = message(rng, baseId, maxBig, mutationCount(rng));
        return [await probeFor(ctx, Buffer.from(toText(msg)), label, slot)];
      }
      case 'batch': {
        const n = rng.range(1, 6);
        const items: Json[] = [];
        const labels: string[] = [];
        for (let i = 0; i < n; i++) {
          const { msg, label } = message(rng, baseId + i, maxBig, rng.chance(0.6) ? 0 : 1);
          items.push(msg);
          labels.push(label.split(' ')[0] ?? '');
        }
        const dup = rng.chance(0.4) && items.length > 1;
        if (dup) {
          const first = items.find((m) => isObj(m) && get(m, 'id') !== undefined);
          const id = first && isObj(first) ? get(first, 'id') : undefined;
          for (const m of items)
            if (id !== undefined && isObj(m) && get(m, 'id') !== undefined && rng.chance(0.7))
              set(m, 'id', clone(id));
        }
        const target = rng.chance(0.8) ? BATCH_SLOT : slot;
        return [
          await probeFor(
            ctx,
            Buffer.from(toText(items)),
            `batch${dup ? ' dup-ids' : ''} (${labels.join(',')})`,
            target,
          ),
        ];
      }
      case 'concurrent-dup': {
        const n = rng.range(2, 3);
        const id: Json = rng.chance(0.5) ? baseId : `dup-${baseId}`;
        const tool = rng.pick(['github__slow', 'everything__echo', 'github__search_code']);
        const args =
          tool === 'github__slow' ? { ms: rng.pick([50, 300]) } : (TOOL_ARGS[tool] ?? (() => ({})))(rng);
        const body = Buffer.from(
          toText(
            fromPlain({
              jsonrpc: '2.0',
              id: id as string | number,
              method: 'tools/call',
              params: { name: tool, arguments: args },
            }),
          ),
        );
        const probes: Probe[] = [];
        for (let i = 0; i < n; i++)
          probes.push(await probeFor(ctx, body, `concurrent same id x${n} (${tool})`, slot === 2 ? 0 : slot));
        return probes;
      }
      case 'leak':
        return [await leakProbe(rng, ctx, baseId, 96 * 1024, slot)];
      case 'initialize': {
        const { msg, label } = (() => {
          const m = fromPlain(template(rng, 'initialize', baseId)) as ObjJson;
          const ops: string[] = [];
          const k = rng.range(0, 2);
          for (let i = 0; i < k; i++) ops.push(mutate(rng, m, 4096));
          return {
            msg: m,
            label: `initialize${ops.length ? ` [${ops.map((o) => o.split(' ')[0]).join(',')}]` : ''}`,
          };
        })();
        return [await probeFor(ctx, Buffer.from(toText(msg)), label, undefined, { initialize: true })];
      }
      case 'deep': {
        const depth = rng.pick([10_000, 20_000, 40_000]);
        const kind = rng.pick(['array', 'object', 'mixed'] as const);
        const where = rng.pick(['arguments', 'meta', 'params', 'id', 'batch', 'result']);
        const nest = deepNest(depth, kind).raw;
        let text: string;
        switch (where) {
          case 'arguments':
            text = `{"jsonrpc":"2.0","id":${baseId},"method":"tools/call","params":{"name":"${rng.pick(['github__search_code', 'everything__echo', 'github__delete_repo'])}","arguments":{"q":${nest},"message":${nest}}}}`;
            break;
          case 'meta':
            text = `{"jsonrpc":"2.0","id":${baseId},"method":"tools/list","params":{"_meta":{"progressToken":${nest}}}}`;
            break;
          case 'params':
            text = `{"jsonrpc":"2.0","id":${baseId},"method":"prompts/get","params":{"name":"everything__args-prompt","arguments":${nest}}}`;
            break;
          case 'id':
            text = `{"jsonrpc":"2.0","id":${nest},"method":"ping"}`;
            break;
          case 'batch':
            text = deepNest(depth, 'array', `{"jsonrpc":"2.0","id":${baseId},"method":"ping"}`).raw;
            break;
          default:
            text = `{"jsonrpc":"2.0","id":${baseId},"result":${deepNest(depth, 'object').raw}}`;
        }
        return [
          await probeFor(
            ctx,
            Buffer.from(text),
            `deep ${where} ${kind} ${depth}`,
            where === 'batch' ? BATCH_SLOT : slot,
          ),
        ];
      }
      default: {
        // Text-level: lone surrogates and huge numbers spliced into a valid message's JSON text.
        const { msg, label } = message(rng, baseId, maxBig, 0);
        let text = toText(msg);
        const what = rng.pick(['surrogate', 'number', 'both']);
        if (what !== 'number') {
          const s = rng.pick(SURROGATES);
          const strings = [...text.matchAll(/"(?:[^"\\]|\\.)*"/g)];
          const m = strings.length > 0 ? rng.pick(strings) : undefined;
          if (m && m.index !== undefined) {
            const at = m.index + 1 + rng.int(m[0].length - 1);
            text = text.slice(0, at) + s + text.slice(at);
          }
        }
        if (what !== 'surrogate') {
          const nums = [...text.matchAll(/(?<=[:,[])-?\d+(?:\.\d+)?(?=[,}\]])/g)];
          const m = nums.length > 0 ? rng.pick(nums) : undefined;
          if (m && m.index !== undefined)
            text = text.slice(0, m.index) + rng.pick(RAW_NUMBERS) + text.slice(m.index + m[0].length);
        }
        return [await probeFor(ctx, Buffer.from(text), `text ${what} ${label}`, slot)];
      }
    }
  },
};

/** A valid (unmutated) message as JSON text, for the byte-level family. */
export function validMessageText(rng: Rng, id: number): { text: string; method: string } {
  const method = rng.weighted(BASE_METHODS);
  const plain = method === 'response' ? responseTemplate(rng) : template(rng, method, id);
  return { text: JSON.stringify(plain), method };
}

/** A session slot for an input (weighted towards the agent's latest-protocol session). */
export function pickSlot(rng: Rng): number {
  return rng.weighted<number>([
    [5, 0],
    [2, 1],
    [1, 2],
    [2, 3],
    [1, 4],
  ]);
}
