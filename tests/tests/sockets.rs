//! Unix domain sockets end to end: python3's socket module, natively and in the sandbox.

use std::path::Path;
use std::process::Command;

use tests::*;

/// A socket pair, and a server on an abstract name that a forked child connects to and
/// streams 100000 bytes through.
const SCRIPTS: &[&str] = &[
    "import socket; a,b=socket.socketpair(); a.send(b'hi'); print(b.recv(2))",
    r#"
import os, socket
name = '\0runsc-test.%d' % os.getpid()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(name); s.listen(1)
pid = os.fork()
if pid == 0:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(name); c.sendall(b'x' * 100000); c.close(); os._exit(0)
conn, peer = s.accept()
data = b''
while True:
    d = conn.recv(65536)
    if not d: break
    data += d
os.waitpid(pid, 0)
print(len(data), repr(peer), conn.getsockname()[:12])
"#,
];

#[test]
fn python_socket_pairs_and_servers_match_native() {
    let _g = shared();
    let python = Path::new("/usr/bin/python3");
    if !python.exists() {
        eprintln!("skipped: /usr/bin/python3 is not installed (scripts/test installs it)");
        return;
    }
    for script in SCRIPTS {
        let mut native = Command::new(python);
        native.args(["-c", script]);
        let native = run(native);
        assert!(native.status.success(), "natively: {native:?}");
        let sandbox = run(sandboxed(python, &["-c", script]));
        assert_eq!(
            stdout(&sandbox),
            stdout(&native),
            "stderr in the sandbox:\n{}",
            String::from_utf8_lossy(&sandbox.stderr)
        );
        assert!(sandbox.status.success(), "{sandbox:?}");
    }
}
