# syntax=docker/dockerfile:1
#
# One image per BFF, all three from one build:
#
#   docker build --target web-bff    -t web-bff:0.1.0 .
#   docker build --target mobile-bff -t mobile-bff:0.1.0 .
#   docker build --target iot-bff    -t iot-bff:0.1.0 .
#
# The builder compiles the three binaries once (the `dist` profile: fat LTO,
# the shipping build); each final stage copies one of them onto distroless
# (glibc and libgcc for the binaries, CA certificates for rustls' peers; no
# shell, no package manager) and runs it as the image's non-root user.

# The workspace's toolchain (CI and the developers build with it; the
# workspace's rust-version is the minimum it supports).
ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
# cargo-chef turns the workspace's manifests and Cargo.lock into a recipe, so
# the dependencies build in a layer of their own that a source change leaves
# alone (it finds the workspace's members itself: no second list of them here).
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# The dependency layer: rebuilt only when the recipe (manifests, Cargo.lock)
# or vendor/ changes. vendor/ holds the patched async-graphql that
# [patch.crates-io] points at: a real crate, not a skeleton, so it is copied
# whole and cached with the other dependencies.
COPY --from=planner /src/recipe.json recipe.json
COPY vendor vendor
RUN cargo chef cook --profile dist --locked --recipe-path recipe.json \
        -p web-bff -p mobile-bff -p iot-bff
# The sources: only the workspace's own crates compile from here on.
COPY . .
RUN cargo build --profile dist --locked -p web-bff -p mobile-bff -p iot-bff

# Distroless' `nonroot` user (65532): numeric, so Kubernetes' runAsNonRoot
# can check it without reading /etc/passwd.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
USER 65532:65532

FROM runtime AS iot-bff
COPY --from=builder /src/target/dist/iot-bff /usr/local/bin/iot-bff
# Inside a container the listeners face the pod's network, not loopback.
ENV BFF_LISTEN=0.0.0.0:4002 BFF_ADMIN_LISTEN=0.0.0.0:9402
EXPOSE 4002 9402
ENTRYPOINT ["/usr/local/bin/iot-bff"]

FROM runtime AS mobile-bff
COPY --from=builder /src/target/dist/mobile-bff /usr/local/bin/mobile-bff
ENV BFF_LISTEN=0.0.0.0:4001 BFF_ADMIN_LISTEN=0.0.0.0:9401
EXPOSE 4001 9401
ENTRYPOINT ["/usr/local/bin/mobile-bff"]

# Last, so a plain `docker build .` gives web-bff.
FROM runtime AS web-bff
COPY --from=builder /src/target/dist/web-bff /usr/local/bin/web-bff
ENV BFF_LISTEN=0.0.0.0:4000 BFF_ADMIN_LISTEN=0.0.0.0:9400
EXPOSE 4000 9400
ENTRYPOINT ["/usr/local/bin/web-bff"]
