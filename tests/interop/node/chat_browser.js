// Two headless Chromium pages (Debian's, driven by puppeteer-core) and one
// line client chat through a torsion chat server:
// `node chat_browser.js PAGE_URL LINE_PORT SCREENSHOT.png`. One line per
// check; exits 1 at the first that fails.
const puppeteer = require("puppeteer-core");
const net = require("net");
const [pageUrl, linePort, screenshot] = process.argv.slice(2);
// Generous: a debug build on a busy 2-core machine (the CI stress round).
const WAIT = 60000;

function check(what, ok, detail = "") {
  console.log((ok ? "ok   " : "FAIL ") + what + (detail ? ": " + detail : ""));
  if (!ok) process.exit(1);
}

// A line client: its lines as they come, and a way to wait for one.
function lineClient(port) {
  const sock = net.connect(Number(port), "127.0.0.1");
  const lines = [];
  let buf = "";
  const waiters = [];
  sock.on("data", (d) => {
    buf += d.toString("utf8");
    let i;
    while ((i = buf.indexOf("\r\n")) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 2);
    }
    for (const w of waiters.splice(0)) w();
  });
  const waitFor = (line) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no line " + JSON.stringify(line) + "; got " + JSON.stringify(lines))), WAIT);
    const look = () => { if (lines.includes(line)) { clearTimeout(timer); resolve(); } else waiters.push(look); };
    look();
  });
  return { send: (text) => sock.write(text + "\r\n"), waitFor, close: () => sock.end() };
}

async function join(browser, name) {
  const page = await browser.newPage();
  await page.setViewport({ width: 900, height: 560 });
  await page.goto(pageUrl, { waitUntil: "load" });
  await page.waitForSelector("#name:not([disabled])", { timeout: WAIT, polling: 100 });
  await page.type("#name", name);
  await page.click("#join");
  return page;
}

async function seesLine(page, text) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll("#log li")].some((li) => li.textContent === t),
    { timeout: WAIT, polling: 100 }, text);
}

async function main() {
  const browser = await puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    protocolTimeout: 2 * WAIT,
    timeout: 2 * WAIT,
    // Every page stays live though only one is in front.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
      "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
      "--disable-backgrounding-occluded-windows"],
  });
  try {
    const carol = lineClient(linePort);
    await carol.waitFor("What's your name?");
    carol.send("carol");
    await carol.waitFor("Welcome, carol!");

    const alice = await join(browser, "alice");
    await alice.waitForSelector("#say-form:not([hidden])", { timeout: WAIT, polling: 100 });
    check("alice joined from a browser", true);
    const bob = await join(browser, "bob");
    await bob.waitForSelector("#say-form:not([hidden])", { timeout: WAIT, polling: 100 });
    check("bob joined from another page", true);

    await alice.bringToFront();
    await alice.type("#say", "hello from alice ✓");
    await alice.click("#send");
    await seesLine(bob, "<alice> hello from alice ✓");
    check("bob's page got alice's line", true);
    await carol.waitFor("<alice> hello from alice ✓");
    check("the line client got it too", true);

    carol.send("hi from the terminal");
    await seesLine(alice, "<carol> hi from the terminal");
    await seesLine(bob, "<carol> hi from the terminal");
    check("both pages got the line client's line", true);

    await alice.waitForFunction(
      () => [...document.querySelectorAll("#who li")].map((li) => li.textContent).join(",") === "alice (you),bob,carol",
      { timeout: WAIT, polling: 100 });
    check("alice's page shows who is there", true);

    const again = await join(browser, "alice");
    await again.waitForFunction(
      () => document.getElementById("error").textContent.includes("is taken"),
      { timeout: WAIT, polling: 100 });
    check("a taken name is said so on the page", true);

    await bob.bringToFront();
    await bob.type("#say", "/me waves");
    await bob.click("#send");
    await seesLine(alice, "* bob waves");
    await alice.screenshot({ path: screenshot });
    check("screenshot kept", true, screenshot);
    carol.close();

    // The server goes away (the test stops it when asked), and comes back:
    // the page says so, reconnects and takes its name again.
    console.log("STOP");
    await alice.waitForFunction(
      () => document.getElementById("status").textContent.includes("the server went away"),
      { timeout: WAIT, polling: 100 });
    check("the page says the server went away", true);
    console.log("START");
    await alice.waitForFunction(
      () => document.getElementById("status").textContent === "connected as alice",
      { timeout: WAIT, polling: 100 }).catch(async (e) => {
        const state = await alice.evaluate(() => document.getElementById("status").textContent + " | " +
          [...document.querySelectorAll("#log li")].map((li) => li.textContent).join(" / "));
        throw new Error(e.message + "; the page: " + state);
      });
    check("the page reconnected and took its name again", true);
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.log("FAIL " + e); process.exit(1); });
