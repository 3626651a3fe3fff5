import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { parseAllDocuments } from "yaml";

/**
 * deploy/helm/dsops through the real `helm` (v3.22.0, built from source by
 * scripts/peers/build-helm.sh) and `k8s-validate` (built alongside: it decodes every rendered
 * document strictly into the k8s.io/api Go type of its apiVersion/kind, which is how the rendered
 * manifests are checked against the Kubernetes schemas offline). `helm lint --strict` and
 * values.schema.json refuse bad values naming the field; the rendered objects are read back and
 * checked: the queue's database URL reaches the pods only through a secretKeyRef, the CronJob
 * runs `rotation run --due` with concurrencyPolicy Forbid, the workers' grace period outlasts
 * their job timeout, the pods are hardened.
 *
 * Skipped, saying why, only when the helm build is missing AND DSOPS_REQUIRE_HELM is unset
 * (`npm test` builds it in its set-up and sets DSOPS_REQUIRE_HELM=1, so CI cannot skip).
 */

const ROOT = join(__dirname, "..", "..", "..");
const CHART = join(ROOT, "deploy", "helm", "dsops");
const BUILD = join(ROOT, "scripts", "peers", "build-helm.sh");

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
};

/** The bin dir of the helm build, building it when DSOPS_REQUIRE_HELM is set; undefined: skip. */
function helmBinDir(): { dir?: string; why?: string } {
  const check = spawnSync("bash", [BUILD, "--check"], { encoding: "utf8" });
  if (check.status === 0) return { dir: check.stdout.trim().split("\n").pop() };
  if (!process.env.DSOPS_REQUIRE_HELM)
    return { why: "helm is not built here (scripts/peers/build-helm.sh, or `bash scripts/setup.sh --helm`) and DSOPS_REQUIRE_HELM is unset" };
  const build = spawnSync("bash", [BUILD], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  assert.equal(build.status, 0, "DSOPS_REQUIRE_HELM is set and scripts/peers/build-helm.sh failed");
  return { dir: build.stdout.trim().split("\n").pop() };
}

describe("deploy/helm/dsops: helm lint, helm template and the rendered manifests (real helm v3.22.0, k8s.io/api strict decoding)", function () {
  this.timeout(120_000);
  let bin = "";
  let work = "";
  // A password that must never appear in clear in anything rendered but the Secret's base64.
  const password = randomBytes(12).toString("hex");
  const dbUrl = `postgresql://dsops:${password}@queue-db.example:5432/dsops`;

  before(function () {
    const found = helmBinDir();
    if (!found.dir) {
      console.log(`      skipped: ${found.why}`);
      this.skip();
    }
    bin = found.dir as string;
    work = mkdtempSync(join(tmpdir(), "dsops-helm-"));
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  function run(cmd: string, args: string[], input?: string): Run {
    const r = spawnSync(join(bin, cmd), args, {
      encoding: "utf8",
      input,
      // helm's own state (repositories, cache) in the test's folder, never the user's.
      env: { ...process.env, HELM_CACHE_HOME: join(work, "cache"), HELM_CONFIG_HOME: join(work, "config"), HELM_DATA_HOME: join(work, "data") },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }
  function valuesFile(name: string, text: string): string {
    const f = join(work, `${name}.yaml`);
    writeFileSync(f, text);
    return f;
  }
  function lint(files: string[], strict = true): Run {
    return run("helm", ["lint", ...(strict ? ["--strict"] : []), CHART, ...files.flatMap((f) => ["-f", f])]);
  }
  function template(files: string[]): Run {
    return run("helm", ["template", "rel", CHART, "--namespace", "ops", ...files.flatMap((f) => ["-f", f])]);
  }
  /** Render, validate with k8s-validate, lint (plain and strict) and parse: the objects by Kind/name. */
  function render(files: string[]): { text: string; objects: Map<string, Obj> } {
    for (const strict of [false, true]) {
      const l = lint(files, strict);
      assert.equal(l.status, 0, `helm lint${strict ? " --strict" : ""} failed:\n${l.stdout}\n${l.stderr}`);
    }
    const t = template(files);
    assert.equal(t.status, 0, `helm template failed:\n${t.stderr}`);
    const v = run("k8s-validate", [], t.stdout);
    assert.equal(v.status, 0, `k8s-validate refused the rendered manifests:\n${v.stderr}`);
    const objects = new Map<string, Obj>();
    for (const d of parseAllDocuments(t.stdout)) {
      const o = d.toJS() as Obj | null;
      if (!o) continue;
      objects.set(`${o.kind}/${o.metadata.name}`, o);
    }
    // One "ok" line per object: every document went through the strict decoder.
    assert.equal(v.stdout.trim().split("\n").filter((l) => l.startsWith("ok document ")).length, objects.size, v.stdout);
    return { text: t.stdout, objects };
  }
  function get(objects: Map<string, Obj>, key: string): Obj {
    const o = objects.get(key);
    assert.ok(o, `${key} not rendered (rendered: ${[...objects.keys()].join(", ")})`);
    return o;
  }
  const podSpec = (o: Obj) => (o.kind === "CronJob" ? o.spec.jobTemplate.spec.template.spec : o.spec.template.spec);
  const podMeta = (o: Obj) => (o.kind === "CronJob" ? o.spec.jobTemplate.spec.template.metadata : o.spec.template.metadata);
  function hardened(o: Obj): void {
    const spec = podSpec(o);
    assert.equal(spec.securityContext.runAsNonRoot, true, `${o.kind}/${o.metadata.name}: pod runAsNonRoot`);
    for (const c of spec.containers) {
      const sc = c.securityContext;
      assert.equal(sc.runAsNonRoot, true, `${c.name}: runAsNonRoot`);
      assert.equal(sc.readOnlyRootFilesystem, true, `${c.name}: readOnlyRootFilesystem`);
      assert.equal(sc.allowPrivilegeEscalation, false, `${c.name}: allowPrivilegeEscalation`);
      assert.deepEqual(sc.capabilities.drop, ["ALL"], `${c.name}: capabilities.drop`);
      assert.ok(c.resources?.requests?.memory && c.resources?.limits?.memory, `${c.name}: resources`);
      // The read-only root needs writable scratch space: HOME and /tmp are emptyDirs.
      const mounts = Object.fromEntries((c.volumeMounts as Array<{ name: string; mountPath: string }>).map((m) => [m.mountPath, m.name]));
      assert.equal(mounts["/tmp"], "tmp");
      assert.equal(mounts["/etc/dsops"], "config");
    }
  }
  /** The queue URL only ever through a secretKeyRef: never in args, command or an env value. */
  function urlOnlyFromSecret(o: Obj, secretName: string, key: string): void {
    for (const c of podSpec(o).containers) {
      const env = c.env as Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
      const url = env.filter((e) => e.name === "DSOPS_WORKER_DATABASE_URL");
      assert.equal(url.length, 1, `${c.name}: DSOPS_WORKER_DATABASE_URL once`);
      assert.equal(url[0].value, undefined, `${c.name}: DSOPS_WORKER_DATABASE_URL must not be a literal value`);
      assert.deepEqual(url[0].valueFrom?.secretKeyRef, { name: secretName, key });
      const args = [...(c.command ?? []), ...(c.args ?? [])].map(String);
      assert.ok(!args.includes("--database-url"), `${c.name}: --database-url in args: ${args.join(" ")}`);
      assert.ok(!args.some((a) => /postgres(ql)?:\/\//.test(a)), `${c.name}: a URL in args: ${args.join(" ")}`);
      for (const e of env) assert.ok(!/postgres(ql)?:\/\//.test(e.value ?? ""), `${c.name}: env ${e.name} holds a URL`);
    }
  }
  const argsOf = (o: Obj, i = 0): string[] => (podSpec(o).containers[i].args as unknown[]).map(String);

  it("default values: lint --strict passes; a ConfigMap and the rotation CronJob (`rotation run --due`, Forbid, backoffLimit 0, startingDeadlineSeconds) validate strictly", () => {
    const { objects } = render([]);
    assert.deepEqual([...objects.keys()].sort(), ["ConfigMap/rel-dsops-config", "CronJob/rel-dsops-rotation"]);
    const cj = get(objects, "CronJob/rel-dsops-rotation");
    assert.equal(cj.apiVersion, "batch/v1");
    assert.equal(cj.spec.schedule, "*/5 * * * *");
    assert.equal(cj.spec.concurrencyPolicy, "Forbid");
    assert.equal(cj.spec.startingDeadlineSeconds, 120);
    assert.equal(cj.spec.jobTemplate.spec.backoffLimit, 0);
    assert.equal(podSpec(cj).restartPolicy, "Never");
    const c = podSpec(cj).containers[0];
    assert.deepEqual(c.command, ["dsops"]);
    assert.deepEqual(argsOf(cj), ["--config", "/etc/dsops/dsops.yaml", "rotation", "run", "--due"]);
    // dsops.yaml from the chart's ConfigMap, under the key the --config path names.
    const vol = (podSpec(cj).volumes as Array<{ name: string; configMap?: { name: string; items: Array<{ key: string }> } }>).find((v) => v.name === "config");
    assert.equal(vol?.configMap?.name, "rel-dsops-config");
    assert.ok(get(objects, "ConfigMap/rel-dsops-config").data?.["dsops.yaml"]?.includes("version: 1"));
    // The CronJob does not use the job queue: no database URL at all.
    assert.ok(!(c.env as Array<{ name: string }>).some((e) => e.name === "DSOPS_WORKER_DATABASE_URL"));
    hardened(cj);
  });

  it("workers with database.url: a Secret holds the URL, which reaches the worker and scheduler pods only through secretKeyRef; grace period above the job timeout; metrics port and scrape annotations", () => {
    const f = valuesFile("workers", `workers:\n  enabled: true\n  replicas: 3\n  concurrency: 4\n  jobTimeoutSeconds: 600\ndatabase:\n  url: "${dbUrl}"\ncronJob:\n  enabled: false\nserviceAccount:\n  create: true\n`);
    const { text, objects } = render([f]);
    assert.deepEqual([...objects.keys()].sort(), ["ConfigMap/rel-dsops-config", "Deployment/rel-dsops-scheduler", "Deployment/rel-dsops-worker", "Secret/rel-dsops-database", "ServiceAccount/rel-dsops"]);
    // The URL in clear nowhere in the rendering (only base64 in the Secret); the password neither.
    assert.ok(!text.includes(password), "the database password appears in the rendered manifests");
    const secret = get(objects, "Secret/rel-dsops-database");
    assert.equal(Buffer.from(secret.data?.["database-url"] ?? "", "base64").toString(), dbUrl);
    const worker = get(objects, "Deployment/rel-dsops-worker");
    const scheduler = get(objects, "Deployment/rel-dsops-scheduler");
    for (const d of [worker, scheduler]) {
      urlOnlyFromSecret(d, "rel-dsops-database", "database-url");
      hardened(d);
      assert.equal(podSpec(d).serviceAccountName, "rel-dsops");
      const ann = podMeta(d).annotations as Record<string, string>;
      assert.equal(ann["prometheus.io/scrape"], "true");
      assert.equal(ann["prometheus.io/port"], "9464");
      assert.equal(ann["prometheus.io/path"], "/metrics");
      assert.deepEqual(podSpec(d).containers[0].ports, [{ name: "metrics", containerPort: 9464, protocol: "TCP" }]);
      const a = argsOf(d);
      assert.equal(a[a.indexOf("--metrics-listen") + 1], "0.0.0.0:9464");
      // The scheduler sets the timeout and retries on the jobs it queues: both get the same.
      assert.equal(a[a.indexOf("--job-timeout") + 1], "600s");
      assert.equal(a[a.indexOf("--retry-limit") + 1], "3");
    }
    assert.equal(worker.spec.replicas, 3);
    const wa = argsOf(worker);
    assert.deepEqual(wa.slice(0, 5), ["--config", "/etc/dsops/dsops.yaml", "worker", "--concurrency", "4"]);
    assert.ok(!wa.includes("--scheduler"), "workers do not schedule in mode deployment");
    assert.ok(podSpec(worker).terminationGracePeriodSeconds > 600, `grace ${podSpec(worker).terminationGracePeriodSeconds} must outlast the 600 s job timeout`);
    assert.equal(podSpec(worker).terminationGracePeriodSeconds, 660);
    const sa = argsOf(scheduler);
    assert.deepEqual(sa.slice(0, 8), ["--config", "/etc/dsops/dsops.yaml", "worker", "--scheduler", "--concurrency", "0", "--interval", "1m"]);
    assert.equal(scheduler.spec.replicas, 1);
    // Selectors keep the worker and scheduler pods apart.
    assert.equal(worker.spec.selector.matchLabels["app.kubernetes.io/component"], "worker");
    assert.equal(scheduler.spec.selector.matchLabels["app.kubernetes.io/component"], "scheduler");
  });

  it("database.existingSecret: no Secret is rendered; the pods read that Secret's key", () => {
    const f = valuesFile("existing", "workers:\n  enabled: true\ndatabase:\n  existingSecret: queue-db\n  secretKey: url\n");
    const { objects } = render([f]);
    assert.ok(![...objects.values()].some((o) => o.kind === "Secret"), "a Secret was rendered although existingSecret is set");
    urlOnlyFromSecret(get(objects, "Deployment/rel-dsops-worker"), "queue-db", "url");
    urlOnlyFromSecret(get(objects, "Deployment/rel-dsops-scheduler"), "queue-db", "url");
    // The CronJob is on by default alongside the workers.
    assert.ok(objects.has("CronJob/rel-dsops-rotation"));
  });

  it("scheduler.mode workers: no scheduler Deployment; every worker pod runs --scheduler with the interval", () => {
    const f = valuesFile("sched", "workers:\n  enabled: true\n  terminationGracePeriodSeconds: 1000\ndatabase:\n  existingSecret: queue-db\nscheduler:\n  mode: workers\n  interval: 30s\n");
    const { objects } = render([f]);
    assert.ok(!objects.has("Deployment/rel-dsops-scheduler"));
    const a = argsOf(get(objects, "Deployment/rel-dsops-worker"));
    assert.equal(a[a.indexOf("--scheduler") + 2], "30s");
    assert.equal(a[a.indexOf("--interval") + 1], "30s");
    assert.equal(podSpec(get(objects, "Deployment/rel-dsops-worker")).terminationGracePeriodSeconds, 1000);
  });

  it("metrics.enabled false: no --metrics-listen, no port, no prometheus.io annotations; existingConfigMap: no ConfigMap, the pods mount that one", () => {
    const f = valuesFile("nometrics", "workers:\n  enabled: true\ndatabase:\n  existingSecret: queue-db\nmetrics:\n  enabled: false\nconfig:\n  existingConfigMap: ops-dsops\n  key: config.yaml\n  mountPath: /config\n");
    const { objects } = render([f]);
    assert.ok(!objects.has("ConfigMap/rel-dsops-config"));
    for (const key of ["Deployment/rel-dsops-worker", "Deployment/rel-dsops-scheduler", "CronJob/rel-dsops-rotation"]) {
      const o = get(objects, key);
      const a = argsOf(o);
      assert.ok(!a.includes("--metrics-listen"), `${key}: ${a.join(" ")}`);
      assert.deepEqual(a.slice(0, 2), ["--config", "/config/config.yaml"]);
      assert.equal(podSpec(o).containers[0].ports, undefined);
      assert.ok(!Object.keys(podMeta(o).annotations ?? {}).some((k) => k.startsWith("prometheus.io/")), key);
      const vol = (podSpec(o).volumes as Array<{ name: string; configMap?: { name: string } }>).find((v) => v.name === "config");
      assert.equal(vol?.configMap?.name, "ops-dsops");
    }
  });

  it("a long release name: the CronJob's name stays within the 52 characters Kubernetes allows (k8s-validate checks it)", () => {
    const long = "a".repeat(52);
    const f = valuesFile("long", `fullnameOverride: ${long}\n`);
    const { objects } = render([f]);
    const cj = [...objects.values()].find((o) => o.kind === "CronJob") as Obj;
    assert.equal(cj.metadata.name, `${"a".repeat(43)}-rotation`);
    const r = run("k8s-validate", [], `apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: ${long}-rotation}\nspec:\n  schedule: "* * * * *"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{name: c, image: i}]\n`);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /metadata\.name "a+-rotation": a CronJob's name must be at most 52 characters, not 61/);
  });

  describe("bad values fail, naming the field", () => {
    const cases: Array<[string, string, RegExp]> = [
      ["replicas: many", "workers:\n  replicas: many\n", /\/workers\/replicas': got string, want integer/],
      ["no image repository", "image:\n  repository: null\n", /at '\/image': missing property 'repository'/],
      ["no image at all", "image: null\n", /missing property 'image'/],
      ["empty image repository", "image:\n  repository: \"\"\n", /\/image\/repository': minLength/],
      ["workers without a database", "workers:\n  enabled: true\n", /\/database\/(url|existingSecret)': minLength/],
      ["a misspelt key", "cronJob:\n  schedul: \"*/5 * * * *\"\n", /\/cronJob': additional properties 'schedul' not allowed/],
      ["a writable root filesystem", "securityContext:\n  readOnlyRootFilesystem: false\n", /\/securityContext\/readOnlyRootFilesystem': value must be true/],
      ["an unknown scheduler mode", "scheduler:\n  mode: sometimes\n", /\/scheduler\/mode': value must be one of/],
      ["a cron schedule of 3 fields", "cronJob:\n  schedule: \"*/5 * *\"\n", /\/cronJob\/schedule'/],
      ["a database URL of another scheme", "database:\n  url: mysql://x/y\n", /\/database\/url'/],
    ];
    for (const [name, yaml, field] of cases)
      it(`${name}: helm lint fails`, () => {
        const f = valuesFile(`bad-${name.replace(/\W+/g, "-")}`, yaml);
        const r = lint([f]);
        assert.notEqual(r.status, 0, `helm lint accepted ${JSON.stringify(yaml)}:\n${r.stdout}`);
        assert.match(r.stdout + r.stderr, field);
        // helm template refuses it too (what `helm install` renders).
        assert.notEqual(template([f]).status, 0);
      });

    it("a grace period not above the job timeout: helm template fails naming both values", () => {
      const f = valuesFile("bad-grace", "workers:\n  enabled: true\n  jobTimeoutSeconds: 900\n  terminationGracePeriodSeconds: 900\ndatabase:\n  existingSecret: queue-db\n");
      const r = template([f]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /workers\.terminationGracePeriodSeconds \(900\) must be above workers\.jobTimeoutSeconds \(900\)/);
    });
  });

  describe("k8s-validate refuses what the API server would", () => {
    function workersRendering(): string {
      const f = valuesFile("v", "workers:\n  enabled: true\ndatabase:\n  existingSecret: queue-db\n");
      const t = template([f]);
      assert.equal(t.status, 0, t.stderr);
      return t.stdout;
    }
    it("an unknown field deep in a Deployment: named with its path and the document's source", () => {
      const text = workersRendering().replace(/imagePullPolicy: IfNotPresent/g, "imagePullPolicyy: IfNotPresent");
      const r = run("k8s-validate", [], text);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /\(dsops\/templates\/worker-deployment\.yaml\) Deployment\/rel-dsops-worker: unknown field "spec\.template\.spec\.containers\[0\]\.imagePullPolicyy"/);
      assert.match(r.stderr, /CronJob\/rel-dsops-rotation: unknown field "spec\.jobTemplate\.spec\.template\.spec\.containers\[0\]\.imagePullPolicyy"/);
    });
    it("a value of the wrong type, an unknown kind, a duplicate key, a bad name", () => {
      const text = workersRendering().replace(/replicas: 2/, 'replicas: "2"');
      const r1 = run("k8s-validate", [], text);
      assert.equal(r1.status, 1);
      assert.match(r1.stderr, /Deployment\/rel-dsops-worker: .*cannot unmarshal string into Go struct field .*replicas of type int32/);
      const r2 = run("k8s-validate", [], "apiVersion: batch/v1\nkind: CronJobs\nmetadata: {name: x}\n");
      assert.match(r2.stderr, /document 1 CronJobs\/x: apiVersion "batch\/v1", kind "CronJobs": not a Kubernetes API type/);
      const r3 = run("k8s-validate", [], "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: Opaque\ntype: Opaque\n");
      assert.match(r3.stderr, /document 1: not valid YAML: .*key "type" already set/s);
      const r4 = run("k8s-validate", [], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n");
      assert.match(r4.stderr, /ConfigMap\/Bad_Name: metadata\.name "Bad_Name": a lowercase RFC 1123 subdomain/);
      for (const r of [r2, r3, r4]) assert.equal(r.status, 1);
    });
  });

  it("NOTES.txt names the CronJob, the workers and where the queue URL comes from", () => {
    // `helm install --dry-run` wants a cluster: render NOTES.txt through helm's own engine from a
    // copy of the chart with one more template that includes it.
    const copy = join(work, "notes-chart");
    cpSync(CHART, copy, { recursive: true });
    writeFileSync(join(copy, "templates", "zz-notes.yaml"), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "dsops/templates/NOTES.txt" . | quote }}\n');
    const f = valuesFile("notes", "workers:\n  enabled: true\ndatabase:\n  existingSecret: queue-db\n");
    const r = run("helm", ["template", "rel", copy, "--namespace", "ops", "--show-only", "templates/zz-notes.yaml", "-f", f]);
    assert.equal(r.status, 0, r.stderr);
    const notes = String((parseAllDocuments(r.stdout)[0].toJS() as Obj).data?.notes);
    assert.match(notes, /CronJob rel-dsops-rotation runs `dsops rotation run --due` on "\*\/5 \* \* \* \*"/);
    assert.match(notes, /Secret queue-db, key database-url \(DSOPS_WORKER_DATABASE_URL\)/);
    assert.match(notes, /grace period 960s/);
    assert.match(notes, /Scheduler: Deployment rel-dsops-scheduler/);
    assert.match(notes, /kubectl -n ops create job --from=cronjob\/rel-dsops-rotation/);
  });

  it("the chart's own files are what helm packages (Chart.yaml, values.schema.json present)", () => {
    const schema = JSON.parse(readFileSync(join(CHART, "values.schema.json"), "utf8")) as { required: string[] };
    assert.ok(schema.required.includes("image"));
    const r = run("helm", ["package", CHART, "--destination", work]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /dsops-0\.1\.0\.tgz/);
  });
});
