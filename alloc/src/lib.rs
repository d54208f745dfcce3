//! memkind-rs: placeholder
