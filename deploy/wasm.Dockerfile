# The filter as an OCI image for Istio's WasmPlugin and Envoy Gateway's
# EnvoyExtensionPolicy (Istio's Wasm image spec, compat variant: one layer
# holding plugin.wasm at the root of a scratch image). Build the .wasm first
# (./tollgate setup, or the Dockerfile's build stage), then from the
# repository's root:
#   docker build -f deploy/wasm.Dockerfile -t registry.example.com/tollgate/filter:0.1.0 .
FROM scratch
COPY target/wasm32-wasip1/release/tollgate_filter.wasm ./plugin.wasm
