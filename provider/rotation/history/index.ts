/** Rotation history backends: the interface (./types) and the embedded file backend; postgres is loaded on demand. */
export type { HistoryBackend, HistoryFilter } from "./types";
export { FileHistory, defaultHistoryPath } from "./file";
