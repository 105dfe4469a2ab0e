//! Google Cloud: errors shaped like Google's own.

pub mod errors;
pub mod fingerprint;
