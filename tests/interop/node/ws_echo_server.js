// Node's `ws` as an echo server (compression off), for torsion's load
// generator: `node ws_echo_server.js [PORT]` prints `listening PORT` once
// it accepts (PORT 0: any free port on 127.0.0.1).
const WebSocket = require("ws");
const wss = new WebSocket.WebSocketServer({ host: "127.0.0.1", port: Number(process.argv[2] || 0), perMessageDeflate: false });
wss.on("listening", () => console.log("listening " + wss.address().port));
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
