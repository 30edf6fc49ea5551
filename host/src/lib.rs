//! cln-wasm-host as a library: a Core Lightning plugin host that runs the
//! plugin's logic as a sandboxed WebAssembly component. Layers, each a
//! folder, depending only downwards:
//!
//! - [`server`] and [`tools`]: where a message from lightningd enters and is
//!   dispatched; the operators' and authors' commands;
//! - [`guest`]: which plugin this is, loading its guest and manifest,
//!   swapping it in place;
//! - [`sandbox`]: the engine, a guest's instances and limits, the
//!   compiled-code cache, guest output;
//! - [`caps`]: what a guest may reach, one file per WIT interface, each
//!   checking its grant at its entry;
//! - leaves: [`policy`] (what the operator grants), [`node`] (the node's RPC
//!   socket), [`protocol`] (framing, typed messages, error codes) and
//!   [`bindings`] (the WIT world and its conversions), and [`shown`] (guest
//!   text escaped for a person to read).
//!
//! The path of one call: [`server`]'s inbox reads it, dispatch routes it to
//! [`guest::LoadedGuest::answer`], which runs it in a [`sandbox::Guest`]
//! instance; the guest's `node.call` lands in [`caps::node`], which checks
//! [`policy::Policy::check_rpc`] and calls [`node::NodeClient`]; the answer
//! goes back through the [`protocol::Outbox`].

pub mod bindings;
pub mod caps;
pub mod guest;
pub mod logging;
pub mod node;
pub mod policy;
pub mod protocol;
pub mod sandbox;
pub mod server;
pub mod shown;
pub mod tools;
