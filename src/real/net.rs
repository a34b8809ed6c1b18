//! tokio TCP behind the server's [`Listener`] and the client's [`Connector`].

use std::io;
use std::net::SocketAddr;

use crate::asgi::LocalBoxFuture;
use crate::client::Connector;
use crate::servers::{Conn, Listener};

/// A real listening socket.
pub struct TcpListener(pub tokio::net::TcpListener);

impl Listener for TcpListener {
    fn accept(&self) -> LocalBoxFuture<'_, io::Result<(Box<dyn Conn>, String)>> {
        Box::pin(async move {
            let (s, peer) = self.0.accept().await?;
            // Small writes (SSE events) should leave at once, as uvicorn's do.
            s.set_nodelay(true)?;
            Ok((Box::new(s) as Box<dyn Conn>, peer.to_string()))
        })
    }
}

/// Connects to a real address.
pub struct TcpConnector {
    /// Where to connect.
    pub addr: SocketAddr,
}

impl Connector for TcpConnector {
    fn connect(&self) -> LocalBoxFuture<'_, io::Result<Box<dyn Conn>>> {
        Box::pin(async move {
            let s = tokio::net::TcpStream::connect(self.addr).await?;
            s.set_nodelay(true)?;
            Ok(Box::new(s) as Box<dyn Conn>)
        })
    }
}
