import { makeProvider } from "./provider";
import { serve } from "./serve";

/** Entry point of bin/pulumi-resource-dsops: the engine starts it and reads the port it prints. */
export function run(argv: string[]): Promise<void> {
  return serve(makeProvider(), argv.slice(2));
}
