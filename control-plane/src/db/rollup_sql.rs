//! The rollup's SQL, written out (generated once from the bucket list; no
//! values in it): the column list and the upsert's sums.

/// The upper edge (ms) of each latency bucket: floor(2^(i/3)); the last
/// bucket also takes every latency above the one before it.
pub const EDGES: [i64; 60] = [
    1, 1, 1, 2, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 25, 32, 40, 50, 64, 80, 101, 128, 161, 203, 256,
    322, 406, 512, 645, 812, 1024, 1290, 1625, 2048, 2580, 3250, 4096, 5160, 6501, 8192, 10321,
    13003, 16384, 20642, 26007, 32768, 41285, 52015, 65536, 82570, 104031, 131072, 165140, 208063,
    262144, 330280, 416127, 524288, 660561, 832255,
];

/// The bucket columns, in order.
pub const BUCKETS: &str = "b00, b01, b02, b03, b04, b05, b06, b07, b08, b09, b10, b11, b12, b13, b14, b15, b16, b17, b18, b19, b20, b21, b22, b23, b24, b25, b26, b27, b28, b29, b30, b31, b32, b33, b34, b35, b36, b37, b38, b39, b40, b41, b42, b43, b44, b45, b46, b47, b48, b49, b50, b51, b52, b53, b54, b55, b56, b57, b58, b59";

/// What the upsert adds on a conflict. Tokens and cost saturate at 1e18
/// (`CELL_MAX`, the most a balance may hold in nano-dollars) rather than
/// overflow BIGINT (PostgreSQL refuses the whole ingest batch then).
pub const ADD_ON_CONFLICT: &str = "requests = r.requests + excluded.requests, \
errors = r.errors + excluded.errors, \
input_tokens = CASE WHEN r.input_tokens > 1000000000000000000 - excluded.input_tokens THEN 1000000000000000000 ELSE r.input_tokens + excluded.input_tokens END, \
output_tokens = CASE WHEN r.output_tokens > 1000000000000000000 - excluded.output_tokens THEN 1000000000000000000 ELSE r.output_tokens + excluded.output_tokens END, \
cost_nanos = CASE WHEN r.cost_nanos > 1000000000000000000 - excluded.cost_nanos THEN 1000000000000000000 ELSE r.cost_nanos + excluded.cost_nanos END, \
b00 = r.b00 + excluded.b00, b01 = r.b01 + excluded.b01, b02 = r.b02 + excluded.b02, b03 = r.b03 + excluded.b03, b04 = r.b04 + excluded.b04, b05 = r.b05 + excluded.b05, b06 = r.b06 + excluded.b06, b07 = r.b07 + excluded.b07, b08 = r.b08 + excluded.b08, b09 = r.b09 + excluded.b09, b10 = r.b10 + excluded.b10, b11 = r.b11 + excluded.b11, b12 = r.b12 + excluded.b12, b13 = r.b13 + excluded.b13, b14 = r.b14 + excluded.b14, b15 = r.b15 + excluded.b15, b16 = r.b16 + excluded.b16, b17 = r.b17 + excluded.b17, b18 = r.b18 + excluded.b18, b19 = r.b19 + excluded.b19, b20 = r.b20 + excluded.b20, b21 = r.b21 + excluded.b21, b22 = r.b22 + excluded.b22, b23 = r.b23 + excluded.b23, b24 = r.b24 + excluded.b24, b25 = r.b25 + excluded.b25, b26 = r.b26 + excluded.b26, b27 = r.b27 + excluded.b27, b28 = r.b28 + excluded.b28, b29 = r.b29 + excluded.b29, b30 = r.b30 + excluded.b30, b31 = r.b31 + excluded.b31, b32 = r.b32 + excluded.b32, b33 = r.b33 + excluded.b33, b34 = r.b34 + excluded.b34, b35 = r.b35 + excluded.b35, b36 = r.b36 + excluded.b36, b37 = r.b37 + excluded.b37, b38 = r.b38 + excluded.b38, b39 = r.b39 + excluded.b39, b40 = r.b40 + excluded.b40, b41 = r.b41 + excluded.b41, b42 = r.b42 + excluded.b42, b43 = r.b43 + excluded.b43, b44 = r.b44 + excluded.b44, b45 = r.b45 + excluded.b45, b46 = r.b46 + excluded.b46, b47 = r.b47 + excluded.b47, b48 = r.b48 + excluded.b48, b49 = r.b49 + excluded.b49, b50 = r.b50 + excluded.b50, b51 = r.b51 + excluded.b51, b52 = r.b52 + excluded.b52, b53 = r.b53 + excluded.b53, b54 = r.b54 + excluded.b54, b55 = r.b55 + excluded.b55, b56 = r.b56 + excluded.b56, b57 = r.b57 + excluded.b57, b58 = r.b58 + excluded.b58, b59 = r.b59 + excluded.b59";

