# Switchboard in a container, next to Asterisk (docs/container.md; compose.yaml beside
# this file runs it with PostgreSQL).
#
#   docker build -t switchboard .
#   docker run -d --name switchboard --network host \
#       -v /etc/switchboard/switchboard.yaml:/etc/switchboard/switchboard.yaml:ro \
#       -v switchboard-state:/var/lib/switchboard \
#       -e SWITCHBOARD_ARI_PASSWORD_FILE=/run/secrets/ari_password \
#       -v /etc/switchboard/ari_password:/run/secrets/ari_password:ro \
#       switchboard
#
# - Runs `switchboard run /etc/switchboard/switchboard.yaml` (the Stasis app); FastAGI instead:
#   `... switchboard agi /etc/switchboard/switchboard.yaml` with
#   SWITCHBOARD_HEALTHCHECK_URL=http://127.0.0.1:8090/readyz.
# - Networking: nothing is EXPOSEd.  With `--network host` (the intended way: Asterisk's ARI
#   and FastAGI are on the host's loopback) the admin server is on the host's 127.0.0.1:8089
#   for Prometheus, and FastAGI on 127.0.0.1:4573.  On a bridge network instead, point
#   SWITCHBOARD_ARI_URL at the host, set SWITCHBOARD_ADMIN_LISTEN=0.0.0.0:8089 and publish it
#   on the host's loopback only (`-p 127.0.0.1:8089:8089`): the admin server shows callers.
# - Secrets: SWITCHBOARD_ARI_PASSWORD / SWITCHBOARD_DSN, or their _FILE variants naming a
#   mounted file (Docker secrets): contrib/docker-entrypoint.sh reads them, never prints them.
# - State: /var/lib/switchboard (uid 10001), the working folder: relative paths such as
#   database.spill_dir ("spill") land there.  Mount a volume on it so that call records
#   spilled while the database was away survive a restart.
# - Dependencies: exactly requirements.lock (hashes checked; scripts/lock makes it).  The
#   demo (the Asterisk simulator and an embedded PostgreSQL) is not in the default image:
#   `docker build --build-arg EXTRAS=demo -t switchboard:demo .`, then
#   `docker run --rm switchboard:demo demo`.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md schema.sql ./
COPY switchboard ./switchboard
COPY ari_app ./ari_app
COPY agi_server ./agi_server
COPY examples ./examples
COPY sounds ./sounds
COPY dialplan ./dialplan
COPY sim ./sim
# the production wheel and the simulator's (installed only with EXTRAS=demo)
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . ./sim

FROM ${PYTHON_IMAGE}
# extras of pyproject.toml to add, comma-separated: "demo" (each has its requirements-<extra>.lock)
ARG EXTRAS=""
ENV PATH=/opt/switchboard/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SWITCHBOARD_STATE_DIR=/var/lib/switchboard \
    SWITCHBOARD_HEALTHCHECK_URL=http://127.0.0.1:8089/readyz

RUN groupadd --system --gid 10001 switchboard \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/switchboard \
        --no-create-home --shell /usr/sbin/nologin switchboard \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/switchboard \
    && install -d -m 0755 /etc/switchboard

COPY requirements*.lock /tmp/locks/
COPY --from=build /wheels /tmp/wheels
RUN set -eu; \
    locks="-r /tmp/locks/requirements.lock"; wheels=/tmp/wheels/switchboard-*.whl; \
    for extra in $(echo "$EXTRAS" | tr ',' ' '); do \
        locks="$locks -r /tmp/locks/requirements-$extra.lock"; \
        if [ "$extra" = demo ]; then wheels="$wheels /tmp/wheels/switchboard_sim-*.whl"; fi; \
    done; \
    python -m venv /opt/switchboard; \
    /opt/switchboard/bin/pip install --no-cache-dir --disable-pip-version-check \
        --require-hashes $locks; \
    /opt/switchboard/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps $wheels; \
    /opt/switchboard/bin/pip check; \
    rm -rf /tmp/locks /tmp/wheels

COPY --chmod=0755 contrib/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

USER 10001:10001
WORKDIR /var/lib/switchboard

# /readyz of the admin server (127.0.0.1: the check runs inside the container's network)
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['SWITCHBOARD_HEALTHCHECK_URL'], timeout=4)"]

ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["run", "/etc/switchboard/switchboard.yaml"]
