/**
 * The Node.js flags Gatehouse is started with: the launchers (the `gatehouse` bin's shebang, `npm start`,
 * the Dockerfile's ENTRYPOINT, the benchmark) all pass exactly these; test/cluster/deploy.test.ts
 * keeps them in step. They cannot be set from the config file: V8 sizes its heap before any of our code
 * runs.
 *
 * `--max-semi-space-size=64` (MiB; Node 20's default is 16): every call allocates about 50 KB that dies
 * within milliseconds (parsed messages, audit records, promises), and the write-ahead audit keeps each
 * call's objects alive across a group commit (about 3 ms at 64 calls in flight). With 16 MiB semi-spaces
 * the young generation fills every few hundred calls and those in-flight objects are copied and promoted
 * again and again; with 64 MiB scavenges are four times rarer. Measured on the bench's c64_s64 HTTP case
 * (bench/README.md): garbage collection fell from 11–14% to 7–9% of Gatehouse's CPU. The cost is
 * memory: the young generation may grow to 2 × 64 MiB under sustained load (it starts small and grows
 * only while objects survive). Operators who need the memory back start `node dist/cli/index.js` with
 * flags of their own (docs/deploy.md, "Node flags"; command-line flags win over NODE_OPTIONS).
 */
export const RUNTIME_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
