//! Rooms: the stage rules (pure), the hallway (pure) and the live registry that connects
//! them to connections and storage.

pub mod hallway;
pub mod mls;
pub mod registry;
pub mod rules;
pub mod safety;

pub use registry::{Dispatch, Joined, LiveRoom, Registry};
