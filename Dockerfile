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
# Neither image runs anything of the target platform while it is built: no emulation.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# Where the webhook's /opt/podinit comes from: the webhook-build stage, or an image of it made
# beforehand (e2e/images/build.py: buildah 1.28 would pull webhook-build's base for the target
# platform and run its RUN steps under emulation).
ARG WEBHOOK_FILES=webhook-build

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
# Runs on the build machine for any target, as multi-arch Python images are built without
# emulation: the build machine's pip picks and unpacks the target's wheels (every locked
# dependency ships manylinux wheels for x86_64 and aarch64; nothing is compiled), and the
# final stage only copies the venv onto the target's base. The venv's python is a symlink to
# the base's interpreter, which both platforms have at the same path.
FROM --platform=$BUILDPLATFORM ${PYTHON_IMAGE} AS webhook-build
ARG TARGETARCH
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The venv's own setuptools goes: the lock's is installed next to pip below.
RUN python -m venv /opt/podinit && /opt/podinit/bin/pip uninstall -y setuptools
WORKDIR /src
COPY requirements/webhook.lock requirements/
COPY scripts/images/target-wheels.sh /usr/local/bin/
# TARGETARCH's wheels, chosen and unpacked by this machine's pip (the script says how).
RUN site=$(/opt/podinit/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
    && sh /usr/local/bin/target-wheels.sh /opt/podinit/bin/pip "${TARGETARCH}" "${site}" \
        requirements/webhook.lock \
    && rm -rf "${site:?}/bin"
COPY pyproject.toml ./
COPY webhook/ webhook/
# The project itself is the one unhashed input: built from this checkout, nothing fetched. It
# is pure Python; the check that it starts runs where the platform is the build machine's.
RUN /opt/podinit/bin/pip install --no-deps --no-build-isolation --no-index . \
    && /opt/podinit/bin/pip uninstall -y pip setuptools \
    && if [ "${TARGETARCH}" = "$(dpkg --print-architecture)" ]; then /opt/podinit/bin/podinit --version; fi

FROM ${WEBHOOK_FILES} AS webhook-files

FROM ${PYTHON_IMAGE} AS webhook
LABEL org.opencontainers.image.title="podinit-webhook" \
      org.opencontainers.image.description="Mutating admission webhook that runs podinit as PID 1 of pod containers"
# Bytecode was compiled at install time; a read-only root filesystem needs no more.
ENV PATH=/opt/podinit/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=webhook-files /opt/podinit /opt/podinit
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["podinit"]
CMD ["serve"]
