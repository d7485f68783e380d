#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Re-records the transcripts recorded from real QEMU (see README):
#
#     tests/data/qmp/record.py qmp > tests/data/qmp/qmp-session.txt
#     tests/data/qmp/record.py qga > tests/data/qmp/qga-session.txt
#
# "qmp" starts qemu-system-x86_64 -M none with a QMP socket, "qga" starts qemu-ga as a host
# process (-m unix-listen); both in a private temporary directory, killed at the end.  Review the
# diff: timestamps and pids change from one recording to the next.  Not run by the test suite.

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for _ in range(200):
        try:
            s.connect(path)
            return s
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"cannot connect to {path}")


class Session:
    def __init__(self, sock, out):
        self.s = sock
        self.out = out
        self.buf = b""
        self.eof = False

    def read_lines(self, wait):
        """What the server sends: waits up to `wait` seconds for a first complete line (or EOF),
        then 50 ms more for anything following it; split into lines."""
        deadline = time.monotonic() + wait
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.s.settimeout(left)
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                break
            if not d:
                self.eof = True
                break
            self.buf += d
            if b"\n" in self.buf:
                deadline = min(deadline, time.monotonic() + 0.05)
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.emit_server(line + b"\n")

    def emit_server(self, raw):
        if raw.endswith(b"\r\n"):
            text = raw[:-2]
        else:
            text = raw[:-1]
        if text.startswith(b"\xff"):
            self.out.append("<ff " + text[1:].decode())
        else:
            self.out.append("< " + text.decode())

    def send(self, text, wait=2):
        if text == "\xff":
            self.s.sendall(b"\xff")
            self.out.append(">ff")
        else:
            self.s.sendall(text.encode() + b"\n")
            self.out.append("> " + text)
        self.read_lines(wait)

    def comment(self, text):
        self.out.append("# " + text)


def qemu_version(binary):
    v = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    return v.splitlines()[0]


def record_qmp(tmp):
    sock = os.path.join(tmp, "qmp.sock")
    argv = ["qemu-system-x86_64", "-M", "none", "-nodefaults", "-display", "none",
            "-qmp", f"unix:{sock},server=on,wait=off"]
    p = subprocess.Popen(argv)
    out = ["# Recorded from real QEMU by tests/data/qmp/record.py qmp (do not edit by hand).",
           "# " + qemu_version("qemu-system-x86_64"),
           "# " + " ".join(argv[:-1]) + " unix:SOCKET,server=on,wait=off",
           "# QEMU ends every line with CRLF; note that the SHUTDOWN event of 'quit' comes",
           "# before its reply, and that QEMU closes the connection afterwards.",
           "!eol crlf"]
    try:
        s = Session(connect(sock), out)
        s.read_lines(0.5)
        s.send('{"execute": "qmp_capabilities"}')
        s.send('{"execute": "query-status"}')
        s.send('{"execute": "qom-get", "arguments": {"path": "/machine/nonexistent", '
               '"property": "type"}}')
        s.send('{"execute": "quit"}', wait=5)
        if s.eof:
            out.append("!close")
    finally:
        p.kill() if p.poll() is None else None
        p.wait()
    return out


def record_qga(tmp):
    sock = os.path.join(tmp, "qga.sock")
    argv = ["qemu-ga", "-m", "unix-listen", "-p", sock, "-f", os.path.join(tmp, "qga.pid"),
            "-t", tmp]
    p = subprocess.Popen(argv)
    f = "/tmp/fame-qga-record.txt"
    sync = 1804289383
    body = []
    head = ["# Recorded from the real guest agent by tests/data/qmp/record.py qga (do not edit",
           "# by hand), run as a host process: qemu-ga -m unix-listen -p SOCKET.",
           "# " + qemu_version("qemu-ga"),
           "# qemu-ga ends lines with LF.  The 0xFF the client sends to reset the agent's parser",
           "# makes it answer with an error, which the client skips.  @SYNC@ stands for the",
           f"# random guest-sync-delimited id (recorded as {sync}).",
           "!eol lf"]
    out = body
    try:
        s = Session(connect(sock), out)
        s.send("\xff")
        s.send(json.dumps({"execute": "guest-sync-delimited", "arguments": {"id": sync}}))
        s.send('{"execute": "guest-ping"}')
        s.comment("guest-exec: polled once while running, then after it exited")
        s.send('{"execute": "guest-exec", "arguments": {"path": "/bin/sh", "arg": '
               '["-c", "sleep 0.5; echo hello; exit 3"], "capture-output": true}}')
        pid = json.loads(out[-1][2:])["return"]["pid"]
        s.send(json.dumps({"execute": "guest-exec-status", "arguments": {"pid": pid}}))
        time.sleep(1)
        s.send(json.dumps({"execute": "guest-exec-status", "arguments": {"pid": pid}}))
        s.comment("guest-exec with stdin")
        s.send(json.dumps({"execute": "guest-exec", "arguments": {
            "path": "/bin/cat", "capture-output": True, "input-data": "aW5wdXQgZGF0YQ=="}}))
        pid = json.loads(out[-1][2:])["return"]["pid"]
        time.sleep(0.3)
        s.send(json.dumps({"execute": "guest-exec-status", "arguments": {"pid": pid}}))
        s.comment("guest-exec of a program that writes to stderr and is killed by a signal")
        s.send(json.dumps({"execute": "guest-exec", "arguments": {
            "path": "/bin/sh", "arg": ["-c", "echo oops >&2; kill -KILL $$"],
            "capture-output": True}}))
        pid = json.loads(out[-1][2:])["return"]["pid"]
        time.sleep(0.3)
        s.send(json.dumps({"execute": "guest-exec-status", "arguments": {"pid": pid}}))
        s.comment("guest-exec of a program that does not exist")
        s.send('{"execute": "guest-exec", "arguments": {"path": "/nonexistent/x", '
               '"capture-output": true}}')
        s.comment("guest-file-open/write/close, then chmod 640 through guest-exec")
        s.send(json.dumps({"execute": "guest-file-open", "arguments": {"path": f, "mode": "w"}}))
        handle = json.loads(out[-1][2:])["return"]
        s.send(json.dumps({"execute": "guest-file-write",
                           "arguments": {"handle": handle, "buf-b64": "aGVsbG8sIGZpbGUK"}}))
        s.send(json.dumps({"execute": "guest-file-close", "arguments": {"handle": handle}}))
        s.send(json.dumps({"execute": "guest-exec", "arguments": {
            "path": "/bin/chmod", "arg": ["640", f], "capture-output": True}}))
        pid = json.loads(out[-1][2:])["return"]["pid"]
        time.sleep(0.3)
        s.send(json.dumps({"execute": "guest-exec-status", "arguments": {"pid": pid}}))
    finally:
        p.kill()
        p.wait()
        if os.path.exists(f):
            os.unlink(f)
    return head + [line.replace(str(sync), "@SYNC@") for line in body]


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("qmp", "qga"):
        raise SystemExit("usage: record.py qmp|qga")
    tmp = tempfile.mkdtemp(prefix="fame-record-")
    try:
        out = record_qmp(tmp) if sys.argv[1] == "qmp" else record_qga(tmp)
    finally:
        shutil.rmtree(tmp)
    print("\n".join(out))


if __name__ == "__main__":
    main()
