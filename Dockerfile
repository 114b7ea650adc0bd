# The simfleet controller: `simfleet run` under tini, as an unprivileged user, from wheels.
#
# No image registry needs to be reachable. BASE is any Debian-family image with python3
# (the minor version the wheels were built for) and tini; `deploy/make-base` builds one
# from Debian packages alone (the default tag below). The project and its dependencies
# come in as wheels built outside the image (`pip wheel --wheel-dir build/wheels . pip`),
# so neither stage needs a network or a compiler. `make image` does all three steps.
#
#   docker run -d --name simfleet --read-only --tmpfs /tmp \
#     -v /srv/simfleet/specs:/specs:ro -v simfleet-state:/var/lib/simfleet \
#     --env-file /etc/simfleet/azure.env simfleet:latest --backend azure
#
# Listening: the daemon serves on 127.0.0.1:9120 inside the container unless the operator
# consents to more, exactly as outside it: SIMFLEET_LISTEN=0.0.0.0:9120 needs
# SIMFLEET_LISTEN_PUBLIC=1 too (/status shows simulators' stderr tails), else it refuses
# to start. docs/deploy.md has the rest.
ARG BASE=simfleet-base:bookworm

FROM ${BASE} AS builder
# The classic builder keeps this stage as an untagged image: the label finds it to prune.
LABEL simfleet.stage=builder
# A venv without pip; pip runs from its own wheel and never lands in the image. Wheels
# built by another Python than the base's are named, rather than left to pip's "no
# matching distribution".
COPY build/wheels /wheels
RUN python3 -c 'import glob, sys; tag = "-cp%d%d-" % sys.version_info[:2]; \
      other = [w for w in glob.glob("/wheels/*-cp3*") if tag not in w and "-abi3-" not in w]; \
      other and sys.exit(f"{other[0]} is not for this base (python {sys.version.split()[0]}):" \
                         " build the wheels with the Python minor version of the base")' \
 && python3 -m venv --without-pip /opt/simfleet \
 && set -- /wheels/pip-*.whl \
 && /opt/simfleet/bin/python3 "$1/pip" install --no-index --find-links /wheels \
      --disable-pip-version-check --quiet simfleet

FROM ${BASE}
COPY --from=builder /opt/simfleet /opt/simfleet
COPY deploy/healthcheck.py /opt/simfleet/healthcheck.py
# A fixed, unprivileged uid (owner of the state volume) with a passwd entry for getpass
# and $HOME; the specs volume is mounted read-only by the operator.
RUN echo 'simfleet:x:10001:10001:simfleet controller:/var/lib/simfleet:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'simfleet:x:10001:' >> /etc/group \
 && mkdir -p /specs /var/lib/simfleet \
 && chown 10001:10001 /var/lib/simfleet && chmod 0700 /var/lib/simfleet
ENV PATH=/opt/simfleet/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/var/lib/simfleet \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SIMFLEET_SPECS=/specs \
    SIMFLEET_STATE_DIR=/var/lib/simfleet \
    SIMFLEET_LISTEN=127.0.0.1:9120 \
    SIMFLEET_LOG_FORMAT=json
VOLUME ["/specs", "/var/lib/simfleet"]
EXPOSE 9120
USER 10001:10001
WORKDIR /var/lib/simfleet
# /healthz is 503 after 3 failed passes in a row: unhealthy after 3 such checks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python3", "/opt/simfleet/healthcheck.py"]
# tini is PID 1: it forwards docker stop's SIGTERM to simfleet (which stops cleanly and
# releases its lease) and reaps orphans a simulator of the local backend may leave.
ENTRYPOINT ["tini", "--", "simfleet", "run"]
