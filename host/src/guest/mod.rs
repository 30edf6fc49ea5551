//! The guest a plugin runs: which files it is ([`Files`]), loading it and its
//! manifest ([`load`]), the manifest in lightningd's terms ([`manifest`]),
//! and swapping in a new `.wasm` under a running plugin ([`swap`]).

mod answer;
mod files;
mod granted;
mod load;
pub mod manifest;
pub mod options;
pub mod swap;

pub use files::Files;
pub use load::{LoadedGuest, fetch_manifest, load, load_with};
