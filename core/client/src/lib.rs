//! The Ruang client core: everything an app needs to talk to a server, without UI.
//!
//! - [`api::ApiClient`]: typed HTTP API (sign-up, profiles, invites, rooms).
//! - [`store::RoomStore`]: applies a snapshot and ordered deltas; pure, tested directly.
//! - [`session::RoomSession`]: one room's signalling connection, reconnecting with jittered
//!   exponential backoff and resuming into the same room with the same role.

pub mod api;
pub mod e2ee;
pub mod error;
pub mod media;
pub mod session;
pub mod store;

pub use api::ApiClient;
pub use error::ClientError;
pub use session::{ConnectionState, RoomSession, SessionOptions};
pub use store::{RoomState, RoomStore};
