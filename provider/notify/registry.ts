import type { NotifierFactory, NotifierType } from "./types";

/**
 * Every notifier type and its factory. The Record is exhaustive: a type added to
 * `notifierTypes` without a factory does not compile. Each factory `require`s its file, so
 * nodemailer is loaded only when email is configured.
 */
export const notifierFactories: Readonly<Record<NotifierType, NotifierFactory>> = {
  slack: (raw, ctx, path) => (require("./slack") as typeof import("./slack")).createSlackNotifier(raw, ctx, path),
  email: (raw, ctx, path) => (require("./email") as typeof import("./email")).createEmailNotifier(raw, ctx, path),
  pagerduty: (raw, ctx, path) => (require("./pagerduty") as typeof import("./pagerduty")).createPagerdutyNotifier(raw, ctx, path),
  webhook: (raw, ctx, path) => (require("./webhook") as typeof import("./webhook")).createWebhookNotifier(raw, ctx, path),
};
