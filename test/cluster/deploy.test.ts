/**
 * The reference deployment (docs/deploy.md), checked on paper: no container runtime runs here, so the
 * Dockerfile and the Kubernetes manifests are parsed and their essentials checked against each other
 * and against the gateway's own config schema.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { RUNTIME_FLAGS } from '../../src/cli/runtime-flags.ts';
import { parseConfig } from '../../src/config/load.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const K8S = join(ROOT, 'deploy', 'k8s');

type Obj = Record<string, unknown>;

/** Every YAML document of a manifest file. */
function manifests(file: string): Obj[] {
  return parseAllDocuments(readFileSync(join(K8S, file), 'utf8')).map((d) => {
    assert.equal(d.errors.length, 0, `${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS() as Obj;
  });
}

function one(file: string, kind: string): Obj {
  const found = manifests(file).filter((m) => m.kind === kind);
  assert.equal(found.length, 1, `${file} has one ${kind}`);
  return found[0] as Obj;
}

/** `o.a.b.c` with checks, for manifests. */
function at(o: unknown, ...path: (string | number)[]): unknown {
  let v: unknown = o;
  for (const k of path) {
    assert.ok(v !== null && typeof v === 'object', `no ${path.join('.')}`);
    v = (v as Obj)[k as string];
  }
  return v;
}

/** Dockerfile instructions (continuation lines joined, comments dropped), in order. */
function dockerfile(): { op: string; args: string }[] {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op = '', ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(' ') };
    });
}

const configMap = one('configmap.yaml', 'ConfigMap');
const gatehouseYaml = at(configMap, 'data', 'gatehouse.yaml') as string;
const deployment = one('deployment.yaml', 'Deployment');
const pod = at(deployment, 'spec', 'template', 'spec') as Obj;
const container = (at(pod, 'containers') as Obj[]).find((c) => c.name === 'gatehouse') as Obj;

describe('deploy: the Dockerfile', () => {
  const ins = dockerfile();
  const stages = ins.filter((i) => i.op === 'FROM');
  const finalStage = ins.slice(ins.lastIndexOf(stages[stages.length - 1] as { op: string; args: string }));

  test('multi-stage on node:20, the runtime stage without compilers', () => {
    assert.ok(stages.length >= 2, 'at least a build and a runtime stage');
    for (const s of stages) assert.match(s.args, /^node:20[-.\w]*/, s.args);
    assert.ok(
      finalStage.every((i) => i.op !== 'RUN' || !/g\+\+|build-essential|make /.test(i.args)),
      'no compilers installed in the runtime stage',
    );
    assert.ok(finalStage.some((i) => i.op === 'COPY' && /--from=build/.test(i.args)));
    assert.match(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'), /^# syntax=docker\/dockerfile:1\n/);
  });

  test('runs as a non-root user, with a health check on /healthz', () => {
    const users = finalStage.filter((i) => i.op === 'USER');
    assert.ok(users.length > 0, 'USER in the runtime stage');
    const user = (users[users.length - 1] as { args: string }).args.split(':')[0];
    assert.ok(user !== 'root' && user !== '0' && user !== '', `USER ${user}`);
    const hc = finalStage.find((i) => i.op === 'HEALTHCHECK');
    assert.ok(hc && /\/healthz/.test(hc.args), 'HEALTHCHECK on /healthz');
  });

  test('ENTRYPOINT and CMD start the compiled CLI on the port the config and the manifests use', () => {
    const entry = JSON.parse(finalStage.find((i) => i.op === 'ENTRYPOINT')?.args ?? '[]') as string[];
    const cmd = JSON.parse(finalStage.find((i) => i.op === 'CMD')?.args ?? '[]') as string[];
    assert.deepEqual(entry, ['node', ...RUNTIME_FLAGS, 'dist/cli/index.js']);
    assert.equal(cmd[0], 'start');
    assert.ok(cmd.includes('--config') && cmd.includes('--data-dir'));
    // The package's own start script runs the same file.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Obj };
    assert.equal(pkg.scripts.start, `node ${RUNTIME_FLAGS.join(' ')} dist/cli/index.js start`);
    // And the `gatehouse` bin with the same Node flags (src/cli/runtime-flags.ts).
    const shebang = readFileSync(join(ROOT, 'src/cli/index.ts'), 'utf8').split('\n')[0];
    assert.equal(shebang, `#!/usr/bin/env -S node ${RUNTIME_FLAGS.join(' ')}`);
    const exposed = Number(finalStage.find((i) => i.op === 'EXPOSE')?.args);
    const config = parseConfig(parseAllDocuments(gatehouseYaml)[0]?.toJS());
    assert.equal(exposed, config.server.port);
    assert.match(
      String(finalStage.find((i) => i.op === 'HEALTHCHECK')?.args),
      new RegExp(`:${exposed}/healthz`),
    );
  });
});

