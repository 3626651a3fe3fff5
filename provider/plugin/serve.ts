import { dirname } from "node:path";
import type * as grpcTypes from "@grpc/grpc-js";
import { main } from "@pulumi/pulumi/provider";
import { EngineClient } from "@pulumi/pulumi/proto/engine_grpc_pb";
import { LogRequest, LogSeverity } from "@pulumi/pulumi/proto/engine_pb";
import * as provrpc from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import type { DsopsProvider, PropertyChange } from "./provider";

/**
 * Serve a provider with `main` of @pulumi/pulumi/provider (the gRPC server @pulumi/pulumi ships
 * for Node.js providers), adding what that server does not pass on yet (3.259): the stack's
 * provider configuration (its Configure answers without reading the request, and CheckConfig is
 * unimplemented) and detailed diffs (its DiffResult has no per-property changes; the reason of
 * a drift goes to the engine as a message of the resource). Those three methods of its service
 * are replaced on the service object handed to gRPC; every other RPC is the stock server's.
 */

type Call = { request: any }; // eslint-disable-line @typescript-eslint/no-explicit-any
type Callback = (err: unknown, value?: unknown) => void;

/** A module as @pulumi/pulumi resolves it (the one gRPC and protobuf instance its server uses). */
function besidePulumi<T>(id: string): T {
  const pulumiDir = dirname(require.resolve("@pulumi/pulumi/provider"));
  return require(require.resolve(id, { paths: [pulumiDir] })) as T;
}

const KIND: Record<PropertyChange["kind"], number> = {
  add: provproto.PropertyDiff.Kind.ADD,
  delete: provproto.PropertyDiff.Kind.DELETE,
  update: provproto.PropertyDiff.Kind.UPDATE,
};

function fail(callback: Callback, e: unknown): void {
  if (e instanceof Error) e.stack = e.message;
  callback(e);
}

/** The engine's address: the first argument the engine passes that is not a flag (`--tracing <to>` takes one). */
export function engineAddress(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--tracing") i++;
    else if (!args[i].startsWith("-")) return args[i];
  }
  return undefined;
}

/** Messages to the engine (shown with the resource), when it gave its address. */
function engineLog(engineAddress: string | undefined): (urn: string, message: string) => Promise<void> {
  let client: EngineClient | undefined;
  return (urn, message) => {
    if (!engineAddress) return Promise.resolve();
    client ??= new EngineClient(engineAddress, besidePulumi<typeof grpcTypes>("@grpc/grpc-js").credentials.createInsecure());
    const req = new LogRequest();
    req.setSeverity(LogSeverity.INFO);
    req.setMessage(message);
    req.setUrn(urn);
    // A message that cannot be delivered is no reason to fail the diff.
    return new Promise((resolve) => client?.log(req, () => resolve()));
  };
}

function methods(provider: DsopsProvider, log: (urn: string, message: string) => Promise<void>) {
  return {
    configure(call: Call, callback: Callback) {
      try {
        const req = call.request as provproto.ConfigureRequest;
        const values: Record<string, unknown> = {};
        // Older engines send only `variables` ("dsops:config:configFile"); newer ones also `args`.
        req.getVariablesMap().forEach((v: string, k: string) => {
          values[k.replace(/^dsops:(config:)?/, "")] = v;
        });
        Object.assign(values, req.getArgs()?.toJavaScript() ?? {});
        provider.configure(values);
        const resp = new provproto.ConfigureResponse();
        resp.setAcceptsecrets(true);
        callback(null, resp);
      } catch (e) {
        fail(callback, e);
      }
    },

    checkConfig(call: Call, callback: Callback) {
      try {
        const req = call.request as provproto.CheckRequest;
        const failures = provider.checkConfig((req.getNews()?.toJavaScript() ?? {}) as Record<string, unknown>);
        const resp = new provproto.CheckResponse();
        resp.setInputs(req.getNews());
        resp.setFailuresList(
          failures.map((f) => {
            const failure = new provproto.CheckFailure();
            failure.setProperty(f.property);
            failure.setReason(f.reason);
            return failure;
          }),
        );
        callback(null, resp);
      } catch (e) {
        fail(callback, e);
      }
    },

    async diff(call: Call, callback: Callback) {
      try {
        const req = call.request as provproto.DiffRequest;
        const olds = (req.getOlds()?.toJavaScript() ?? {}) as Record<string, unknown>;
        const news = (req.getNews()?.toJavaScript() ?? {}) as Record<string, unknown>;
        const result = await provider.diff(req.getId(), req.getUrn(), olds, news);
        if (result.reason) await log(req.getUrn(), result.reason);
        const resp = new provproto.DiffResponse();
        resp.setChanges(result.changes ? provproto.DiffResponse.DiffChanges.DIFF_SOME : provproto.DiffResponse.DiffChanges.DIFF_NONE);
        if (result.detailedDiff) {
          resp.setHasdetaileddiff(true);
          resp.setDiffsList(Object.keys(result.detailedDiff));
          const map = resp.getDetaileddiffMap();
          for (const [k, change] of Object.entries(result.detailedDiff)) {
            const d = new provproto.PropertyDiff();
            d.setKind(KIND[change.kind] as provproto.PropertyDiff.Kind);
            d.setInputdiff(change.inputDiff);
            map.set(k, d);
          }
        }
        callback(null, resp);
      } catch (e) {
        fail(callback, e);
      }
    },
  };
}

/** Serve the provider on the engine's behalf: prints the port, answers until the engine stops it. */
export async function serve(provider: DsopsProvider, args: string[]): Promise<void> {
  const grpc = besidePulumi<typeof grpcTypes>("@grpc/grpc-js");
  const proto = grpc.Server.prototype;
  const addService = proto.addService;
  const extra = methods(provider, engineLog(engineAddress(args)));
  proto.addService = function (this: grpcTypes.Server, service, implementation) {
    if (service === (provrpc as unknown as { ResourceProviderService: unknown }).ResourceProviderService) {
      const impl = Object.create(implementation) as Record<string, unknown>;
      Object.assign(impl, extra);
      return addService.call(this, service, impl as typeof implementation);
    }
    return addService.call(this, service, implementation);
  };
  try {
    await main(provider as unknown as Parameters<typeof main>[0], args);
  } finally {
    proto.addService = addService;
  }
}
