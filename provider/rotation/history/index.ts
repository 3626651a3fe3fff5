/** Rotation history backends: the file one here, the postgres one loaded on demand (./postgres). */
export type { HistoryBackend, HistoryFilter } from "./types";
export { FileHistory, defaultHistoryPath } from "./file";
