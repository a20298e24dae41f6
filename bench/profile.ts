// Summary of a V8 CPU profile (`node --cpu-prof`): self time by function and by package.
// `BENCH_PROFILE=1 npm run bench` profiles the Gatehouse targets and prints this for each;
// `node --import tsx bench/profile.ts FILE.cpuprofile` summarises one profile.
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code lives: a package, a Gatehouse source folder, Node's internals, or V8's pseudo-frames. */
export function packageOf(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const src = /\/(?:dist|src)\/([^/]+)(\/)?/.exec(url);
  if (src?.[1]) return `gatehouse/${src[2] ? src[1] : src[1].replace(/\.[jt]s$/, '')}`;
  return url;
}

export interface ProfileSummary {
  totalMs: number;
  byFunction: { name: string; ms: number; share: number }[];
  byPackage: { name: string; ms: number; share: number }[];
  /**
   * Time charged to the innermost Gatehouse function on the stack (library, Node and native time
   * included): what each part of Gatehouse costs, whoever does the work.
   */
  byGatehouseCaller: { name: string; ms: number; share: number }[];
}

function isGatehouse(url: string): boolean {
  return !url.includes('/node_modules/') && /\/(dist|src)\//.test(url);
}

/** Self time per function and per package, largest first (idle time left out of the total). */
export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const fns = new Map<string, number>();
  const pkgs = new Map<string, number>();
  const callers = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const cf = byId.get(id);
    if (!cf || cf.functionName === '(idle)') continue;
    total += us;
    const file = cf.url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules|src|dist)\//, '$1/');
    const name = `${cf.functionName || '(anonymous)'} ${file}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    fns.set(name, (fns.get(name) ?? 0) + us);
    const pkg = packageOf(cf.url, cf.functionName);
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + us);
    let at: number | undefined = id;
    let caller = '(outside Gatehouse code)';
    while (at !== undefined) {
      const f = byId.get(at);
      if (f && isGatehouse(f.url)) {
        caller = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(src|dist)\//, '$1/')}:${f.lineNumber + 1}`;
        break;
      }
      at = parent.get(at);
    }
    callers.set(caller, (callers.get(caller) ?? 0) + us);
  }
  const rank = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000, share: total > 0 ? us / total : 0 }));
  return {
    totalMs: total / 1000,
    byFunction: rank(fns),
    byPackage: rank(pkgs),
    byGatehouseCaller: rank(callers),
  };
}

/** The summary as text: two tables, percentages of non-idle CPU time. */
export function formatSummary(s: ProfileSummary): string {
  const row = (r: { name: string; ms: number; share: number }) =>
    `  ${(r.share * 100).toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}`;
  return [
    `non-idle CPU in the profile: ${s.totalMs.toFixed(0)} ms`,
    'self time by package:',
    ...s.byPackage.map(row),
    'self time by function:',
    ...s.byFunction.map(row),
    'time by innermost Gatehouse function on the stack (libraries, Node and native work included):',
    ...s.byGatehouseCaller.map(row),
  ].join('\n');
}

interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

/**
 * Bytes allocated per function and per package from a sampling heap profile (`.heapprofile`, written by
 * bench/cpu-window.ts with BENCH_PROFILE=heap), and per innermost Gatehouse function on the stack.
 * With `calls`, each row also says bytes per call.
 */
export function summarizeHeapProfile(file: string, top = 25, calls?: number): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode };
  const fns = new Map<string, number>();
  const pkgs = new Map<string, number>();
  const callers = new Map<string, number>();
  let total = 0;
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  const visit = (n: HeapNode, caller: string) => {
    const cf = n.callFrame;
    const here = isGatehouse(cf.url)
      ? `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^.*\/(src|dist)\//, '$1/')}:${cf.lineNumber + 1}`
      : caller;
    if (n.selfSize > 0) {
      total += n.selfSize;
      const f = cf.url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules|src|dist)\//, '$1/');
      add(
        fns,
        `${cf.functionName || '(anonymous)'} ${f}${cf.url ? `:${cf.lineNumber + 1}` : ''}`,
        n.selfSize,
      );
      add(pkgs, packageOf(cf.url, cf.functionName), n.selfSize);
      add(callers, here, n.selfSize);
    }
    for (const c of n.children) visit(c, here);
  };
  visit(p.head, '(outside Gatehouse code)');
  const row = ([name, b]: [string, number]) =>
    `  ${((b / total) * 100).toFixed(1).padStart(5)}%  ${(b / 1024 / 1024).toFixed(1).padStart(7)} MiB${
      calls ? `  ${(b / calls).toFixed(0).padStart(6)} B/call` : ''
    }  ${name}`;
  const rank = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(row);
  return [
    `allocated in the window (sampled): ${(total / 1024 / 1024).toFixed(1)} MiB${
      calls ? `, ${(total / calls / 1024).toFixed(1)} KiB per call over ${calls} calls` : ''
    }`,
    'allocated by package:',
    ...rank(pkgs),
    'allocated by function:',
    ...rank(fns),
    'allocated by innermost Gatehouse function on the stack:',
    ...rank(callers),
  ].join('\n');
}

if (process.argv[1] === import.meta.filename) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write(
      'usage: node --import tsx bench/profile.ts FILE.cpuprofile|FILE.heapprofile [CALLS]\n',
    );
    process.exit(2);
  }
  const calls = process.argv[3] ? Number(process.argv[3]) : undefined;
  process.stdout.write(
    `${file.endsWith('.heapprofile') ? summarizeHeapProfile(file, 25, calls) : formatSummary(summarizeProfile(file))}\n`,
  );
}
