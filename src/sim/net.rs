//! turmoil TCP behind the server's [`Listener`] and the client's
//! [`Connector`]: the only place the servers and clients meet the simulator.

use std::io;

use crate::asgi::LocalBoxFuture;
use crate::client::Connector;
use crate::servers::{Conn, Listener};

/// The port the server listens on (uvicorn's default).
pub const SERVER_PORT: u16 = 8000;

/// A turmoil listener.
pub struct SimListener(pub turmoil::net::TcpListener);

impl Listener for SimListener {
    fn accept(&self) -> LocalBoxFuture<'_, io::Result<(Box<dyn Conn>, String)>> {
        Box::pin(async move {
            let (s, peer) = self.0.accept().await?;
            Ok((Box::new(s) as Box<dyn Conn>, peer.to_string()))
        })
    }
}

/// Connects to the server host over turmoil TCP.
pub struct SimConnector {
    /// `host:port`.
    pub addr: String,
}

impl Connector for SimConnector {
    fn connect(&self) -> LocalBoxFuture<'_, io::Result<Box<dyn Conn>>> {
        Box::pin(async move {
            let s = turmoil::net::TcpStream::connect(self.addr.as_str()).await?;
            Ok(Box::new(s) as Box<dyn Conn>)
        })
    }
}
