//! The fuzz targets' bodies, shared with the corpus replay test.
pub mod targets;
