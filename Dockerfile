# Switchboard next to Asterisk: `docker run --network host -v $PWD/company.yaml:/etc/switchboard/company.yaml
#   -e SWITCHBOARD_ARI_PASSWORD=... switchboard run /etc/switchboard/company.yaml`
# FastAGI instead: `... switchboard agi /etc/switchboard/company.yaml` (127.0.0.1:4573 with the
#   host's network; `--listen 0.0.0.0:4573` only behind a firewall that admits Asterisk alone).
# Without arguments it runs the demo (the Stasis app against the built-in Asterisk simulator).
FROM python:3.11-slim

WORKDIR /opt/switchboard
COPY pyproject.toml README.md ./
COPY switchboard ./switchboard
COPY ari_app ./ari_app
COPY agi_server ./agi_server
COPY asterisk_sim ./asterisk_sim
RUN pip install --no-cache-dir . && rm -rf /root/.cache
COPY examples ./examples
COPY dialplan ./dialplan
COPY sounds ./sounds

USER nobody
ENTRYPOINT ["switchboard"]
CMD ["demo"]
