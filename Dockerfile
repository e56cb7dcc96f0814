# syntax=docker/dockerfile:1
#
# Two images from one file, both multi-arch (linux/amd64, linux/arm64):
#
#   docker buildx build --platform linux/amd64,linux/arm64 --target init    -t podinit/init:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 --target webhook -t podinit/webhook:0.1.0 .
#
# init    - FROM scratch: nothing but the static /podinit. The webhook's copy container
#           runs `/podinit install /target/podinit`; with image volumes the file is mounted
#           as is. tests/chart/test_images.py assembles the same root filesystem and runs it.
# webhook - the admission server (`podinit serve`) on a slim Python base: non-root
#           (65532), no compilers, nothing written to the root filesystem at run time.
#
# Python packages come only from requirements/*.lock, pinned and hash-checked. `make images`
# builds both with buildah and pushes them; PYTHON_IMAGE may name any Debian-based image
# with python3.11 and its venv module (the tests build a stand-in from Debian packages).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- init: static C binary
# Runs on the build machine and cross-compiles with zig (clang + musl for every target),
# so an arm64 image needs no emulation. The compiler flags come from init/init.mk.
FROM --platform=$BUILDPLATFORM ${PYTHON_IMAGE} AS init-build
ARG TARGETARCH
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements/init-build.lock requirements/
RUN python -m venv /opt/zig \
    && /opt/zig/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: \
        -r requirements/init-build.lock
COPY init/podinit.c init/init.mk init/
# INIT_CFLAGS and INIT_SMALL are init.mk's: the image's binary is built like `make init`'s.
# (The single quotes keep $(...) for make, not the shell.)
# hadolint ignore=SC2016
RUN case "${TARGETARCH}" in \
        amd64) target=x86_64-linux-musl ;; \
        arm64) target=aarch64-linux-musl ;; \
        *) echo "unsupported TARGETARCH=${TARGETARCH}" >&2; exit 1 ;; \
    esac \
    && mkdir -p /out \
    && make -f init/init.mk ZIG_CC="/opt/zig/bin/python -m ziglang cc -target ${target}" \
        --eval 'image-init: ; $(ZIG_CC) $(INIT_CFLAGS) $(INIT_SMALL) -o /out/podinit $(INIT_SRC)' \
        image-init \
    && if [ "${TARGETARCH}" = "$(dpkg --print-architecture)" ]; then /out/podinit --version; fi

FROM scratch AS init
COPY --from=init-build --chmod=0755 /out/podinit /podinit
USER 65532:65532
ENTRYPOINT ["/podinit"]
CMD ["--help"]

# ---------------------------------------------------------------- webhook: Python server
# Built for the target platform: every dependency ships manylinux wheels for x86_64 and
# aarch64, so nothing is compiled here either; the venv is copied into a clean base.
FROM ${PYTHON_IMAGE} AS webhook-build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/podinit
WORKDIR /src
COPY requirements/webhook.lock requirements/
RUN /opt/podinit/bin/pip install --require-hashes --only-binary=:all: -r requirements/webhook.lock
COPY pyproject.toml ./
COPY webhook/ webhook/
# The project itself is the one unhashed input: built from this checkout, nothing fetched.
RUN /opt/podinit/bin/pip install --no-deps --no-build-isolation --no-index . \
    && /opt/podinit/bin/pip uninstall -y pip setuptools \
    && /opt/podinit/bin/podinit --version

FROM ${PYTHON_IMAGE} AS webhook
LABEL org.opencontainers.image.title="podinit-webhook" \
      org.opencontainers.image.description="Mutating admission webhook that runs podinit as PID 1 of pod containers"
# Bytecode was compiled at install time; a read-only root filesystem needs no more.
ENV PATH=/opt/podinit/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=webhook-build /opt/podinit /opt/podinit
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["podinit"]
CMD ["serve"]
