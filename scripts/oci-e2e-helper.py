#!/usr/bin/env python3
"""Helpers for scripts/oci-e2e.sh (standard library only).

  oci-archive LAYER_TAR OUT_TAR NAME
      Writes an OCI image-layout archive (what `ctr images import` and `podman load`
      read) of one uncompressed layer, named NAME (e.g. localhost/e2e/busybox:latest).
  pty [--rows R] [--cols C] [--prompt REGEX] [--send TEXT] [--prompt-wait S]
      [--timeout S] [--transcript FILE] -- ARGV...
      Runs ARGV on a new pseudo-terminal of size R x C (set before ARGV starts), waits
      for REGEX in its output (or PROMPT-WAIT seconds), types TEXT, and collects the
      output until ARGV exits. Writes the raw output to FILE and exits with ARGV's status
      (128+N if killed by signal N, 124 on timeout, after killing its process group).
  stats
      Reads numbers (one a line) on stdin; prints "n median mean min max".
  hyperfine-times JSON
      Prints the times of hyperfine's first result in milliseconds, one a line.
  reap MARK PATH PID
      SIGKILLs every process whose environment holds the entry MARK (e.g. VAR=value) or
      whose argv contains PATH, and their descendants, except PID, its ancestors and its
      descendants; prints one line for each.
  bundle-config CONFIG ROOTFS ARGV...
      Edits an OCI config.json in place: no terminal, process.args = ARGV, root =
      ROOTFS read-only, hostname e2e.
"""
import errno
import fcntl
import hashlib
import io
import json
import os
import platform
import re
import select
import signal
import statistics
import struct
import sys
import tarfile
import termios
import time


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest(), os.path.getsize(path)


def oci_archive(layer, out, name):
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    layer_hex, layer_size = sha256_file(layer)
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_hex]},
        "history": [{"created_by": "scripts/oci-e2e.sh"}],
    }
    config_b = json.dumps(config, sort_keys=True).encode()
    config_hex = hashlib.sha256(config_b).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + config_hex,
            "size": len(config_b),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": "sha256:" + layer_hex,
            "size": layer_size,
        }],
    }
    manifest_b = json.dumps(manifest, sort_keys=True).encode()
    manifest_hex = hashlib.sha256(manifest_b).hexdigest()
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + manifest_hex,
            "size": len(manifest_b),
            "platform": {"architecture": arch, "os": "linux"},
            # containerd takes the full name from its own annotation; podman and
            # skopeo read the OCI ref name.
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    }

    def add_bytes(tar, path, data):
        info = tarfile.TarInfo(path)
        info.size = len(data)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes(tar, "index.json", json.dumps(index).encode())
        add_bytes(tar, "blobs/sha256/" + config_hex, config_b)
        add_bytes(tar, "blobs/sha256/" + manifest_hex, manifest_b)
        tar.add(layer, arcname="blobs/sha256/" + layer_hex)


