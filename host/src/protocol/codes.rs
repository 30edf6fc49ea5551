//! Every error code the host answers with, in one table: JSON-RPC's own, the
//! host's, and the lightningd codes it acts on.

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// The plugin failed while answering (guest trap, deadline, memory, bad answer).
pub const INTERNAL_ERROR: i64 = -32603;
/// A guest used a capability it was not granted.
pub const CAPABILITY_DENIED: i64 = -32010;
/// A guest went past one of its `[limits]` (a rate, a size, its store).
pub const LIMIT_EXCEEDED: i64 = -32011;
/// lightningd's "datastore key does not exist".
pub const DATASTORE_MISSING: i64 = 1200;
