//! landlord: infrastructure as code for SaaS tenant provisioning.
#![deny(missing_docs)]

pub mod addr;
pub mod apply;
pub mod graph;
pub mod plan;
pub mod providers;
pub mod render;
pub mod state;
pub mod value;
pub mod workspace;
