/** Public API for embedding and tests. */
export { ConfigError, loadConfigFile, parseConfig, parseConfigYaml } from './config/load.ts';
export type { GatehouseConfig, GatehouseConfigInput } from './config/schema.ts';
export { ERRORS, type ErrorCode, GatehouseError } from './errors.ts';
export { type RunningGateway, type StartOptions, startGateway } from './gateway.ts';
