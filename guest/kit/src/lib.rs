//! The Rust guest kit: the bindings of our WIT world (`wit/plugin.wit`),
//! generated once for every Rust guest, and builders for what a manifest
//! leaves empty. A guest depends on this crate, implements [`Guest`] and
//! exports it:
//!
//! ```ignore
//! use cln_guest::{Guest, Manifest, MethodDecl};
//!
//! struct MyPlugin;
//!
//! impl Guest for MyPlugin {
//!     fn manifest() -> Manifest {
//!         Manifest {
//!             methods: vec![MethodDecl::new("myplugin", "what it does")],
//!             ..Manifest::default()
//!         }
//!     }
//!     // … init, handle, hook, notify, set_option
//! }
//!
//! cln_guest::export!(MyPlugin);
//! ```

/// What `wit-bindgen` generates for the world; everything a guest needs is
/// re-exported at the top of this crate.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "cln_guest::bindings",
    });
}

pub use bindings::cln::plugin::types::{
    Featurebits, HookDecl, LogLevel, MessageRequest, MethodDecl, OptionDecl, OptionType,
    RpcRequest, TopicRequest,
};
pub use bindings::cln::plugin::{config, events, node, request, store};
pub use bindings::{Guest, Manifest, OptionValue, RpcError, export};

/// JSON-RPC's code for an internal error, as lightningd's plugins use it.
pub const INTERNAL_ERROR: i64 = -32603;

impl Default for Manifest {
    /// Declares nothing: no options, methods, node methods, store, hooks,
    /// subscriptions, notifications, featurebits or custom messages; not
    /// dynamic.
    fn default() -> Self {
        Manifest {
            dynamic: false,
            options: Vec::new(),
            methods: Vec::new(),
            rpc: Vec::new(),
            wants_store: false,
            dir: None,
            hooks: Vec::new(),
            subscriptions: Vec::new(),
            notifications: Vec::new(),
            featurebits: Featurebits {
                init: None,
                node: None,
                channel: None,
                invoice: None,
                reason: String::new(),
            },
            custommessages: Vec::new(),
        }
    }
}

impl MethodDecl {
    /// A method with no usage string, not deprecated, with no long
    /// description.
    pub fn new(name: &str, description: &str) -> Self {
        MethodDecl {
            name: name.into(),
            usage: String::new(),
            description: description.into(),
            long_description: None,
            deprecated: false,
        }
    }
}

impl HookDecl {
    /// A hook with no ordering against other plugins, asked for `reason`
    /// (the operator grants it in `[[grants.hooks]]`).
    pub fn new(name: &str, reason: &str) -> Self {
        HookDecl {
            name: name.into(),
            before: Vec::new(),
            after: Vec::new(),
            reason: reason.into(),
        }
    }
}

impl TopicRequest {
    /// A notification topic to receive or emit, asked for `reason`.
    pub fn new(topic: &str, reason: &str) -> Self {
        TopicRequest {
            topic: topic.into(),
            reason: reason.into(),
        }
    }
}

impl MessageRequest {
    /// A custom peer message type (odd) to handle, asked for `reason`.
    pub fn new(message_type: u16, reason: &str) -> Self {
        MessageRequest {
            message_type,
            reason: reason.into(),
        }
    }
}

impl OptionDecl {
    /// A startup option set once (not `multi`, not `dynamic`, not
    /// deprecated).
    pub fn new(
        name: &str,
        type_: OptionType,
        default: Option<OptionValue>,
        description: &str,
    ) -> Self {
        OptionDecl {
            name: name.into(),
            type_,
            default,
            description: description.into(),
            multi: false,
            dynamic: false,
            deprecated: false,
        }
    }
}

impl RpcError {
    /// An internal error (-32603) without data: what a guest answers when
    /// something it relies on fails.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        RpcError {
            code: INTERNAL_ERROR,
            message: message.to_string(),
            data: None,
        }
    }
}
