import type * as pulumi from "@pulumi/pulumi";

/**
 * The dynamic providers, one object per resource type, made once and capturing nothing per
 * resource. Each method only `require`s the handlers from the installed package, so Pulumi's
 * closure serialization emits a require (not a copy of the engine) and every resource of a
 * type carries the same small serialized provider.
 */
export const secretReferenceProvider: pulumi.dynamic.ResourceProvider = {
  configure: async (req) => require("@dsops/pulumi/provider/dynamic/handlers").configure((k: string) => req.config.get(k)),
  check: (olds, news) => require("@dsops/pulumi/provider/dynamic/handlers").secretReference.check(olds, news),
  diff: (id, olds, news) => require("@dsops/pulumi/provider/dynamic/handlers").secretReference.diff(id, olds, news),
  create: (inputs) => require("@dsops/pulumi/provider/dynamic/handlers").secretReference.create(inputs),
  read: (id, props) => require("@dsops/pulumi/provider/dynamic/handlers").secretReference.read(id, props),
  update: (id, olds, news) => require("@dsops/pulumi/provider/dynamic/handlers").secretReference.update(id, olds, news),
  delete: () => require("@dsops/pulumi/provider/dynamic/handlers").secretReference.delete(),
};

export const environmentProvider: pulumi.dynamic.ResourceProvider = {
  configure: async (req) => require("@dsops/pulumi/provider/dynamic/handlers").configure((k: string) => req.config.get(k)),
  check: (olds, news) => require("@dsops/pulumi/provider/dynamic/handlers").environment.check(olds, news),
  diff: (id, olds, news) => require("@dsops/pulumi/provider/dynamic/handlers").environment.diff(id, olds, news),
  create: (inputs) => require("@dsops/pulumi/provider/dynamic/handlers").environment.create(inputs),
  read: (id, props) => require("@dsops/pulumi/provider/dynamic/handlers").environment.read(id, props),
  update: (id, olds, news) => require("@dsops/pulumi/provider/dynamic/handlers").environment.update(id, olds, news),
  delete: () => require("@dsops/pulumi/provider/dynamic/handlers").environment.delete(),
};

export const maintenanceWindowProvider: pulumi.dynamic.ResourceProvider = {
  check: (olds, news) => require("@dsops/pulumi/provider/dynamic/handlers").maintenanceWindow.check(olds, news),
  diff: (id, olds, news) => require("@dsops/pulumi/provider/dynamic/handlers").maintenanceWindow.diff(id, olds, news),
  create: (inputs) => require("@dsops/pulumi/provider/dynamic/handlers").maintenanceWindow.create(inputs),
  read: (id, props) => require("@dsops/pulumi/provider/dynamic/handlers").maintenanceWindow.read(id, props),
  update: (id, olds, news) => require("@dsops/pulumi/provider/dynamic/handlers").maintenanceWindow.update(id, olds, news),
  delete: () => require("@dsops/pulumi/provider/dynamic/handlers").maintenanceWindow.delete(),
};

export const rotationPolicyProvider: pulumi.dynamic.ResourceProvider = {
  configure: async (req) => require("@dsops/pulumi/provider/dynamic/handlers").configure((k: string) => req.config.get(k)),
  check: (olds, news) => require("@dsops/pulumi/provider/dynamic/handlers").rotationPolicy.check(olds, news),
  diff: (id, olds, news) => require("@dsops/pulumi/provider/dynamic/handlers").rotationPolicy.diff(id, olds, news),
  create: (inputs) => require("@dsops/pulumi/provider/dynamic/handlers").rotationPolicy.create(inputs),
  read: (id, props) => require("@dsops/pulumi/provider/dynamic/handlers").rotationPolicy.read(id, props),
  update: (id, olds, news) => require("@dsops/pulumi/provider/dynamic/handlers").rotationPolicy.update(id, olds, news),
  delete: (id, props) => require("@dsops/pulumi/provider/dynamic/handlers").rotationPolicy.delete(id, props),
};
