import { strict as assert } from "node:assert";
import { passwordForm, serverFlavor } from "../../provider/rotation/targets/mysql";

/**
 * The mysql target's choice of statement per server. MariaDB is tested against a real server
 * (tests/integration/rotation-targets-mysql.test.ts); MySQL cannot be installed on the test
 * machine, so its branch is checked here from the version strings a MySQL server reports.
 */
describe("mysql target: server detection and password statement", () => {
  it("tells MariaDB from MySQL by SELECT VERSION() and @@version_comment", () => {
    assert.equal(serverFlavor("10.11.6-MariaDB-0+deb12u1-log", "Debian 12"), "mariadb");
    assert.equal(serverFlavor("11.4.2-MariaDB", "MariaDB Server"), "mariadb");
    assert.equal(serverFlavor("5.5.5-10.6.12-MariaDB", ""), "mariadb");
    assert.equal(serverFlavor("10.6.12", "mariadb.org binary distribution"), "mariadb");
    assert.equal(serverFlavor("8.0.36", "MySQL Community Server - GPL"), "mysql");
    assert.equal(serverFlavor("8.4.0", "MySQL Community Server - GPL"), "mysql");
    assert.equal(serverFlavor("8.0.35-27", "Percona Server (GPL), Release 27"), "mysql");
    assert.equal(serverFlavor("5.7.44-log", "MySQL Community Server (GPL)"), "mysql");
  });

  it("MariaDB: the hash (client-native) or the escaped password (server)", () => {
    const maria = { flavor: "mariadb" as const, version: "10.11.6-MariaDB" };
    assert.deepEqual(passwordForm(maria, "client-native", "db"), { form: "hash" });
    assert.deepEqual(passwordForm(maria, "server", "db"), { form: "plain" });
  });

  it("MySQL: client-native is refused with a message naming the version and a hint; server keeps the account's plugin", () => {
    const mysql = { flavor: "mysql" as const, version: "8.0.36" };
    const refused = passwordForm(mysql, "client-native", "app-db");
    assert.equal(refused.form, "refuse");
    if (refused.form !== "refuse") return;
    assert.match(refused.message, /^service "app-db": the server is MySQL 8\.0\.36, .*IDENTIFIED BY PASSWORD, which MySQL 8\.0 removed; nothing was changed$/);
    assert.match(refused.hint, /password_hashing: server on services\.app-db/);
    assert.match(refused.hint, /MariaDB only/);
    assert.deepEqual(passwordForm(mysql, "server", "app-db"), { form: "plain-with-plugin" });
  });
});
