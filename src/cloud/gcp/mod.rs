//! Google Cloud: what a call does. (Minimal on this branch; the lead merges it with the
//! REST classifier's module.)

pub mod grpc;
