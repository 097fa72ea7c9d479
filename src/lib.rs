//! landlord: infrastructure as code for SaaS tenant provisioning.
//!
//! # Overview
//!
//! One request flows through the modules in this order:
//!
//! 1. [`workspace`] loads `landlord.toml`, `tenants/*.yaml`, tiers (`plans/`), modules
//!    (`modules/`) and `shared.yaml`, and enforces tier policy.
//! 2. [`render`] runs every tenant through its tier's tera templates into the desired
//!    resource graph ([`render::Desired`]), checked against provider schemas.
//! 3. [`plan`] refreshes live objects through [`providers`], compares desired, recorded
//!    ([`state`]) and live attributes, and produces a [`plan::Plan`] that carries its own
//!    execution graph; [`plan::show`] renders it as text, JSON or markdown.
//! 4. [`apply`] executes a plan along that graph: bounded concurrency, batching,
//!    retries, write-ahead intents, a durable state write per resource, crash recovery.
//! 5. [`plan::drift`], the read-only mode of plan, compares recorded state with live
//!    objects only.
//! 6. [`ops`] is one function per operation; [`cli`] parses arguments, calls `ops` and
//!    renders results.
//!
//! Layers (a module imports only from lower layers): L0 [`addr`], [`value`], [`graph`],
//! [`suggest`], [`parallel`], [`causes`];
//! L1 [`workspace`], [`state`], [`providers`] (`state` and `providers` do not import each
//! other); L2 [`render`]; L3 [`plan`] (with [`plan::drift`]); L4 [`apply`]; L5 [`ops`] and
//! [`report`] (GitHub comments and issues, webhooks, metrics);
//! L6 [`cli`].
//!
//! # Files on disk
//!
//! - workspace inputs: read by [`workspace`]; the built-in library (`modules/`, `plans/`
//!   of this repository) is embedded by [`workspace::library`].
//! - `state/` (sled database and `lock`, which names the holder); with `[state] backend =
//!   "s3"` one S3 object per tenant plus index, history, shard, intent and lock objects,
//!   with `backend = "postgres"` a schema of tables: owned by [`state`].
//! - `.landlord/master.key`: created by [`state::crypto`] when no key is in the environment.
//! - saved plan files (`plan --out`, signed): [`plan::file`].
//! - `exports/*.dump` (`export_on_destroy` of PostgreSQL schemas and databases):
//!   [`providers::postgres`].
//! - files managed by `local_file`: [`providers::builtin`].
//!
//! # Providers
//!
//! [`providers::builtin`] (offline: random values, keys, self-signed certificates, local
//! files), [`providers::aws`] (Route 53, S3, ACM, KMS on aws-sdk-rust),
//! [`providers::dns`] (RFC 2136 + TSIG, AXFR, served-answer checks, domain verification),
//! [`providers::azure`] (resource groups, Azure DNS, storage accounts and blob containers,
//! key vaults on the azure_mgmt crates), [`providers::acme`] (ACME certificates over
//! DNS-01, published through any [`providers::challenge::ChallengeZone`]) and
//! [`providers::postgres`] (roles, databases, schemas, grants, RLS policies and
//! migrations on tokio-postgres). Each resource
//! type is one [`providers::ResourceType`] implementation in its provider's table
//! ([`providers::Family`]); errors carry a [`providers::ErrorKind`] the engine decides on.
//! The engine owns retries, timeouts, concurrency, finishing interrupted deletes, reading
//! back what it applied, and state; providers answer request structs.
//!
//! # State
//!
//! [`state`] keeps resources, write-ahead intents, locks, run history, sealed secrets
//! ([`state::crypto`]) and per-tenant hash-linked audit chains ([`state::audit`]).
#![deny(missing_docs)]

pub mod addr;
pub mod apply;
pub mod causes;
pub mod cli;
pub mod duration;
pub mod graph;
pub mod ops;
pub mod parallel;
pub mod plan;
pub mod providers;
pub mod render;
pub mod report;
pub mod state;
pub mod suggest;
pub mod value;
pub mod workspace;
