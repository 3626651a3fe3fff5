import { performance } from "node:perf_hooks";
import { termOptions } from "./term";

/** A progress line for long work: `label 12/200` on stderr. */
export interface Progress {
  /** `done` of `total` items finished. */
  update(done: number, total: number): void;
  /** Clear the line (call before printing the result). */
  end(): void;
}

const quiet: Progress = { update: () => undefined, end: () => undefined };

/**
 * A progress line on stderr, shown only when stderr is a terminal (and `DSOPS_PROGRESS` is not
 * `0`); a no-op otherwise, so pipes, CI logs and captured output stay clean. The line is
 * redrawn at most every 50 ms, and always for the last item.
 */
export function progress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  // The line is redrawn with terminal control codes: none under --no-color / NO_COLOR.
  if (!stream.isTTY || process.env.DSOPS_PROGRESS === "0" || !termOptions().color || !termOptions().interactive) return quiet;
  let shown = false;
  let last = -Infinity;
  return {
    update(done, total) {
      const now = performance.now();
      if (done < total && now - last < 50) return;
      last = now;
      shown = true;
      stream.write(`\r\x1b[K${label} ${done}/${total}`);
    },
    end() {
      if (shown) stream.write("\r\x1b[K");
      shown = false;
    },
  };
}
