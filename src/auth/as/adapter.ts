/**
 * The oidc-provider storage adapter on our backend-neutral `Storage`
 * (`storage.oauth`). One adapter instance per oidc-provider model name.
 * For the `Client` model, a client_id that is a metadata document URL is
 * resolved through {@link ClientIdMetadataDocuments} when it is not stored.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { Storage } from '../../storage/types.ts';
import type { ClientIdMetadataDocuments } from './cimd.ts';

/**
 * Builds the adapter class oidc-provider instantiates once per model. `beforeGrantDestroyed` runs
 * before an oidc-provider `Grant` is destroyed (it does that only when it revokes the grant); a
 * failure keeps the grant.
 */
export function storageAdapter(
  storage: Storage,
  cimd: ClientIdMetadataDocuments | undefined,
  beforeGrantDestroyed?: (grantId: string) => Promise<void>,
): new (
  name: string,
) => Adapter {
  return class StorageAdapter implements Adapter {
    constructor(private readonly model: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
      await storage.oauth.upsert(
        this.model,
        id,
        payload as Record<string, unknown>,
        expiresAt,
        payload.grantId,
        payload.userCode,
        payload.uid,
      );
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      const found = (await storage.oauth.find(this.model, id)) as AdapterPayload | undefined;
      if (found || this.model !== 'Client' || !cimd?.isCandidate(id)) return found;
      return (await cimd.resolve(id)) as AdapterPayload;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return (await storage.oauth.findByUserCode(this.model, userCode)) as AdapterPayload | undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return (await storage.oauth.findByUid(this.model, uid)) as AdapterPayload | undefined;
    }

    async consume(id: string): Promise<void> {
      await storage.oauth.consume(this.model, id, Math.floor(Date.now() / 1000));
    }

    async destroy(id: string): Promise<void> {
      if (this.model === 'Grant' && beforeGrantDestroyed) await beforeGrantDestroyed(id);
      await storage.oauth.destroy(this.model, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await storage.oauth.revokeByGrantId(grantId);
    }
  };
}
