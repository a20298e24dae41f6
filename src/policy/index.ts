/** Policy engine: Cedar policies for least privilege per task. See docs/policy.md. */
export {
  argsToTags,
  type CacheStats,
  type Decision,
  type DecisionRequest,
  type PolicyAction,
  PolicyEngine,
  type PolicyEngineOptions,
  type RoleMap,
  resourceEntityId,
  type ToolAttributes,
} from './engine.ts';
export {
  contextFieldsRead,
  DYNAMIC_CONTEXT_FIELDS,
  type LoadedPolicy,
  loadPolicySet,
  PolicyLoadError,
  type PolicyProblem,
  type PolicySet,
  splitPolicies,
} from './load.ts';
export { GATEHOUSE_SCHEMA, NAMESPACE } from './schema.ts';
export {
  type PolicyTestFailure,
  type PolicyTestResult,
  policyTestCommand,
  runPolicyTests,
} from './test-runner.ts';