/// The sums a summary reads, each cast so that both backends answer BIGINT.
pub const SUMS: &str = "CAST(SUM(requests) AS BIGINT) AS requests, CAST(SUM(errors) AS BIGINT) AS errors, \
CAST(SUM(input_tokens) AS BIGINT) AS input_tokens, CAST(SUM(output_tokens) AS BIGINT) AS output_tokens, \
CAST(SUM(cost_nanos) AS BIGINT) AS cost_nanos, \
CAST(SUM(b00) AS BIGINT) AS b00, CAST(SUM(b01) AS BIGINT) AS b01, CAST(SUM(b02) AS BIGINT) AS b02, CAST(SUM(b03) AS BIGINT) AS b03, CAST(SUM(b04) AS BIGINT) AS b04, CAST(SUM(b05) AS BIGINT) AS b05, CAST(SUM(b06) AS BIGINT) AS b06, CAST(SUM(b07) AS BIGINT) AS b07, CAST(SUM(b08) AS BIGINT) AS b08, CAST(SUM(b09) AS BIGINT) AS b09, CAST(SUM(b10) AS BIGINT) AS b10, CAST(SUM(b11) AS BIGINT) AS b11, CAST(SUM(b12) AS BIGINT) AS b12, CAST(SUM(b13) AS BIGINT) AS b13, CAST(SUM(b14) AS BIGINT) AS b14, CAST(SUM(b15) AS BIGINT) AS b15, CAST(SUM(b16) AS BIGINT) AS b16, CAST(SUM(b17) AS BIGINT) AS b17, CAST(SUM(b18) AS BIGINT) AS b18, CAST(SUM(b19) AS BIGINT) AS b19, CAST(SUM(b20) AS BIGINT) AS b20, CAST(SUM(b21) AS BIGINT) AS b21, CAST(SUM(b22) AS BIGINT) AS b22, CAST(SUM(b23) AS BIGINT) AS b23, CAST(SUM(b24) AS BIGINT) AS b24, CAST(SUM(b25) AS BIGINT) AS b25, CAST(SUM(b26) AS BIGINT) AS b26, CAST(SUM(b27) AS BIGINT) AS b27, CAST(SUM(b28) AS BIGINT) AS b28, CAST(SUM(b29) AS BIGINT) AS b29, CAST(SUM(b30) AS BIGINT) AS b30, CAST(SUM(b31) AS BIGINT) AS b31, CAST(SUM(b32) AS BIGINT) AS b32, CAST(SUM(b33) AS BIGINT) AS b33, CAST(SUM(b34) AS BIGINT) AS b34, CAST(SUM(b35) AS BIGINT) AS b35, CAST(SUM(b36) AS BIGINT) AS b36, CAST(SUM(b37) AS BIGINT) AS b37, CAST(SUM(b38) AS BIGINT) AS b38, CAST(SUM(b39) AS BIGINT) AS b39, CAST(SUM(b40) AS BIGINT) AS b40, CAST(SUM(b41) AS BIGINT) AS b41, CAST(SUM(b42) AS BIGINT) AS b42, CAST(SUM(b43) AS BIGINT) AS b43, CAST(SUM(b44) AS BIGINT) AS b44, CAST(SUM(b45) AS BIGINT) AS b45, CAST(SUM(b46) AS BIGINT) AS b46, CAST(SUM(b47) AS BIGINT) AS b47, CAST(SUM(b48) AS BIGINT) AS b48, CAST(SUM(b49) AS BIGINT) AS b49, CAST(SUM(b50) AS BIGINT) AS b50, CAST(SUM(b51) AS BIGINT) AS b51, CAST(SUM(b52) AS BIGINT) AS b52, CAST(SUM(b53) AS BIGINT) AS b53, CAST(SUM(b54) AS BIGINT) AS b54, CAST(SUM(b55) AS BIGINT) AS b55, CAST(SUM(b56) AS BIGINT) AS b56, CAST(SUM(b57) AS BIGINT) AS b57, CAST(SUM(b58) AS BIGINT) AS b58, CAST(SUM(b59) AS BIGINT) AS b59";

