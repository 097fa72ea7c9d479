//! landlord: infrastructure as code for SaaS tenant provisioning.
#![deny(missing_docs)]

pub mod addr;
pub mod graph;
pub mod providers;
pub mod state;
pub mod value;
pub mod workspace;
