//! memkind-rs: placeholder
#![deny(unsafe_code)]

pub mod nodemask;
pub mod topology;
