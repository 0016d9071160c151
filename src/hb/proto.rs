//! The protocol engine (work in progress).
