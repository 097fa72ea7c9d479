//! landlord: infrastructure as code for SaaS tenant provisioning.
#![deny(missing_docs)]

pub mod addr;
pub mod apply;
pub mod cli;
pub mod drift;
pub mod graph;
pub mod ops;
pub mod plan;
pub mod providers;
pub mod render;
pub mod state;
pub mod value;
pub mod workspace;
