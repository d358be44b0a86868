//! Raw signalling WebSockets for tests that speak the protocol by hand.

use futures_util::StreamExt;
use ruang_proto::ServerMessage;
use tokio_tungstenite::tungstenite::Message;

/// A client WebSocket as `connect_async` returns it.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next server message (text frames only), within [`crate::WAIT`].
pub async fn next_msg<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> ServerMessage
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let m = tokio::time::timeout(crate::WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).expect("valid server message");
        }
    }
}

/// The next message that is not a room delta.
pub async fn next_reply<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> ServerMessage
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match next_msg(ws).await {
            ServerMessage::Delta { .. } => continue,
            m => return m,
        }
    }
}
