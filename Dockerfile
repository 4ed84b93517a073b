# syntax=docker/dockerfile:1
#
# The regsweep image: `regsweep serve`, `regsweep worker` or `regsweep dashboard`.
#
#   docker build -t regsweep:cpu .                         # CPU-only PyTorch (small)
#   docker build -t regsweep:cuda --build-arg VARIANT=cuda .   # CUDA PyTorch
#
# The CUDA wheels carry their own CUDA runtime, so both variants share the slim base image;
# a GPU host needs only the NVIDIA driver and the NVIDIA Container Toolkit. For an older
# driver, pick an older CUDA build: --build-arg TORCH_INDEX_CUDA=https://download.pytorch.org/whl/cu126
#
# Settings come from the environment (REGSWEEP_DATABASE_URL, REGSWEEP_API_TOKENS, ...; see
# regcore/settings.py); nothing site-specific is baked in.

ARG PYTHON_VERSION=3.12

# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS builder

# cpu | cuda: which PyTorch build goes into the image.
ARG VARIANT=cpu
ARG TORCH_INDEX_CPU=https://download.pytorch.org/whl/cpu
ARG TORCH_INDEX_CUDA=https://download.pytorch.org/whl/cu128

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# The runtime stage copies this venv as is: its scripts name /opt/venv/bin/python, so the
# path (and the Python version, one PYTHON_VERSION for both stages) must be the same there.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# PyTorch first, from the variant's index, in a layer of its own (source edits do not
# rebuild it). Installing regsweep afterwards keeps this torch: it satisfies torch>=2.4, and
# PyPI's default Linux torch would be the multi-GB CUDA build even for the CPU variant.
RUN case "${VARIANT}" in \
        cpu) index="${TORCH_INDEX_CPU}" ;; \
        cuda) index="${TORCH_INDEX_CUDA}" ;; \
        *) echo "VARIANT must be cpu or cuda, but got VARIANT=${VARIANT}" >&2; exit 1 ;; \
    esac \
    && pip install --index-url "${index}" "torch>=2.4"

# The import check runs from /, so it finds the installed package, not the sources in /src.
WORKDIR /src
COPY pyproject.toml README.md ./
# regcore/service, regcore/worker and regcore/cli are symlinks to these top-level folders.
COPY regcore ./regcore
COPY service ./service
COPY worker ./worker
COPY cli ./cli
# The image serves, works and draws reports: the service extra (PostgreSQL, reports, dashboard).
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip install "$(ls /wheels/regsweep-*.whl)[service]" \
    && cd / && python -c "import torch, regcore.cli, regcore.service.main, regcore.worker.daemon; print('torch', torch.__version__)"

# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime

ARG VARIANT=cpu
LABEL org.opencontainers.image.title="regsweep" \
      org.opencontainers.image.description="Sweeps over L1/L2 regularization for PyTorch (${VARIANT})"

# A fixed numeric uid, so that orchestrators can check runAsNonRoot without a passwd lookup.
RUN groupadd --system --gid 10001 regsweep \
    && useradd --system --uid 10001 --gid regsweep --create-home --home-dir /home/regsweep \
       --shell /usr/sbin/nologin regsweep \
    && mkdir -p /srv/regsweep/data /srv/regsweep/artifacts \
    && chown -R regsweep:regsweep /srv/regsweep

COPY --from=builder /opt/venv /opt/venv

# The directories exist, owned by regsweep, so that an empty named volume mounted on them
# starts with that owner (Docker copies the image's directory into a new volume) and the
# non-root process can write there. The SQLite default (sqlite:///regsweep.db) lands in
# the working directory; set REGSWEEP_DATABASE_URL to a PostgreSQL URL for many machines.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/regsweep \
    REGSWEEP_DATA_DIR=/srv/regsweep/data \
    REGSWEEP_ARTIFACT_DIR=/srv/regsweep/artifacts \
    TINI_KILL_PROCESS_GROUP=1
WORKDIR /srv/regsweep
USER 10001:10001

# 8000: the REST API (regsweep serve); 8080: optuna-dashboard (regsweep dashboard).
EXPOSE 8000 8080

# SIGINT (Ctrl-C): every regsweep command stops cleanly on it (uvicorn, optuna-dashboard, a
# worker finishing its trial), and `regsweep worker --gpus all`, a parent waiting on one
# worker process per GPU, waits for them on it. With `docker run --init` / compose
# `init: true`, tini sends it to the whole process group (TINI_KILL_PROCESS_GROUP above), so
# every per-GPU worker gets it even from a CLI whose parent does not pass signals on.
STOPSIGNAL SIGINT

# Liveness of the default command (serve on 8000); /healthz does not touch the database.
# The slim image has no curl. Containers that run a worker or the dashboard override this
# (docker-compose.yml does: worker disables it, dashboard probes its own port).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["regsweep"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
