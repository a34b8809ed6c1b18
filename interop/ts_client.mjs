// Interop: the official TypeScript SDK client (@modelcontextprotocol/sdk, pinned in
// interop/sdk_clients.sh) against `mcpsim serve`.
//
// It initializes, lists tools, calls a fast tool, a slow tool (over an SSE response that stays
// open for a second) and a tool that reports progress, and checks every answer — the same checks
// as interop/python_client.py. Exit 0 if all holds; otherwise one line per problem and exit 1.
//
//     node ts_client.mjs http://127.0.0.1:PORT/mcp

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = process.argv[2];
if (!url) {
  console.error("usage: ts_client.mjs URL");
  process.exit(2);
}

const problems = [];
function expect(what, got, want) {
  const same = JSON.stringify(got) === JSON.stringify(want);
  console.log(`${same ? "ok      " : "MISMATCH"} ${what}: ${JSON.stringify(got)}` + (same ? "" : ` (wanted ${JSON.stringify(want)})`));
  if (!same) problems.push(what);
}
const text = (r) => r.content.filter((c) => c.type === "text").map((c) => c.text).join("");

const client = new Client({ name: "mcpsim-interop", version: "0" });
const transport = new StreamableHTTPClientTransport(new URL(url));
await client.connect(transport);
const server = client.getServerVersion();
console.log(`ok       initialize: ${server?.name} ${server?.version}, session ${transport.sessionId}`);
if (!transport.sessionId) problems.push("no session id");

const tools = (await client.listTools()).tools.map((t) => t.name);
for (const want of ["get_greeting", "progress_operation", "slow_operation"]) {
  expect(`tools/list has ${want}`, tools.includes(want), true);
}

let r = await client.callTool({ name: "get_greeting", arguments: { name: "interop" } });
expect("get_greeting", text(r), "Hello, interop!");

r = await client.callTool({ name: "slow_operation", arguments: { seconds: 1 } });
expect("slow_operation", text(r), "Completed after 1 seconds");

const seen = [];
r = await client.callTool(
  { name: "progress_operation", arguments: { seconds: 0.6, steps: 3 } },
  undefined,
  { onprogress: (p) => seen.push(p.progress) },
);
expect("progress_operation", text(r), "Completed 3 steps");
expect("progress notifications received", seen.length, 3);
expect("progress values increase", seen.every((p, i) => i === 0 || p > seen[i - 1]), true);

await client.close();
if (problems.length) {
  console.log(`FAILED: ${problems.join(", ")}`);
  process.exit(1);
}
console.log("all checks passed");
