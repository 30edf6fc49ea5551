//! lightningd's side of the plugin protocol: JSON-RPC 2.0 messages on our
//! stdin/stdout, each one followed by a blank line (`\n\n`). Layered as in
//! `cln-plugin`: framing and parsing ([`codec`]), typed messages
//! ([`messages`]), the one writer ([`outbox`]), every error code
//! ([`codes`]), and how JSON from a guest is read ([`json`]).

pub mod codec;
pub mod codes;
pub mod json;
pub mod lightningd;
pub mod messages;
pub mod outbox;

pub use codec::{Frame, FrameReader, parse_frame};
pub use codes::*;
pub use messages::{Message, RpcError};
pub use outbox::Outbox;
