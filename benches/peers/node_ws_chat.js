// A chat server on Node's `ws` (compression off) with torsion's chat
// semantics, for the WebSocket chat benchmark: the first message after
// "What's your name?" is the name ("Welcome, NAME!" or "Name taken,
// please choose another."), and every later message goes to every other
// named client as "<name> message". `node node_ws_chat.js [PORT]` prints
// the port once it listens (PORT 0: any free port on 127.0.0.1). Needs the
// `ws` package (tests/interop/node: NODE_PATH is set by the bench).
const WebSocket = require("ws");
const wss = new WebSocket.WebSocketServer({ host: "127.0.0.1", port: Number(process.argv[2] || 0), perMessageDeflate: false });
const users = new Map();
wss.on("listening", () => console.log(String(wss.address().port)));
wss.on("connection", (ws) => {
  let name = null;
  ws.send("What's your name?");
  ws.on("message", (data) => {
    const text = data.toString("utf8");
    if (name === null) {
      if (users.has(text)) { ws.send("Name taken, please choose another."); return; }
      name = text;
      users.set(name, ws);
      ws.send("Welcome, " + name + "!");
      return;
    }
    const line = "<" + name + "> " + text;
    for (const [other, peer] of users) {
      if (other !== name && peer.readyState === WebSocket.OPEN) peer.send(line);
    }
  });
  ws.on("close", () => { if (name !== null && users.get(name) === ws) users.delete(name); });
});
