// Quick start: the gateway's base URL and snippets (curl, Python, Node, and
// coding agents / IDEs that speak the OpenAI or the Anthropic API) with the
// chosen model filled in; choosing a model rewrites them.

import { get } from "./api.js";
import { h, clear, button, copy } from "./dom.js";

export function snippets(base, model) {
  const v1 = `${base}/v1`;
  return [
    ["curl", `export TOLLGATE_API_KEY=...   # your key\ncurl ${v1}/chat/completions \\\n  -H "Authorization: Bearer $TOLLGATE_API_KEY" \\\n  -H "Content-Type: application/json" \\\n  -d '{"model": "${model}", "messages": [{"role": "user", "content": "Hello"}]}'`],
    ["Python (openai)", `import os\nfrom openai import OpenAI\n\nclient = OpenAI(base_url="${v1}", api_key=os.environ["TOLLGATE_API_KEY"])\nreply = client.chat.completions.create(\n    model="${model}",\n    messages=[{"role": "user", "content": "Hello"}],\n)\nprint(reply.choices[0].message.content)`],
    ["Node (openai)", `import OpenAI from "openai";\n\nconst client = new OpenAI({ baseURL: "${v1}", apiKey: process.env.TOLLGATE_API_KEY });\nconst reply = await client.chat.completions.create({\n  model: "${model}",\n  messages: [{ role: "user", content: "Hello" }],\n});\nconsole.log(reply.choices[0].message.content);`],
    ["Anthropic API (curl)", `curl ${v1}/messages \\\n  -H "x-api-key: $TOLLGATE_API_KEY" \\\n  -H "anthropic-version: 2023-06-01" \\\n  -H "Content-Type: application/json" \\\n  -d '{"model": "${model}", "max_tokens": 256, "messages": [{"role": "user", "content": "Hello"}]}'`],
    ["Claude Code (Anthropic API)", `export ANTHROPIC_BASE_URL=${base}\nexport ANTHROPIC_AUTH_TOKEN=$TOLLGATE_API_KEY\nexport ANTHROPIC_MODEL=${model}\nclaude`],
    ["Codex CLI, Aider and other OpenAI-API tools", `export OPENAI_BASE_URL=${v1}\nexport OPENAI_API_BASE=${v1}   # older tools read this name\nexport OPENAI_API_KEY=$TOLLGATE_API_KEY\naider --model openai/${model}`],
    ["Continue (IDE), config.yaml", `models:\n  - name: ${model} via Tollgate\n    provider: openai\n    model: ${model}\n    apiBase: ${v1}\n    apiKey: \${{ secrets.TOLLGATE_API_KEY }}`],
  ];
}

export async function render(root, { session, arg }) {
  const models = (await get("/v1/models")).data.map((m) => m.id);
  let chosen = arg && models.includes(decodeURIComponent(arg)) ? decodeURIComponent(arg) : models[0] || "MODEL";
  const base = session.gateway_url;
  const list = h("div", { class: "tabs", role: "group", "aria-label": "Model" });
  const out = h("div");
  const draw = () => {
    clear(list, models.map((m) => h("button", { type: "button", "aria-pressed": String(m === chosen), onclick: () => { chosen = m; draw(); } }, m)));
    clear(out, snippets(base, chosen).map(([title, text]) => h("section", { class: "card" },
      h("div", { class: "head" }, h("h2", {}, title), button("Copy", () => copy(text), { class: "secondary", "aria-label": `Copy ${title}` })),
      h("pre", {}, h("code", { class: "snippet" }, text)))));
  };
  draw();
  clear(root, h("h1", {}, "Quick start"),
    h("p", {}, "Base URL: ", h("code", { class: "base-url" }, `${base}/v1`), " — send your API key as a bearer token (or x-api-key)."),
    h("h2", {}, "Model"), models.length ? list : h("p", { class: "muted" }, "Your key may use no model."), out);
}
