import { AsyncLocalStorage } from "node:async_hooks";
import { Resolver as EngineResolver, type EnvResult } from "../engine/resolve";
import type { SecretRef } from "../engine/refs";
import type { Secret } from "../core/secret";
import type { SecretVersion } from "../stores/types";
import { audited } from "../guard/policy";
import { sealedOfEnv, sealedOfRef, withSealedReads } from "../compose/sealed-reads";

/** Set inside an audited call: the calls it makes (resolveRef → fetch) are part of that access. */
const inside = new AsyncLocalStorage<true>();

const refEntry = (ref: SecretRef) => ({ store: ref.store, key: ref.key });

/**
 * The library's Resolver: the engine's, with every access written to the audit log of
 * `policies.audit_logging` (the same JSON lines as the CLI's, `face: "library"`, command
 * `library <method>`; never a value). Without audit logging it is the engine's Resolver. A sealed
 * value (`access: breakglass`) is read only under an open break-glass grant, the read recorded on it.
 */
export class Resolver extends EngineResolver {
  override resolveEnv(envName: string, only?: readonly string[]): Promise<EnvResult> {
    if (inside.getStore()) return super.resolveEnv(envName, only);
    return inside.run(true, () =>
      audited(this.config, { command: "library resolveEnv", face: "library", env: envName, ...(only ? { variables: only.map((name) => ({ name })) } : {}) }, async (note) => {
        const res = await withSealedReads(this.config, sealedOfEnv(this.config, envName, only), "library resolveEnv", () => super.resolveEnv(envName, only));
        note({ variables: Object.values(res.variables).map((v) => ({ name: v.name, ...(v.store ? { store: v.store } : {}), ...(v.key ? { key: v.key } : {}), ...(v.versionId ? { versionId: v.versionId } : {}) })) });
        return res;
      }),
    );
  }

  override resolveRef(ref: SecretRef): Promise<{ value: Secret; versionId: string; updatedAt?: string }> {
    if (inside.getStore()) return super.resolveRef(ref);
    return inside.run(true, () =>
      audited(this.config, { command: "library resolveRef", face: "library", ...refEntry(ref) }, () =>
        withSealedReads(this.config, sealedOfRef(this.config, ref.store, ref.key), "library resolveRef", () => super.resolveRef(ref), { anyOf: true }),
      ),
    );
  }

  override fetch(ref: SecretRef): Promise<SecretVersion> {
    if (inside.getStore()) return super.fetch(ref);
    return inside.run(true, () =>
      audited(this.config, { command: "library fetch", face: "library", ...refEntry(ref) }, () =>
        withSealedReads(this.config, sealedOfRef(this.config, ref.store, ref.key), "library fetch", () => super.fetch(ref), { anyOf: true }),
      ),
    );
  }
}
