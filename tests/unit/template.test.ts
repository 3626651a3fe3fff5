import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { renderTemplate, TemplateError } from "../../provider/engine/template";
import { DsopsError } from "../../provider/core/errors";

// The expected outputs below were checked against Go 1.26's text/template executing over a
// map[string]string with the dsops helpers (plus sprig-like default/upper/lower/trim/list).
const vars: Record<string, string> = {
  A: "alpha",
  B: "",
  N: "3",
  ML: "l1\nl2",
  Q: 'say "hi"\n\t\u00e9\x01',
  Z: "zulu",
};
const env = { FOO: "foo-env" };
const render = (t: string, v: Record<string, string> = vars): string => renderTemplate(t, v, { env, name: "t" });

/** Assert that rendering fails with exactly this message. */
function fails(t: string, message: string, v: Record<string, string> = vars): void {
  assert.throws(
    () => render(t, v),
    (e: unknown) => {
      assert.ok(e instanceof TemplateError, `not a TemplateError: ${String(e)}`);
      assert.equal((e as Error).message, message);
      return true;
    },
  );
}

const dotenv = 'A="alpha"\nB=""\nML="l1\\nl2"\nN="3"\nQ="say \\"hi\\"\\n\\té\\x01"\nZ="zulu"\n';

const cases: [string, string][] = [
  // text, data, variables
  ["plain text", "plain text"],
  ["", ""],
  ["{{ .A }}-{{.Z}}", "alpha-zulu"],
  ["{{ index . \"A\" }}", "alpha"],
  ["{{ $.A }} {{ $x := .Z }}{{ $x }}", "alpha zulu"],
  ["{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", "2"],
  ["{{ $x := 1 }}{{ $x := 2 }}{{ $x }}", "2"],
  ["{{ with $x := .A }}{{ $x }}{{ . }}{{ end }}", "alphaalpha"],
  // missing keys: Go prints "<no value>" for .MISSING, index gives the zero value ""
  ["{{ .MISSING }}", "<no value>"],
  ["[{{ index . \"MISSING\" }}]", "[]"],
  ["{{ .MISSING.X }} {{ $.MISSING }}", "<no value> <no value>"],
  ["{{ if .MISSING }}y{{ else }}n{{ end }}", "n"],
  ["{{ eq .MISSING nil }} {{ eq .MISSING \"\" }}", "true false"],
  // the dotenv loop and other ranges
  ["{{ range $k, $v := . }}{{ $k }}={{ $v | quote }}\n{{ end }}", dotenv],
  ["{{ range $v := . }}{{ $v | len }},{{ end }}", "5,0,5,1,13,4,"],
  ["{{ range . }}{{ . | upper }} {{ end }}", "ALPHA  L1\nL2 3 SAY \"HI\"\n\tÉ\x01 ZULU "],
  ["{{ range $i, $v := list \"a\" \"b\" \"c\" }}{{ if $i }},{{ end }}{{ $v }}{{ end }}", "a,b,c"],
  ["{{ range 3 }}{{ . }}{{ end }}|{{ range $i := 2 }}{{ $i }}{{ end }}", "012|01"],
  ["{{ range .MISSING }}x{{ else }}empty{{ end }}", "empty"],
  ["{{ range list }}x{{ else }}none{{ end }}", "none"],
  ["{{ range -2 }}x{{ else }}none{{ end }}", "none"],
  ["{{ range $k, $v := . }}{{ $.A }}{{ end }}", "alphaalphaalphaalphaalphaalpha"],
  ["{{ $x := 5 }}{{ range $x = list 1 2 }}{{ end }}{{ $x }}", "2"],
  ["{{ range $v := -2 }}{{ else }}{{ $v }}{{ end }}", "-2"],
  ["{{ if .B }}{{ $y := nil }}{{ $z = 1 }}{{ end }}ok", "ok"],
  [
    "{{ range $i, $e := list 1 2 3 4 }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ if eq $i 3 }}{{ break }}{{ end }}{{ $e }}{{ end }}",
    "13",
  ],
  ["{{ range $i, $v := list 1 2 }}{{ range $j, $w := list 3 4 }}{{ $i }}{{ $j }}{{ if eq $j 0 }}{{ break }}{{ end }}{{ end }}{{ end }}", "0010"],
  // trim markers and comments
  ["  x  {{- .A -}}  \n  y\n{{- if .A }}\nA is set\n{{- end }}\n", "  xalphay\nA is set\n"],
  ["{{ range $k, $v := . -}}\n{{ $k }}: {{ $v | quote }}\n{{ end -}}\ndone\n", dotenv.replace(/=/g, ": ") + "done\n"],
  ["a\n{{ if .A }}\n  {{- range $k, $v := . }}\n  {{ $k }}{{ end }}\n{{ end }}\n", "a\n\n  A\n  B\n  ML\n  N\n  Q\n  Z\n\n"],
  ["{{ -3 }} {{- 4 -}} x", "-34x"],
  ["a  {{- /* c */ -}}  b", "ab"],
  ["a {{/* c */}} b", "a  b"],
  ["{{- /* multi\nline */}}y", "y"],
  ["{{ \"}}\" }}", "}}"],
  // if / else if / with
  ["{{ if 0 }}a{{ else if .B }}b{{ else if .A }}c{{ else }}d{{ end }}", "c"],
  ["{{ with .B }}b{{ else }}nob{{ end }}", "nob"],
  ["{{ with 0 }}{{ else with .A }}a{{ . }}{{ else }}b{{ end }}", "aalpha"],
  ["{{ if and .A (not .B) }}yes{{ end }}", "yes"],
  ["{{ if or .B .MISSING }}yes{{ else }}no{{ end }}", "no"],
  ["{{ and 1 0 2 }} {{ or 0 \"\" \"x\" }} {{ not \"\" }} {{ and .MISSING 1 }}", "0 x true <no value>"],
  ["{{ if list }}t{{ else }}f{{ end }}{{ if . }}t{{ end }}", "ft"],
  ["{{ with .A }}{{ if eq . \"alpha\" }}{{ range $i := 2 }}{{ $i }}{{ $ | len }}{{ end }}{{ end }}{{ end }}", "0616"],
  // pipelines
  ["{{ .A | indent 4 }}|{{ .ML | indent 2 }}|{{ .ML | nindent 2 }}", "    alpha|  l1\n  l2|\n  l1\n  l2"],
  ["{{ .A | printf \"%s-%s\" \"x\" }}", "x-alpha"],
  ["{{ (printf \"%s\" .A) | upper }}", "ALPHA"],
  ["{{ \"x\" | printf \"%s %s\" \"y\" | upper }}", "Y X"],
  ["{{ . | printf \"%v\" | len }}", "51"],
  ["{{ .A | }}", "alpha"],
  // literals
  ["{{ 1.0 }} {{ 1e6 }} {{ 0.00001 }} {{ 1.5 }} {{ 0x10 }} {{ 'a' }} {{ 1_000 }} {{ 0o17 }} {{ 017 }} {{ +7 }} {{ .5 }}", "1 1e+06 1e-05 1.5 16 97 1000 15 15 7 0.5"],
  ["{{ \"a\\tb\\u00e9\\x41\\101\\xc3\\xa9\" }} {{ `raw\\n` }} {{ true }}", "a\tbéAAé raw\\n true"],
  // printing and printf
  ["{{ . }}", 'map[A:alpha B: ML:l1\nl2 N:3 Q:say "hi"\n\té\x01 Z:zulu]'],
  ["{{ print 1 2 \"a\" \"b\" 3 }}|{{ println 1 \"a\" }}|{{ print nil 1 }}", "1 2ab3|1 a\n|<nil> 1"],
  ["{{ printf \"%d %s %v %q %%\" 5 \"x\" true \"q\" }}", '5 x true "q" %'],
  ["{{ printf \"%5s|%-4d|%x|%05d|%.2f|%+d|%X|%c\" \"a\" 3 255 -3 1.5 5 \"hi\" 65 }}", "    a|3   |ff|-0003|1.50|+5|6869|A"],
  ["{{ printf \"%s %s\" \"x\" }}|{{ printf \"%s\" \"x\" 3 }}|{{ printf \"%d\" \"x\" }}|{{ printf \"%\" }}", "x %!s(MISSING)|x%!(EXTRA int=3)|%!d(string=x)|%!(NOVERB)"],
  ["{{ printf \"%s|%d\" $ (list 1 2) }}", 'map[A:alpha B: ML:l1\nl2 N:3 Q:say "hi"\n\té\x01 Z:zulu]|[1 2]'],
  ["{{ printf \"%v\" (list 1 \"a\") }} {{ printf \"%s\" (list \"a\" 1) }} {{ printf \"%q\" 97 }}", "[1 a] [a %!s(int=1)] 'a'"],
  ["{{ printf \"%q\" .Q }} {{ quote \"\\x7f\\u00a0\\U0001F600\\u200b\" }}", '"say \\"hi\\"\\n\\té\\x01" "\\x7f\\u00a0😀\\u200b"'],
  // comparisons
  ["{{ eq .A \"x\" \"alpha\" }} {{ ne 1 2 }} {{ eq 1.5 1.5 }} {{ eq true true }}", "true true true true"],
  ["{{ lt \"a\" \"b\" }} {{ le 2 3 }} {{ gt 2.5 1.5 }} {{ ge \"b\" \"a\" }} {{ lt 2 1 }} {{ le \"b\" \"b\" }} {{ gt 1 1 }}", "true true true true false true false"],
  ["{{ if lt (len .A) 10 }}short{{ end }}", "short"],
  // functions
  ["{{ len \"é\" }} {{ len . }} {{ len (list 1 2) }} {{ index (list \"a\" \"b\") 1 }} {{ index \"abc\" 1 }}", "2 6 2 b 98"],
  ["{{ has \"A\" }} {{ has \"B\" }} {{ has \"NOPE\" }} {{ env \"FOO\" }}|{{ env \"NOPE\" }}|", "true true false foo-env||"],
  ["{{ sha256 .A }}", createHash("sha256").update("alpha").digest("hex")],
  ["{{ b64enc .Q }} {{ b64dec \"aGVsbG8=\" }} {{ .ML | b64enc | b64dec }}", `${Buffer.from(vars.Q).toString("base64")} hello l1\nl2`],
  ["{{ json . }}", '{"A":"alpha","B":"","ML":"l1\\nl2","N":"3","Q":"say \\"hi\\"\\n\\té\\u0001","Z":"zulu"}'],
  ["{{ json 1.5 }} {{ json (list 1 \"a\" nil true \"<&>\") }} {{ json .MISSING }}", '1.5 [1,"a",null,true,"\\u003c\\u0026\\u003e"] null'],
  ["{{ default \"d\" .B }} {{ default \"d\" .A }} {{ default \"d\" .MISSING }} {{ .B | default \"e\" }}", "d alpha d e"],
  ["{{ upper .A }} {{ lower \"ABC\" }} [{{ trim \"  x \\n\" }}] {{ upper \"straße\" }} {{ lower \"ΣΑΣ İ\" }}", "ALPHA abc [x] STRAßE σασ i"],
];

