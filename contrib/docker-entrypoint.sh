#!/bin/sh
# The container's entrypoint: `switchboard "$@"`, the secrets first taken from files if asked.
#
# Docker-secrets style: SWITCHBOARD_ARI_PASSWORD_FILE=/run/secrets/ari_password exports
# SWITCHBOARD_ARI_PASSWORD with that file's content (its trailing newlines dropped); the
# same for SWITCHBOARD_DSN_FILE.  A variable and its _FILE together, or a _FILE that cannot
# be read, stop the start with one line naming the variable and the path, exit 2.  No
# secret is ever printed.
set -eu

me="switchboard (docker-entrypoint)"

secret_from_file() {
    var=$1
    file_var="${var}_FILE"
    file=$(printenv "$file_var" || true)
    [ -n "$file" ] || return 0
    if printenv "$var" >/dev/null; then
        echo "$me: both $var and $file_var are set: keep one" >&2
        exit 2
    fi
    if [ ! -f "$file" ] || [ ! -r "$file" ]; then
        echo "$me: $file_var: cannot read $file (missing, not a file, or not readable by uid $(id -u))" >&2
        exit 2
    fi
    if ! value=$(cat -- "$file" 2>/dev/null); then
        echo "$me: $file_var: cannot read $file" >&2
        exit 2
    fi
    if [ -z "$value" ]; then
        echo "$me: $file_var: $file is empty" >&2
        exit 2
    fi
    export "$var=$value"
    unset "$file_var"
}

secret_from_file SWITCHBOARD_ARI_PASSWORD
secret_from_file SWITCHBOARD_DSN
unset value

# Relative paths (database.spill_dir, the demo's database) land in the state folder.
if [ -n "${SWITCHBOARD_STATE_DIR:-}" ]; then
    if ! cd -- "$SWITCHBOARD_STATE_DIR" 2>/dev/null; then
        echo "$me: SWITCHBOARD_STATE_DIR: cannot enter $SWITCHBOARD_STATE_DIR" >&2
        exit 2
    fi
    if [ ! -w . ]; then
        echo "$me: warning: $SWITCHBOARD_STATE_DIR is not writable by uid $(id -u):" \
            "spilled call records and the demo's database cannot be kept there" >&2
    fi
fi

exec switchboard "$@"
