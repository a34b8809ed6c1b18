//! Session ids from the seed for rmcp's own session manager.
//!
//! rmcp's `LocalSessionManager` names each session `uuid::Uuid::new_v4()` —
//! the operating system's randomness, so no two runs of a seed would agree
//! on a session id. rmcp offers no id hook, but its `SessionManager` trait is
//! public: [`SeededSessions`] wraps a `LocalSessionManager`, replaces only
//! `create_session` (building the session with rmcp's own public
//! `create_local_session` and `WorkerTransport::spawn`, as
//! `LocalSessionManager::create_session` does) and delegates everything else
//! unchanged. What rmcp does with a session is rmcp's code; only the name
//! comes from mcpsim.
//!
//! The price: rmcp's constructor that also takes an event store is private,
//! so a stack built this way has no external event store (rmcp's in-memory
//! replay cache still works).

use std::sync::Mutex;

use futures_core::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::WorkerTransport;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, LocalSessionWorker, create_local_session,
};
use rmcp::transport::streamable_http_server::session::{
    ServerSseMessage, SessionId, SessionManager,
};

use crate::servers::Ids;

/// rmcp's local session manager, naming sessions from a seeded id source.
pub struct SeededSessions {
    /// rmcp's manager: its `sessions` map and `session_config` are public.
    pub inner: LocalSessionManager,
    ids: Mutex<Ids>,
}

impl SeededSessions {
    /// Sessions configured by `inner`, named from `ids`.
    pub fn new(inner: LocalSessionManager, ids: Ids) -> Self {
        Self {
            inner,
            ids: Mutex::new(ids),
        }
    }

    /// A fresh id: 16 bytes from the id source, as 32 hex digits (a uuid's
    /// length, without its dashes — rmcp's own ids are simple uuids too).
    fn next_id(&self) -> SessionId {
        let mut b = [0u8; 16];
        // A poisoned lock means a panic elsewhere already failed the run.
        if let Ok(mut ids) = self.ids.lock() {
            ids.fill(&mut b);
        }
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
            .into()
    }
}

impl SessionManager for SeededSessions {
    type Error = LocalSessionManagerError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let id = self.next_id();
        let (handle, worker) = create_local_session(id.clone(), self.inner.session_config.clone());
        self.inner.sessions.write().await.insert(id.clone(), handle);
        Ok((id, WorkerTransport::spawn(worker)))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }
}
