//! Collection: what the kernel says about the target, turned into model types. Knows nothing of
//! views.

pub mod placement;
