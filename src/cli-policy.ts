/**
 * `gatehouse policy validate FILE...` and `gatehouse policy test FILE`
 * (table-driven decisions, exit 1 on a mismatch, like `opa test`).
 */
import { loadPolicySet, PolicyLoadError, policyTestCommand } from './policy/index.ts';

export const POLICY_USAGE = `  policy validate FILE...
        parse and validate Cedar policy files against the Gatehouse schema
  policy test FILE
        run a YAML table of decisions (principal, action, tool, args → expected); exit 1 on a mismatch
`;

export function policyCommand(argv: string[]): number {
  const [verb, ...files] = argv;
  if (verb === 'test' && files.length === 1 && files[0])
    return policyTestCommand(files[0], (l) => process.stdout.write(`${l}\n`));
  if (verb === 'validate' && files.length > 0) {
    try {
      const set = loadPolicySet({ files });
      process.stdout.write(`${files.length} file(s), ${set.policies.length} policies: ok\n`);
      return 0;
    } catch (err) {
      if (!(err instanceof PolicyLoadError)) throw err;
      for (const p of err.problems) {
        process.stderr.write(
          `${p.file}${p.line !== undefined ? `:${p.line}` : ''}: ${p.policyId ? `${p.policyId}: ` : ''}${p.message}\n`,
        );
      }
      return 1;
    }
  }
  process.stderr.write(`usage:\n${POLICY_USAGE}`);
  return 2;
}
