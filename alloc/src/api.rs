//! Rust API (todo)
