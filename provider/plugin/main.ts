import { makeProvider } from "./provider";
import { serve } from "./serve";

/** Entry point of bin/pulumi-resource-dsops: the engine starts it and reads the port it prints. */
export function run(argv: string[]): Promise<void> {
  // The engine ends its plugins with SIGINT (then SIGKILL): leave cleanly, so exit hooks run.
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(0));
  return serve(makeProvider(), argv.slice(2));
}
