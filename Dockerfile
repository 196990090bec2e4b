# Build stages for docker-compose.yml.
FROM rust:1.85-bookworm AS build
WORKDIR /src
RUN rustup target add wasm32-wasip1
COPY . .
RUN cargo build --release --target wasm32-wasip1 -p tollgate-filter \
 && cargo build --release -p tollgate-control-plane -p tollgate-mock-upstream

FROM debian:bookworm-slim AS control-plane
COPY --from=build /src/target/release/tollgate-control-plane /usr/local/bin/
ENTRYPOINT ["tollgate-control-plane"]

FROM debian:bookworm-slim AS mock-upstream
COPY --from=build /src/target/release/tollgate-mock-upstream /usr/local/bin/

FROM envoyproxy/envoy:v1.40.0 AS gateway
COPY --from=build /src/target/wasm32-wasip1/release/tollgate_filter.wasm /etc/tollgate/tollgate_filter.wasm