const errors: [string, string][] = [
  ["{{ nope }}", "template t:1:1: function \"nope\" not defined"],
  ["line 1\nab {{ .A", "template t:2:4: unclosed action"],
  ["x\n  {{ end }}", "template t:2:3: unexpected {{end}}"],
  ["{{ else }}", "template t:1:1: unexpected {{else}}"],
  ["a\n{{ if .A }}\n{{ range . }}x{{ end }}", "template t:2:1: missing {{end}} for {{if}}"],
  ["{{ if 1 }}{{ else }}{{ else }}{{ end }}", "template t:1:21: expected end; found {{else}}"],
  ["{{ indent 2 }}", "template t:1:1: wrong number of args for indent: want 2 got 1"],
  ["{{ .A | indent 2 3 }}", "template t:1:1: wrong number of args for indent: want 2 got 3"],
  ["{{ not }}", "template t:1:1: wrong number of args for not: want 1 got 0"],
  ["{{ printf }}", "template t:1:1: wrong number of args for printf: want at least 1 got 0"],
  ["\n\n   {{ b64dec .A }}", "template t:3:4: error calling b64dec: the argument is not valid base64"],
  ["{{ .MISSING | quote }}", "template t:1:1: error calling quote: invalid value (a missing variable?); expected string"],
  ["{{ $x := 1 }}{{ $x | upper }}", "template t:1:14: error calling upper: wrong type for value; expected string; got int"],
  ["{{ eq 1 1.0 }}", "template t:1:1: error calling eq: incompatible types for comparison: int and float64"],
  ["{{ eq .A 1 }}", "template t:1:1: error calling eq: incompatible types for comparison: string and int"],
  ["{{ lt true false }}", "template t:1:1: error calling lt: invalid type for comparison"],
  ["{{ if $y := .A }}{{ $y }}{{ end }}{{ $y }}", "template t:1:35: undefined variable \"$y\""],
  ["{{ $y = 1 }}", "template t:1:1: undefined variable \"$y\""],
  ["{{ .A.B }}", "template t:1:1: can't evaluate field B in type string"],
  ["{{ .A 1 }}", "template t:1:1: A is not a method but has arguments"],
  ["{{ \"a\" | \"b\" }}", "template t:1:1: non executable command in pipeline stage 2"],
  ["{{ \"a\" \"b\" }}", "template t:1:1: can't give argument to non-function"],
  ["{{ nil }}", "template t:1:1: nil is not a command"],
  ["{{ | .A }}", "template t:1:1: unexpected \"|\" in command"],
  ["{{ if }}{{ end }}", "template t:1:1: missing value for if"],
  ["{{ ( }}", "template t:1:1: unclosed left paren"],
  ["{{ \"abc }}", "template t:1:1: unterminated quoted string"],
  ["{{ \"\\z\" }}", "template t:1:1: invalid syntax"],
  ["{{ 09 }}", "template t:1:1: integer overflow: \"09\""],
  ["{{ 1.A }}", "template t:1:1: bad number syntax: \"1.A\""],
  ["{{ # }}", "template t:1:1: unexpected \"#\" in command"],
  ["{{/* c */ .A }}", "template t:1:1: comment ends before closing delimiter"],
  ["{{/* c", "template t:1:1: unclosed comment"],
  ["{{ 3 }}{{ break }}", "template t:1:8: {{break}} outside {{range}}"],
  ["{{ range . }}{{ else if 1 }}{{ end }}", "template t:1:14: unexpected if in else"],
  ["{{ range $a, $b, $c := . }}{{ end }}", "template t:1:1: too many declarations in range"],
  ["{{ range .A }}x{{ end }}", "template t:1:1: range can't iterate over a value of type string"],
  ["{{ range $i, $j := 2 }}{{ end }}", "template t:1:1: can't use an int to iterate over more than one variable"],
  ["{{ index (list \"a\") 5 }}", "template t:1:1: error calling index: index out of range: 5"],
  ["{{ if .B }}{{ $y := 1 }}{{ else }}{{ $y }}{{ end }}", "template t:1:35: undefined variable \"$y\""],
  ["{{ index nil }}", "template t:1:1: error calling index: index of untyped nil"],
  ["{{ indent -2 .A }}", "template t:1:1: error calling indent: negative indent"],
  ["{{ $x := 1 }}{{ $x=2 }}", "template t:1:14: bad character U+003D '='"],
  ["{{ .A\"b\" }}", "template t:1:1: bad character U+0022 '\"'"],
  ["{{ 1_ }}", "template t:1:1: illegal number syntax: \"1_\""],
  ["{{ 1_e7 }}", "template t:1:1: illegal number syntax: \"1_e7\""],
  ["{{ define \"x\" }}{{ end }}", "template t:1:1: {{define}} is not supported"],
];

