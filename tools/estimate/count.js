// Reads one JSON string per line on stdin; prints {"cl100k":n,"o200k":n} per line.
const cl = require("gpt-tokenizer/cjs/encoding/cl100k_base");
const o2 = require("gpt-tokenizer/cjs/encoding/o200k_base");
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
for (const line of lines) {
  const text = JSON.parse(line);
  console.log(JSON.stringify({ cl100k: cl.encode(text).length, o200k: o2.encode(text).length }));
}
