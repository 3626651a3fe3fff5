import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onFreePort, startServer } from "./server";

const SLAPD = "/usr/sbin/slapd";

/** A running OpenLDAP slapd (Debian's package) with its own configuration, on a loopback port. */
export interface Slapd {
  /** `ldap://127.0.0.1:<port>` */
  readonly url: string;
  /** The directory's suffix, `dc=dsops,dc=test`. */
  readonly suffix: string;
  /** The root DN and its password (may bind and write anything). */
  readonly rootDn: string;
  readonly rootPassword: string;
  /** Add `uid=<uid>,ou=people,<suffix>` (an inetOrgPerson) with `password`. */
  addUser(uid: string, password: string): void;
  stop(): Promise<void>;
}

/** True when slapd and ldapadd are installed (scripts/peers/install-db.sh installs them). */
export function haveSlapd(): boolean {
  return existsSync(SLAPD) && spawnSync("ldapadd", ["-VV"], { stdio: "ignore" }).status === 0;
}

/**
 * Start slapd with a slapd.conf of its own (an mdb database in a temp folder), in the
 * foreground, and add `ou=people`. Ready when its port accepts connections.
 */
export async function startSlapd(): Promise<Slapd> {
  if (!haveSlapd()) throw new Error("slapd or ldapadd is missing: run scripts/peers/install-db.sh (it installs the slapd and ldap-utils packages)");
  const dir = mkdtempSync(join(tmpdir(), "slapd-"));
  const db = join(dir, "db");
  mkdirSync(db);
  const suffix = "dc=dsops,dc=test";
  const rootDn = `cn=admin,${suffix}`;
  const rootPassword = `root-${randomBytes(8).toString("hex")}`;
  const conf = join(dir, "slapd.conf");
  writeFileSync(
    conf,
    [
      "include /etc/ldap/schema/core.schema",
      "include /etc/ldap/schema/cosine.schema",
      "include /etc/ldap/schema/inetorgperson.schema",
      `pidfile ${join(dir, "slapd.pid")}`,
      "modulepath /usr/lib/ldap",
      "moduleload back_mdb",
      "database mdb",
      "maxsize 10485760",
      `suffix "${suffix}"`,
      `rootdn "${rootDn}"`,
      `rootpw ${rootPassword}`,
      `directory ${db}`,
      "access to * by * read",
      "",
    ].join("\n"),
  );
  const { server, url } = await onFreePort(async (port) => {
    const url = `ldap://127.0.0.1:${port}`;
    return { server: await startServer(SLAPD, ["-d", "0", "-h", `${url}/`, "-f", conf], { port, ready: () => accepts(port), timeoutMs: 30000 }), url };
  });
  const add = (ldif: string) => {
    const r = spawnSync("ldapadd", ["-x", "-H", url, "-D", rootDn, "-w", rootPassword], { input: ldif, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`ldapadd failed (${r.status}): ${r.stderr}`);
  };
  add(`dn: ${suffix}\nobjectClass: dcObject\nobjectClass: organization\ndc: dsops\no: dsops\n\ndn: ou=people,${suffix}\nobjectClass: organizationalUnit\nou: people\n`);
  return {
    url,
    suffix,
    rootDn,
    rootPassword,
    addUser: (uid, password) =>
      add(`dn: uid=${uid},ou=people,${suffix}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nuserPassword: ${password}\n`),
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1", () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}
