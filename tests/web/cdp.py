#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A small Chrome DevTools Protocol driver for the page tests.

Only the stdlib and Debian's python3-websocket (websocket-client).  Launches headless
Chromium with its own temp profile, opens one URL and offers evaluate / wait_for /
screenshot / console_errors / close.

CLI: the actions run in the order given, so a test can change the server's data between
two waits in one browser session:

  cdp.py URL [--wait JS] [--eval JS] [--run 'PROGRAM ARG...'] [--screenshot FILE] ...
         [--timeout SECONDS] [--size WxH]

Each --eval prints its value as one JSON line.  Exit 1 with a message on stderr when a
wait times out, the page threw, or it logged an error/CSP violation.
"""
import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import websocket
except ImportError:   # a pyenv/venv python: fall back to Debian's package
    sys.path.append("/usr/lib/python3/dist-packages")
    import websocket


class CDPError(Exception):
    pass


class Browser:
    def __init__(self, url=None, size=(1280, 900), start_timeout=20):
        self.tmp = tempfile.mkdtemp(prefix="fame-cdp-")
        self.errors = []
        self.events = []
        self.next_id = 0
        self.proc = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--remote-debugging-port=0", "--remote-allow-origins=*",
             "--user-data-dir=" + self.tmp, "--window-size=%d,%d" % size, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port = self._port(start_timeout)
            targets = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port))
            page = next(t for t in targets if t.get("type") == "page")
            self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30,
                                                  suppress_origin=True)
            for domain in ("Page", "Runtime", "Log"):
                self.call(domain + ".enable")
            if url:
                self.open(url)
        except Exception:
            self.close()
            raise

    def _port(self, timeout):
        # Chromium writes the port it chose (port 0) into DevToolsActivePort; poll for it.
        path = os.path.join(self.tmp, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CDPError("chromium exited with status %d" % self.proc.returncode)
            try:
                with open(path) as f:
                    line = f.readline().strip()
                if line:
                    return int(line)
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        raise CDPError("chromium did not write DevToolsActivePort within %ds" % timeout)

    def _event(self, msg):
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            desc = d.get("exception", {}).get("description") or d.get("text", "exception")
            self.errors.append("exception: " + desc.splitlines()[0])
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = [str(a.get("value", a.get("description", ""))) for a in p.get("args", [])]
            self.errors.append("console.error: " + " ".join(args))
        elif m == "Log.entryAdded":
            e = p.get("entry", {})
            # Network errors (a 404 favicon, the server going away on purpose) are not page
            # bugs; script errors and CSP ("security") violations are.
            if e.get("level") == "error" and e.get("source") in ("javascript", "security", "violation"):
                self.errors.append("%s: %s" % (e.get("source"), e.get("text")))
        elif m == "Page.javascriptDialogOpening":   # alert() etc.: record it, then dismiss
            self.errors.append("dialog %s: %s" % (p.get("type"), p.get("message")))
            self._send("Page.handleJavaScriptDialog", {"accept": True})
        self.events.append(m)

    def _send(self, method, params=None):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params or {}}))
        return self.next_id

    def call(self, method, params=None):
        want = self._send(method, params)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == want:
                if "error" in msg:
                    raise CDPError("%s: %s" % (method, msg["error"].get("message")))
                return msg.get("result", {})
            if "method" in msg:
                self._event(msg)

    def open(self, url, timeout=30):
        self.call("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'", timeout)

    def evaluate(self, js):
        r = self.call("Runtime.evaluate", {"expression": js, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CDPError("evaluate failed: %s" % (d.get("exception", {}).get("description") or d.get("text")))
        return r.get("result", {}).get("value")

    def wait_for(self, cond, timeout=10, interval=0.05):
        """Poll the JS condition until truthy; synchronise on state, never a fixed sleep."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                v = self.evaluate(cond)
                if v:
                    return v
            except CDPError as e:
                last = e
            if time.monotonic() >= deadline:
                raise CDPError("timed out after %ss waiting for: %s%s"
                               % (timeout, cond, " (%s)" % last if last else ""))
            time.sleep(interval)

    def screenshot(self, path):
        m = self.call("Page.getLayoutMetrics")
        size = m.get("cssContentSize") or m["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        r = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    def console_errors(self):
        self.evaluate("0")   # drain events that arrived since the last call
        return list(self.errors)

    def close(self):
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 15)   # chromium forks helpers: end its whole group
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main(argv):
    if len(argv) < 2 or argv[1].startswith("-"):
        sys.exit(__doc__)
    url, rest = argv[1], argv[2:]
    timeout, size, actions = 15.0, (1280, 900), []
    while rest:
        if len(rest) < 2:
            sys.exit("cdp.py: %s needs a value" % rest[0])
        opt, val, rest = rest[0], rest[1], rest[2:]
        if opt == "--timeout":
            timeout = float(val)
        elif opt == "--size":
            size = tuple(int(x) for x in val.split("x"))
        elif opt in ("--wait", "--eval", "--run", "--screenshot"):
            actions.append((opt, val))
        else:
            sys.exit("cdp.py: unknown option " + opt)
    b = None
    try:
        b = Browser(url, size)
        for opt, val in actions:
            if opt == "--wait":
                b.wait_for(val, timeout)
            elif opt == "--eval":
                print(json.dumps(b.evaluate(val)), flush=True)
            elif opt == "--run":
                subprocess.run(shlex.split(val), check=True)   # an argv, never a shell
            else:
                b.screenshot(val)
        errs = b.console_errors()
        if errs:
            print("cdp.py: page errors:\n  " + "\n  ".join(errs), file=sys.stderr)
            return 1
        return 0
    except (CDPError, subprocess.CalledProcessError, OSError) as e:
        print("cdp.py: " + str(e), file=sys.stderr)
        if b:
            for err in b.errors:
                print("cdp.py: page error: " + err, file=sys.stderr)
        return 1
    finally:
        if b:
            b.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
