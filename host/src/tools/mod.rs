//! The host's tools for operators and plugin authors: `install` (make a
//! guest a plugin), `inspect` (review what it asks for), `call` (run one of
//! its methods against a node stand-in, [`standin`], or a real node).

pub mod call;
pub mod inspect;
pub mod install;
pub mod review;
pub mod standin;
