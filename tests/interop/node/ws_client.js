// Node's `ws` as a client of a torsion echo server:
// `node ws_client.js ws://127.0.0.1:PORT/ COMPRESSED MAX`. One line per
// check; exits 1 at the first that fails.
const WebSocket = require("ws");
const crypto = require("crypto");
const [url, compressedArg, maxArg] = process.argv.slice(2);
const compressed = compressedArg === "1";
const limit = Number(maxArg);

function check(what, ok, detail = "") {
  console.log((ok ? "ok   " : "FAIL ") + what + (detail ? ": " + detail : ""));
  if (!ok) process.exit(1);
}

function open(options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

function next(ws) {
  return new Promise((resolve) => ws.once("message", (data, isBinary) => resolve({ data, isBinary })));
}

async function main() {
  const ws = await open({ perMessageDeflate: true, maxPayload: 0 });
  check("permessage-deflate as the server was set", (ws.extensions.includes("permessage-deflate")) === compressed, ws.extensions);
  ws.send("héllo, wörld ✓");
  let m = await next(ws);
  check("text echoed", !m.isBinary && m.data.toString() === "héllo, wörld ✓");
  const blob = crypto.randomBytes(limit / 2);
  ws.send(blob);
  m = await next(ws);
  check("binary echoed", m.isBinary && Buffer.compare(m.data, blob) === 0);
  ws.send("frag", { fin: false });
  ws.send("ment", { fin: false });
  ws.send("ed ✓", { fin: true });
  m = await next(ws);
  check("a fragmented message echoed whole", m.data.toString() === "fragmented ✓");
  const pong = new Promise((resolve) => ws.once("pong", resolve));
  ws.ping("are you there");
  check("ping answered with a pong", (await pong).toString() === "are you there");
  const closed = new Promise((resolve) => ws.once("close", (code) => resolve(code)));
  ws.close(1000, "done");
  check("closed cleanly", (await closed) === 1000);

  const big = await open({ perMessageDeflate: false });
  const refused = new Promise((resolve) => big.once("close", (code) => resolve(code)));
  big.send(Buffer.alloc(limit + 1, 120));
  check("a message over the limit refused with 1009", (await refused) === 1009);
}

main().catch((e) => { console.log("FAIL " + e); process.exit(1); });
