//! A `mcpsim serve` child process for the tests that talk to it over real
//! loopback TCP: started, its address read from the listening line, killed
//! when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// A running server and the address it listens on.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Served {
    /// Start `cmd` (which must run `mcpsim serve … --listen 127.0.0.1:0`)
    /// and wait for its `mcpsim serve: STACK listening on http://ADDR/mcp`.
    /// Its stderr is discarded, so a chatty log cannot fill a pipe.
    pub fn start(cmd: &mut Command) -> Served {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mcpsim serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the listening line");
        let addr = line
            .rsplit("http://")
            .next()
            .and_then(|s| s.trim().strip_suffix("/mcp"))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Served { child, addr }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
