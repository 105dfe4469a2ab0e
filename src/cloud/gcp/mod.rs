//! Google Cloud: what a call does, and errors shaped like Google's own.

pub mod errors;
pub mod fingerprint;
pub mod grpc;
