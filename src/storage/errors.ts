/**
 * Start-up and connectivity failures of a store (its configuration, its server, its schema).
 * They stop the gateway or a CLI verb before anything is served; a failure while serving
 * surfaces as the request's own error.
 */

/** Why a store could not be used. */
export type StoreErrorCode =
  /** The store's configuration is unusable (e.g. a schema name that is not a plain identifier). */
  | 'store_config'
  /** The database server cannot be reached or refused the connection. */
  | 'store_unreachable'
  /** The schema lacks migrations this build needs and `migrate` is `manual`: run `gatehouse migrate`. */
  | 'store_schema_behind'
  /** A migration failed (rolled back; nothing of it applied). */
  | 'store_migration_failed';

/** A store failure with a typed code; `message` names what to do, `cause` keeps the driver's error. */
export class StoreError extends Error {
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'StoreError';
    this.code = code;
  }
}