describe("template", () => {
  describe("renders like Go's text/template", () => {
    for (const [t, want] of cases) {
      it(JSON.stringify(t), () => assert.equal(render(t), want));
    }
  });

  describe("errors", () => {
    for (const [t, message] of errors) {
      it(JSON.stringify(t), () => fails(t, message));
    }
  });

  it("reports a syntax error with the template name, line and column", () => {
    const t = "# config\nHOST={{ .A }}\nPORT={{ .N | bogus 2 }}\n";
    assert.throws(() => renderTemplate(t, vars, { name: "app.env.tmpl" }), {
      name: "TemplateError",
      message: 'template app.env.tmpl:3:6: function "bogus" not defined',
    });
    assert.throws(() => renderTemplate("{{ end }}", vars), { message: "template template:1:1: unexpected {{end}}" });
    try {
      renderTemplate("{{", {});
      assert.fail("no error");
    } catch (e) {
      assert.ok(e instanceof DsopsError);
      assert.equal((e as Error).message, "template template:1:1: unclosed action");
    }
  });

  it("never puts a variable's value in an error message", () => {
    const secret = "s3cr3t-VALUE-do-not-print";
    const v = { PASSWORD: secret, TOKEN: `{{ ${secret} }}`, NUM: "12" };
    const failing = [
      "{{ .PASSWORD | b64dec }}",
      "{{ range .PASSWORD }}{{ end }}",
      "{{ .PASSWORD.x }}",
      "{{ .PASSWORD | indent .NUM }}",
      "{{ lt .PASSWORD 1 }}",
      "{{ eq .PASSWORD (list) }}",
      "{{ index .PASSWORD \"k\" }}",
      "{{ index . .PASSWORD .NUM }}",
      "{{ .TOKEN | b64dec }}",
      "{{ .PASSWORD | nope }}",
      "{{ .PASSWORD 1 }}",
      "{{ len 1 }}",
    ];
    for (const t of failing) {
      assert.throws(
        () => renderTemplate(t, v, { name: "t" }),
        (e: unknown) => {
          assert.ok(e instanceof TemplateError, t);
          assert.ok(!(e as Error).message.includes(secret), `${t}: message includes the value`);
          assert.ok(!(e as Error).message.includes("s3cr3t"), `${t}: message includes part of the value`);
          return true;
        },
      );
    }
  });

  it("never puts a generated value in an error message (property)", () => {
    const failing = ["{{ .X | b64dec }}", "{{ range .X }}{{ end }}", "{{ .X.Y }}", "{{ lt .X 1 }}", "{{ .X | indent .X }}"];
    fc.assert(
      fc.property(fc.string({ minLength: 6 }).filter((s) => /[A-Za-z0-9]{6}/.test(s) && !/^[A-Za-z0-9+/=\s]*$/.test(s)), (x) => {
        for (const t of failing) {
          try {
            renderTemplate(t, { X: x }, { name: "t" });
          } catch (e) {
            if (!(e instanceof TemplateError) || e.message.includes(x)) return false;
          }
        }
        return true;
      }),
    );
  });

  it("prints any value unchanged and round-trips it through b64enc/b64dec and json", () => {
    fc.assert(
      fc.property(fc.string(), (x) => {
        const v = { X: x };
        assert.equal(renderTemplate("{{ .X }}", v), x);
        assert.equal(renderTemplate("{{ .X | b64enc | b64dec }}", v), x);
        assert.equal(JSON.parse(renderTemplate("{{ json .X }}", v)), x);
        assert.equal(renderTemplate("{{ range $k, $v := . }}{{ $k }}={{ $v }}{{ end }}", v), `X=${x}`);
      }),
    );
  });

  it("reads env from options.env, else from process.env", () => {
    assert.equal(renderTemplate('{{ env "HOME_X" }}', {}, { env: { HOME_X: "h" } }), "h");
    process.env.DSOPS_TEMPLATE_TEST_VAR = "from-process";
    try {
      assert.equal(renderTemplate('{{ env "DSOPS_TEMPLATE_TEST_VAR" }}', {}), "from-process");
      assert.equal(renderTemplate('{{ env "DSOPS_TEMPLATE_TEST_VAR" }}', {}, { env: {} }), "");
    } finally {
      delete process.env.DSOPS_TEMPLATE_TEST_VAR;
    }
  });

  it("handles keys that are Object.prototype names and odd characters", () => {
    const v = { constructor: "c", __proto__x: "p", "a-b": "dash" };
    assert.equal(renderTemplate("{{ .constructor }} {{ .toString }} {{ index . \"a-b\" }} {{ has \"hasOwnProperty\" }}", v), "c <no value> dash false");
    assert.equal(renderTemplate("{{ range $k, $v := . }}{{ $k }};{{ end }}", v), "__proto__x;a-b;constructor;");
  });

  it("renders a large template in linear time", () => {
    const many = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`K${String(i).padStart(4, "0")}`, "v".repeat(50)]));
    const out = renderTemplate("{{ range $k, $v := . }}{{ $k }}={{ $v | quote }}\n{{ end }}", many);
    assert.equal(out.split("\n").length, 2001);
    const spaces = " ".repeat(200_000);
    assert.equal(renderTemplate(`a${spaces}b{{- " " -}}${spaces}c`, {}), `a${spaces}b c`);
  });
});
