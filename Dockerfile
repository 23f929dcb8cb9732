# ankisyncd container image. Build: docker build -t ankisyncd .
# Data lives in the /data volume; the server listens on 27701 and runs as user "ankisyncd".
# BASE_IMAGE: any Debian-like image with python3 (>= 3.10) and its venv module.
ARG BASE_IMAGE=python:3.13-slim-bookworm

FROM ${BASE_IMAGE} AS build
# With no registry at hand, give pre-built wheels in ./wheelhouse and set
# --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/src/wheelhouse.
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
SHELL ["/bin/sh", "-eux", "-c"]
# strip: the uvloop, zstandard and cryptography libraries carry ~40 MB of debug symbols.
# hadolint ignore=DL3008
RUN if ! command -v strip >/dev/null; then \
        apt-get update; \
        apt-get install -y --no-install-recommends binutils; \
        rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
COPY . .
# The version is pinned by pyproject.toml's ranges; the wheel is built here from the source.
# hadolint ignore=DL3013
RUN python3 -m venv /opt/ankisyncd; \
    /opt/ankisyncd/bin/pip wheel --wheel-dir /wheels .; \
    /opt/ankisyncd/bin/pip install --no-index --find-links /wheels ankisyncd; \
    /opt/ankisyncd/bin/pip uninstall -y pip setuptools; \
    find /opt/ankisyncd -name '*.so*' -exec strip --strip-unneeded {} +; \
    /opt/ankisyncd/bin/ankisyncd --version

FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 ankisyncd; \
    useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin ankisyncd; \
    mkdir /data; \
    chown 10001:10001 /data
COPY --from=build /opt/ankisyncd /opt/ankisyncd
ENV PATH=/opt/ankisyncd/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/data \
    ANKISYNCD_DATA_ROOT=/data \
    ANKISYNCD_HOST=0.0.0.0 \
    ANKISYNCD_PORT=27701
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 27701
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["ankisyncd", "health", "--timeout", "5"]
# SIGTERM: finish requests in flight (up to 10 s), then close every database.
# Stop with a longer grace period than that: docker stop -t 30, or compose's stop_grace_period.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ankisyncd"]
CMD ["serve"]
