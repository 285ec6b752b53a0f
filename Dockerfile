# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build --target collector -t flagger-evidence:collector .   # collect, list, evaluate, verify, show, policy
#   docker build --target render    -t flagger-evidence:render .      # + HTML/PDF decision records ([render]),
#                                                                     # S3 stores and history ([archive]): `evidence watch`
# Both run `evidence` as the non-root user `evidence` (uid 10001) and suit a read-only root
# filesystem: bytecode is compiled at build time, caches go to /tmp, bundles and reports to
# /work; mount an emptyDir on /tmp and a volume (or use s3:// --out) for /work. No image holds
# a browser: charts are SVG drawn in Python and the PDF is WeasyPrint's (Pango and fonts).
ARG PYTHON_IMAGE=python:3.11-slim-trixie

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY evidence ./evidence
COPY report_templates ./report_templates
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/home/evidence \
    XDG_CACHE_HOME=/tmp/.cache \
    PATH=/opt/evidence/bin:$PATH
RUN groupadd --system --gid 10001 evidence \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/evidence evidence \
 && mkdir -p /work && chown 10001:10001 /work
WORKDIR /work

FROM base AS collector
COPY constraints.txt /tmp/constraints.txt
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/evidence \
 && /opt/evidence/bin/pip install --constraint /tmp/constraints.txt /wheels/flagger_evidence-*.whl \
 && rm /tmp/constraints.txt
USER 10001:10001
ENTRYPOINT ["evidence"]
CMD ["--help"]

FROM base AS render
# WeasyPrint's native libraries and the fonts the records use; Debian's security updates
# are wanted, so the versions are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
    fontconfig fonts-dejavu-core fonts-liberation \
 && rm -rf /var/lib/apt/lists/*
COPY constraints.txt /tmp/constraints.txt
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/evidence \
 && wheel="$(ls /wheels/flagger_evidence-*.whl)" \
 && /opt/evidence/bin/pip install --constraint /tmp/constraints.txt "${wheel}[render,archive]" \
 && rm /tmp/constraints.txt
USER 10001:10001
ENTRYPOINT ["evidence"]
CMD ["--help"]
