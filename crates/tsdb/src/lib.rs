//! The embedded metrics engine.

pub mod chunkenc;
