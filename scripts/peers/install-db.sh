#!/usr/bin/env bash
# Installs the database servers the rotation tests start: PostgreSQL 15, MariaDB and Redis
# (Debian packages), OpenLDAP's slapd with ldap-utils (the Vault store's LDAP auth test), and
# the password managers' CLIs (pass, gnome-keyring + secret-tool, keepassxc-cli, lpass). Idempotent: `apt-get update` and `apt-get install` run only when one of
# them is missing. The tests start and stop their own servers on free loopback ports; the
# packages' own services are not needed (and are stopped when the install started them).
set -euo pipefail
log() { printf '[peers:db] %s\n' "$*" >&2; }

missing=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# Shells whose completion scripts `dsops completion zsh|fish` writes (the tests run them).
command -v zsh >/dev/null 2>&1 || missing+=(zsh)
command -v fish >/dev/null 2>&1 || missing+=(fish)
# The Vault LDAP auth test runs its own slapd (its own config, a temp dir, a loopback port).
[ -x /usr/sbin/slapd ] || missing+=(slapd)
command -v ldapadd >/dev/null 2>&1 || missing+=(ldap-utils)
# Password managers and OS keychains the stores of issue 12 drive (each test uses a throwaway
# home, GNUPGHOME, database or D-Bus session): pass + gnupg, the Secret Service (gnome-keyring
# under dbus-run-session, secret-tool), keepassxc-cli, the LastPass CLI.
command -v pass >/dev/null 2>&1 || missing+=(pass)
command -v gpg >/dev/null 2>&1 || missing+=(gnupg)
command -v gnome-keyring-daemon >/dev/null 2>&1 || missing+=(gnome-keyring)
command -v secret-tool >/dev/null 2>&1 || missing+=(libsecret-tools)
command -v dbus-run-session >/dev/null 2>&1 || missing+=(dbus-daemon)
command -v keepassxc-cli >/dev/null 2>&1 || missing+=(keepassxc)
command -v lpass >/dev/null 2>&1 || missing+=(lastpass-cli)
# Debian's Chromium, headless: the compliance report's HTML test renders the report in it.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  log "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  # No service start inside containers without an init system; policy-rc.d is not needed then.
  # slapd's package configuration asks for a domain and a password: skip it (no database is
  # made; the test writes its own slapd configuration).
  echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections 2>/dev/null || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x /usr/lib/postgresql/15/bin/postgres ] || { log "PostgreSQL 15 still missing"; exit 1; }
log "postgresql: $(/usr/lib/postgresql/15/bin/postgres --version)"
command -v redis-server >/dev/null 2>&1 && log "redis: $(redis-server --version | head -1)" || log "redis-server missing"
(command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]) && log "mariadb: installed" || log "mariadb missing"
[ -x /usr/sbin/slapd ] && log "slapd: installed" || log "slapd missing"
