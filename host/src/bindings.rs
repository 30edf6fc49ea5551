//! Rust types and glue generated from the WIT world in `wit/`; the rest of the
//! host uses these names, never the macro.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    anyhow: true,
});

pub use cln::plugin::types::{OptionDecl, OptionType, RpcError as WitRpcError};