/// The coarse histogram of the per-key views (migration 0006): `c[k]` counts
/// the fine buckets 3k..3k+2, so its upper edge is `EDGES[3k + 2]`.
pub const COARSE: &str = "c00, c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19";

/// `ADD_ON_CONFLICT` for the per-key views.
pub const ADD_ON_CONFLICT_COARSE: &str = "requests = r.requests + excluded.requests, \
errors = r.errors + excluded.errors, \
input_tokens = CASE WHEN r.input_tokens > 1000000000000000000 - excluded.input_tokens THEN 1000000000000000000 ELSE r.input_tokens + excluded.input_tokens END, \
output_tokens = CASE WHEN r.output_tokens > 1000000000000000000 - excluded.output_tokens THEN 1000000000000000000 ELSE r.output_tokens + excluded.output_tokens END, \
cost_nanos = CASE WHEN r.cost_nanos > 1000000000000000000 - excluded.cost_nanos THEN 1000000000000000000 ELSE r.cost_nanos + excluded.cost_nanos END, \
c00 = r.c00 + excluded.c00, c01 = r.c01 + excluded.c01, c02 = r.c02 + excluded.c02, c03 = r.c03 + excluded.c03, c04 = r.c04 + excluded.c04, c05 = r.c05 + excluded.c05, c06 = r.c06 + excluded.c06, c07 = r.c07 + excluded.c07, c08 = r.c08 + excluded.c08, c09 = r.c09 + excluded.c09, c10 = r.c10 + excluded.c10, c11 = r.c11 + excluded.c11, c12 = r.c12 + excluded.c12, c13 = r.c13 + excluded.c13, c14 = r.c14 + excluded.c14, c15 = r.c15 + excluded.c15, c16 = r.c16 + excluded.c16, c17 = r.c17 + excluded.c17, c18 = r.c18 + excluded.c18, c19 = r.c19 + excluded.c19";

/// `SUMS` for the per-key views.
pub const SUMS_COARSE: &str = "CAST(SUM(requests) AS BIGINT) AS requests, CAST(SUM(errors) AS BIGINT) AS errors, \
CAST(SUM(input_tokens) AS BIGINT) AS input_tokens, CAST(SUM(output_tokens) AS BIGINT) AS output_tokens, \
CAST(SUM(cost_nanos) AS BIGINT) AS cost_nanos, \
CAST(SUM(c00) AS BIGINT) AS c00, CAST(SUM(c01) AS BIGINT) AS c01, CAST(SUM(c02) AS BIGINT) AS c02, CAST(SUM(c03) AS BIGINT) AS c03, CAST(SUM(c04) AS BIGINT) AS c04, CAST(SUM(c05) AS BIGINT) AS c05, CAST(SUM(c06) AS BIGINT) AS c06, CAST(SUM(c07) AS BIGINT) AS c07, CAST(SUM(c08) AS BIGINT) AS c08, CAST(SUM(c09) AS BIGINT) AS c09, CAST(SUM(c10) AS BIGINT) AS c10, CAST(SUM(c11) AS BIGINT) AS c11, CAST(SUM(c12) AS BIGINT) AS c12, CAST(SUM(c13) AS BIGINT) AS c13, CAST(SUM(c14) AS BIGINT) AS c14, CAST(SUM(c15) AS BIGINT) AS c15, CAST(SUM(c16) AS BIGINT) AS c16, CAST(SUM(c17) AS BIGINT) AS c17, CAST(SUM(c18) AS BIGINT) AS c18, CAST(SUM(c19) AS BIGINT) AS c19";
