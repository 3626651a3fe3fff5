import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { localeOrder, localeSort } from "../../provider/core/collate";

/** A seeded generator (the failures are reproducible). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const sign = (n: number) => Math.sign(n);

/** Random names: mostly upper-case/digit/underscore (the fast path), some with other characters (localeCompare's). */
function names(seed: number, count: number): string[] {
  const next = rng(seed);
  const plain = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789___";
  const other = "abzAZ09_-.éÅ aa";
  return Array.from({ length: count }, () => {
    const alphabet = next() < 0.8 ? plain : other + plain;
    const n = Math.floor(next() * 8);
    let s = "";
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(next() * alphabet.length)];
    return next() < 0.3 && s ? s + s.slice(0, 2) : s;
  });
}

describe("localeOrder: localeCompare's order without building ICU's collator (issue 20: plan's sort)", () => {
  it("agrees with localeCompare on every pair of 400 random names, and sorts 5,000 the same", () => {
    const list = names(20, 400);
    for (const a of list) for (const b of list) assert.equal(sign(localeOrder(a, b)), sign(a.localeCompare(b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    const many = names(7, 5000);
    assert.deepEqual([...many].sort(localeOrder), [...many].sort((a, b) => a.localeCompare(b)));
  });

  it("agrees under other locales of the environment too (English, POSIX, Danish, Lithuanian: those fall back to localeCompare)", () => {
    const script = `const { localeOrder } = require(${JSON.stringify(join(__dirname, "..", "..", "provider", "core", "collate.js"))});
      const list = ["AA", "AAB", "ZZ", "Y", "I", "J", "A_B", "A1", "AB", "_A", "B", "VAR_10", "VAR_2", "V", "Ä", "a"];
      const bad = [];
      for (const a of list) for (const b of list) if (Math.sign(localeOrder(a, b)) !== Math.sign(a.localeCompare(b))) bad.push(a + " " + b);
      process.stdout.write(JSON.stringify(bad));`;
    for (const lang of ["en_US.UTF-8", "C.UTF-8", "POSIX", "da_DK.UTF-8", "lt_LT.UTF-8", ""]) {
      const r = spawnSync(process.execPath, ["-e", script], { env: { ...process.env, LC_ALL: "", LC_COLLATE: "", LC_MESSAGES: "", LANGUAGE: "", LANG: lang }, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), [], `LANG=${lang}`);
    }
  });

  it("localeSort sorts like localeCompare, lists of plain names and mixed ones alike", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const list = names(seed, 300).map((n, i) => ({ n: seed % 2 ? n.replace(/[^A-Z0-9_]/g, "") : n, i }));
      assert.deepEqual(
        localeSort([...list], (x) => x.n).map((x) => x.n),
        [...list].sort((a, b) => a.n.localeCompare(b.n)).map((x) => x.n),
        `seed ${seed}`,
      );
    }
  });
});
