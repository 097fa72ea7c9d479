//! Whole-workflow tests: each runs the `landlord` binary on a copy of an example workspace.

mod support;

/// The AWS provider against moto: inventory, batching, drift, crashes, faults, bad input.
mod aws;
/// The Azure provider against the ARM contract server.
mod azure;
/// Every class of bad input fails with a located message and leaves state untouched.
mod bad_input;
/// RFC 2136 records on BIND, domain verification and ACME certificates from Pebble.
mod dns;
/// Interrupts, Terraform habits and the rough edges a new user meets.
mod everyday;
/// Fleet operations: bulk-change guard, rollouts, changed-only plans, API budgets.
mod fleet;
/// Tampered saved plans, lock holders, master keys, misspelt config, hostile YAML.
mod hardening;
/// The PostgreSQL provider against a fresh cluster per test.
mod postgres;
/// Pull-request comments, drift issues, webhooks, metrics and the CI examples.
mod reports;
/// Saved plans, locking, secrets and crash safety.
mod safety;
/// Snapshots of the three plan renderings.
mod snapshots;
/// The PostgreSQL state backend: many runners, per-tenant locks, crashes, lost connections.
mod state_pg;
/// The S3 state backend against moto: sharing, locking, crash safety.
mod state_s3;
/// The quick start: apply, idempotent plan, drift and repair, tenant removal, tier changes.
mod workflow;