describe('deploy: the Kubernetes manifests', () => {
  test('the config is valid for the gateway: PostgreSQL store, Redis bus, secrets from the environment', () => {
    const config = parseConfig(parseAllDocuments(gatehouseYaml)[0]?.toJS());
    assert.equal(config.storage.kind, 'postgres');
    assert.equal(config.bus.kind, 'redis');
    assert.equal(config.server.host, '0.0.0.0');
    assert.doesNotMatch(config.storage.postgres.url ?? '', /:[^@/]+@/, 'no password in the store URL');
    assert.doesNotMatch(config.bus.url ?? '', /:[^@/]+@/, 'no password in the bus URL');
    const envNames = new Set(((container.env as Obj[]) ?? []).map((e) => e.name));
    for (const ref of [config.bus.secret, config.bus.password]) {
      assert.ok(ref && typeof ref === 'object' && 'env' in ref, 'bus secrets come from the environment');
      assert.ok(envNames.has(ref.env), `the Deployment sets ${ref.env}`);
    }
    assert.ok(envNames.has('PGPASSWORD'), 'PGPASSWORD for the store');
    // The drain fits in the grace period (with the preStop pause).
    assert.ok(Number(pod.terminationGracePeriodSeconds) * 1000 > config.limits.drainTimeoutMs + 5000);
  });

  test('three replicas of a non-root container, probes on /healthz and /readyz at the config port', () => {
    assert.equal(at(deployment, 'spec', 'replicas'), 3);
    assert.equal(at(pod, 'securityContext', 'runAsNonRoot'), true);
    assert.notEqual(at(pod, 'securityContext', 'runAsUser'), 0);
    const config = parseConfig(parseAllDocuments(gatehouseYaml)[0]?.toJS());
    const port = (container.ports as Obj[]).find((p) => p.name === 'http');
    assert.equal(port?.containerPort, config.server.port);
    assert.equal(at(container, 'livenessProbe', 'httpGet', 'path'), '/healthz');
    assert.equal(at(container, 'readinessProbe', 'httpGet', 'path'), '/readyz');
    assert.equal(at(container, 'readinessProbe', 'httpGet', 'port'), 'http');
    assert.equal(at(container, 'securityContext', 'allowPrivilegeEscalation'), false);
    const args = container.args as string[];
    assert.equal(args[0], 'start');
    assert.equal(args[args.indexOf('--config') + 1], '/etc/gatehouse/gatehouse.yaml');
    const mounts = container.volumeMounts as Obj[];
    assert.ok(mounts.some((m) => m.name === 'config' && m.mountPath === '/etc/gatehouse'));
  });

  test('every Secret reference names a key of the example Secret (which holds placeholders only)', () => {
    const secret = one('secret.example.yaml', 'Secret');
    const data = at(secret, 'stringData') as Record<string, string>;
    for (const v of Object.values(data)) assert.match(v, /^REPLACE-ME/, 'placeholders only');
    const refs: string[] = [];
    for (const c of [...(pod.containers as Obj[]), ...((pod.initContainers as Obj[]) ?? [])])
      for (const e of (c.env as Obj[]) ?? []) {
        const ref = at(e, 'valueFrom', 'secretKeyRef') as Obj;
        assert.equal(ref.name, at(secret, 'metadata', 'name'));
        refs.push(String(ref.key));
      }
    for (const v of pod.volumes as Obj[])
      if (v.secret) for (const item of at(v, 'secret', 'items') as Obj[]) refs.push(String(item.key));
    assert.ok(refs.length >= 4);
    for (const k of refs) assert.ok(Object.hasOwn(data, k), `Secret key ${k}`);
  });

  test('the Service has no stickiness, the PodDisruptionBudget keeps two replicas, labels match', () => {
    const labels = at(deployment, 'spec', 'template', 'metadata', 'labels') as Obj;
    const matches = (sel: Obj) => Object.entries(sel).every(([k, v]) => labels[k] === v);
    const service = one('service.yaml', 'Service');
    assert.equal(at(service, 'spec', 'sessionAffinity'), 'None');
    assert.ok(matches(at(service, 'spec', 'selector') as Obj));
    assert.equal((at(service, 'spec', 'ports') as Obj[])[0]?.targetPort, 'http');
    const pdb = one('pdb.yaml', 'PodDisruptionBudget');
    assert.ok(matches(at(pdb, 'spec', 'selector', 'matchLabels') as Obj));
    assert.ok(Number(at(pdb, 'spec', 'minAvailable')) >= 2);
    const np = one('networkpolicy.yaml', 'NetworkPolicy');
    assert.ok(matches(at(np, 'spec', 'podSelector', 'matchLabels') as Obj));
  });

  test('the load balancer: SSE-friendly timeouts and buffering, a body limit above maxRequestBytes', () => {
    const ingress = one('ingress.yaml', 'Ingress');
    const a = at(ingress, 'metadata', 'annotations') as Record<string, string>;
    assert.ok(Number(a['nginx.ingress.kubernetes.io/proxy-read-timeout']) >= 3600);
    assert.equal(a['nginx.ingress.kubernetes.io/proxy-buffering'], 'off');
    const config = parseConfig(parseAllDocuments(gatehouseYaml)[0]?.toJS());
    const body = /^(\d+)m$/.exec(a['nginx.ingress.kubernetes.io/proxy-body-size'] ?? '');
    assert.ok(body && Number(body[1]) * 1024 * 1024 > config.limits.maxRequestBytes);
  });
});