def run_pty(args):
    opts = {"--rows": "24", "--cols": "80", "--prompt": r"[#$] ", "--send": "",
            "--prompt-wait": "10", "--timeout": "60", "--transcript": None}
    while args and args[0] != "--":
        if args[0] not in opts or len(args) < 2:
            sys.exit("oci-e2e-helper pty: bad option " + args[0])
        opts[args[0]] = args[1]
        args = args[2:]
    argv = args[1:]
    if not argv:
        sys.exit("oci-e2e-helper pty: no command")
    rows, cols = int(opts["--rows"]), int(opts["--cols"])
    prompt = re.compile(opts["--prompt"].encode())
    send = opts["--send"].encode()
    prompt_wait, timeout = float(opts["--prompt-wait"]), float(opts["--timeout"])

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = dict(os.environ, TERM="xterm")
    pid = os.fork()
    if pid == 0:
        try:
            os.close(master)
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(slave, fd)
            if slave > 2:
                os.close(slave)
            os.execvpe(argv[0], argv, env)
        except OSError as e:
            os.write(2, ("exec %s: %s\n" % (argv[0], e)).encode())
        os._exit(127)
    os.close(slave)

    out = bytearray()
    start = time.monotonic()
    sent = not send
    status = None
    note = ""
    while True:
        now = time.monotonic()
        if now - start > timeout:
            note = "timeout after %gs" % timeout
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            status = 124
            break
        if not sent and (prompt.search(out) or now - start > prompt_wait):
            if not prompt.search(out):
                note = "no prompt after %gs, typed anyway" % prompt_wait
            os.write(master, send)
            sent = True
        ready, _, _ = select.select([master], [], [], 0.05)
        eof = False
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                data = b""
            out += data
            eof = not data
        wpid, st = os.waitpid(pid, os.WNOHANG)
        if wpid or eof:
            if not wpid:
                _, st = os.waitpid(pid, 0)
            # Whatever is still buffered on the master.
            while select.select([master], [], [], 0.2)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                out += data
            status = os.waitstatus_to_exitcode(st)
            if status < 0:
                status = 128 - status
            break
    if opts["--transcript"]:
        with open(opts["--transcript"], "wb") as f:
            f.write(bytes(out))
    else:
        sys.stdout.buffer.write(bytes(out))
    if note:
        print("oci-e2e-helper pty: " + note, file=sys.stderr)
    sys.exit(status)


def stats():
    xs = [float(line) for line in sys.stdin if line.strip()]
    if not xs:
        print("0 nan nan nan nan")
        return
    print("%d %.1f %.1f %.1f %.1f" % (len(xs), statistics.median(xs), statistics.mean(xs),
                                      min(xs), max(xs)))


def hyperfine_times(path):
    with open(path) as f:
        for t in json.load(f)["results"][0]["times"]:
            print("%.3f" % (t * 1000))


def reap(mark, path, keep):
    mark, path = mark.encode(), path.encode()

    def read(pid, name):
        try:
            with open("/proc/%d/%s" % (pid, name), "rb") as f:
                return f.read()
        except OSError:
            return b""

    for _ in range(3):
        parent = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                stat = read(int(d), "stat")
                if stat:
                    parent[int(d)] = int(stat.rsplit(b")", 1)[1].split()[1])
        # KEEP, its ancestors and its descendants are spared.
        spared = set()
        pid = keep
        while pid > 0 and pid not in spared:
            spared.add(pid)
            pid = parent.get(pid, 0)
        children = {}
        for pid, ppid in parent.items():
            children.setdefault(ppid, []).append(pid)
        todo = [keep]
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in spared:
                    spared.add(child)
                    todo.append(child)
        todo = [pid for pid in parent if pid not in spared and (
            mark in read(pid, "environ").split(b"\0") or path in read(pid, "cmdline"))]
        doomed = set(todo)
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in spared and child not in doomed:
                    doomed.add(child)
                    todo.append(child)
        victims = [(pid, read(pid, "cmdline")) for pid in sorted(doomed)]
        if not victims:
            return
        for pid, cmdline in victims:
            try:
                os.kill(pid, signal.SIGKILL)
                print("stopped leftover %s (pid %d)"
                      % (cmdline.replace(b"\0", b" ").decode(errors="replace")[:100], pid))
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def bundle_config(path, rootfs, argv):
    with open(path) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = argv
    cfg["root"] = {"path": rootfs, "readonly": True}
    cfg["hostname"] = "e2e"
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "oci-archive" and len(args) == 3:
        oci_archive(*args)
    elif cmd == "pty":
        run_pty(args)
    elif cmd == "stats":
        stats()
    elif cmd == "hyperfine-times" and len(args) == 1:
        hyperfine_times(args[0])
    elif cmd == "reap" and len(args) == 3:
        reap(args[0], args[1], int(args[2]))
    elif cmd == "bundle-config" and len(args) >= 3:
        bundle_config(args[0], args[1], args[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
