//! Command-line arguments (clap). Kept dumb: parsed once, then turned into ops options.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Infrastructure as code for SaaS tenants: one YAML file per tenant, tiers of modules,
/// a reviewable plan, a crash-safe apply.
#[derive(Debug, Parser)]
#[command(name = "landlord", version, about, long_about = None)]
pub struct Cli {
    /// Run as if started in DIR (the workspace holding landlord.toml).
    #[arg(short = 'C', global = true, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Never colour output.
    #[arg(long, global = true)]
    pub no_color: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Terminal text.
    #[default]
    Text,
    /// Versioned JSON.
    Json,
    /// Markdown for pull-request comments.
    Markdown,
}

/// Format flags shared by plan and drift.
#[derive(Debug, Args, Clone)]
pub struct FormatArgs {
    /// Print JSON (schema in README.md).
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print markdown for a pull-request comment.
    #[arg(long)]
    pub markdown: bool,
    /// Also write the whole report as markdown to FILE, split into comment-sized parts
    /// (`plan.md`, `plan.2.md`, …), whatever stdout prints.
    #[arg(long, value_name = "FILE")]
    pub markdown_out: Option<PathBuf>,
    /// Characters one part of --markdown-out may hold (GitHub's comment limit).
    #[arg(long, value_name = "CHARS", default_value_t = crate::plan::show::comment::GITHUB_COMMENT_LIMIT, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(4096..))]
    pub markdown_limit: usize,
}

impl FormatArgs {
    /// The chosen format.
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else if self.markdown {
            Format::Markdown
        } else {
            Format::Text
        }
    }
}

pub use crate::duration::parse_duration;

/// Flags shared by commands that change or read state.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Limit to these tenants (repeatable); `_shared` selects workspace resources.
    #[arg(long = "tenant", value_name = "ID")]
    pub tenants: Vec<String>,
    /// Only the tenants of shard K of N (by a stable hash of the id; `_shared` goes with
    /// shard 1); `auto/N` reads K from LANDLORD_SHARD_INDEX, JOB_COMPLETION_INDEX or
    /// CI_NODE_INDEX.
    #[arg(long, value_name = "K/N", value_parser = crate::ops::shard::Shard::parse, conflicts_with = "tenants")]
    pub shard: Option<crate::ops::shard::Shard>,
    /// Wait this long for another run to release the state.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    /// Print API calls per provider and operation.
    #[arg(long)]
    pub stats: bool,
    /// Write the run's figures to FILE in the Prometheus text format (for
    /// node_exporter's textfile collector), replacing it whole.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

/// Flags of plan-producing commands.
#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    /// Read live objects before planning (`--refresh=false` plans against state only).
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub refresh: bool,
    /// Let apply delete or replace more than the bulk-change guard allows (see `[guard]`).
    #[arg(long)]
    pub allow_bulk: bool,
    /// Only the tenants whose inputs changed since their last apply (and those never
    /// applied, removed, or left mid-operation).
    #[arg(long, conflicts_with = "tenants")]
    pub changed: bool,
    /// Plan and apply wave by wave, as `[rollout]` in landlord.toml says (a rollout goes
    /// over the whole fleet: it does not go with --shard).
    #[arg(long, conflicts_with = "shard")]
    pub rollout: bool,
    /// Take the waves from this TOML file's `[rollout]` table instead (implies --rollout).
    #[arg(long, value_name = "FILE", conflicts_with = "shard")]
    pub rollout_config: Option<PathBuf>,
}

impl PlanArgs {
    /// Whether the run goes wave by wave.
    pub fn rollout(&self) -> bool {
        self.rollout || self.rollout_config.is_some()
    }
}

/// Flags of commands that execute.
#[derive(Debug, Args, Clone)]
pub struct ExecArgs {
    /// Apply without asking.
    #[arg(long)]
    pub auto_approve: bool,
    /// Resources changed at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    /// Time limit of one provider call.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// After a failure, delete what this run created.
    #[arg(long)]
    pub rollback_on_failure: bool,
}

/// `landlord report` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Post a markdown plan as the pull request's landlord comment, updating in place the
    /// one posted before (one comment per part of `--markdown-out`).
    #[command(
        after_help = "Examples:\n  landlord plan --markdown-out plan.md --out plan.bin\n  landlord report github-comment plan.md --pr 42\n\nReads GITHUB_TOKEN (or GH_TOKEN), GITHUB_REPOSITORY and GITHUB_API_URL, as GitHub Actions sets them; the pull request defaults to the one of GITHUB_EVENT_PATH."
    )]
    GithubComment {
        /// The first part (`plan.md`); `plan.2.md`, … beside it are the next parts.
        file: PathBuf,
        /// Pull request number.
        #[arg(long)]
        pr: Option<u64>,
        /// OWNER/NAME (default: GITHUB_REPOSITORY).
        #[arg(long)]
        repo: Option<String>,
        /// Names this comment apart from others landlord posts on the same pull request
        /// (one workspace each).
        #[arg(long, default_value = "plan", value_parser = marker_name)]
        marker: String,
        /// Print what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Post a markdown plan as the merge request's landlord notes, updating in place the
    /// ones posted before (one note per part of `--markdown-out`).
    #[command(
        after_help = "Examples:\n  landlord plan --markdown-out plan.md --markdown-limit 1000000 --out plan.bin\n  landlord report gitlab-note plan.md\n\nReads LANDLORD_GITLAB_TOKEN (or GITLAB_TOKEN; a token with the api scope), CI_API_V4_URL, CI_PROJECT_ID and CI_MERGE_REQUEST_IID, as GitLab CI sets the last three in merge request pipelines."
    )]
    GitlabNote {
        /// The first part (`plan.md`); `plan.2.md`, … beside it are the next parts.
        file: PathBuf,
        /// Merge request IID (default: CI_MERGE_REQUEST_IID).
        #[arg(long)]
        mr: Option<u64>,
        /// Project id or `group/name` path (default: CI_PROJECT_ID).
        #[arg(long)]
        project: Option<String>,
        /// Names these notes apart from others landlord posts on the same merge request.
        #[arg(long, default_value = "plan", value_parser = marker_name)]
        marker: String,
        /// Print what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Open an issue per drifted tenant of a `drift --json` report, update those still
    /// drifting, and close those of tenants found clean.
    #[command(
        after_help = "Examples:\n  landlord drift --json > drift.json\n  landlord report github-issues drift.json\n\nReads GITHUB_TOKEN (or GH_TOKEN), GITHUB_REPOSITORY and GITHUB_API_URL."
    )]
    GithubIssues {
        /// The report written by `landlord drift --json`.
        file: PathBuf,
        /// OWNER/NAME (default: GITHUB_REPOSITORY).
        #[arg(long)]
        repo: Option<String>,
        /// The label of drift issues.
        #[arg(long, default_value = crate::report::github::DRIFT_LABEL)]
        label: String,
        /// Open at most this many tenant issues in one run; past it, the newly drifted
        /// tenants share one fleet issue (a mass drift is usually one shared change).
        #[arg(long, default_value_t = 25)]
        max_new: usize,
        /// Print what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// A comment marker: letters, digits, `-`, `_` and `.`.
fn marker_name(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        Ok(s.to_string())
    } else {
        Err("use letters, digits, `-`, `_` and `.`".into())
    }
}

/// landlord commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print landlord's version (as `--version` does).
    Version,
    /// Rewrite tenant, tier and shared YAML in canonical form (exit 2 with --check when a
    /// file would change).
    #[command(after_help = "Examples:\n  landlord fmt\n  landlord fmt --check   # in CI")]
    Fmt {
        /// Only report the files that are not in canonical form.
        #[arg(long)]
        check: bool,
    },
    /// Show a saved plan (verified against the master key); touches no state.
    #[command(
        after_help = "Examples:\n  landlord plan --out plan.bin\n  landlord show plan.bin\n  landlord show plan.bin --json"
    )]
    Show {
        /// A plan saved by `landlord plan --out FILE`.
        plan_file: PathBuf,
        /// Print JSON (the format of `plan --json`).
        #[arg(long)]
        json: bool,
    },
    /// Load and check the workspace and its templates; touches no state.
    #[command(after_help = "Example:\n  landlord -C examples/quickstart validate")]
    Validate,
    /// Show what apply would change.
    #[command(
        after_help = "Examples:\n  landlord plan\n  landlord plan --tenant acme --markdown\n  landlord plan --out plan.bin --detailed-exitcode\n  landlord plan --changed --markdown\n  landlord plan --rollout\n  landlord plan --shard auto/4\n\nExit codes: 0 success (with --detailed-exitcode: no changes), 1 error, 2 changes present (--detailed-exitcode)."
    )]
    Plan {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        plan: PlanArgs,
        #[command(flatten)]
        format: FormatArgs,
        /// Save the plan for `landlord apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Exit 2 when the plan has changes, 0 when it has none.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Plan the destruction of everything in scope.
        #[arg(long)]
        destroy: bool,
    },
    /// Apply the workspace, or a saved plan.
    #[command(
        after_help = "Examples:\n  landlord apply --auto-approve\n  landlord apply plan.bin\n  landlord apply --tenant acme --parallelism 4 --rollback-on-failure --auto-approve\n  landlord apply --rollout --auto-approve\n  landlord apply --changed --shard 2/4 --auto-approve\n  landlord apply --allow-bulk --auto-approve   # past the bulk-change guard"
    )]
    Apply {
        /// A plan saved by `landlord plan --out FILE`; refused when stale.
        plan_file: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        plan: PlanArgs,
        #[command(flatten)]
        exec: ExecArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Destroy the resources of tenants, in reverse dependency order.
    #[command(after_help = "Example:\n  landlord destroy --tenant acme --auto-approve")]
    Destroy {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        exec: ExecArgs,
        /// Destroy every resource of the workspace (instead of --tenant).
        #[arg(long, conflicts_with = "tenants")]
        all: bool,
    },
    /// Report resources changed or deleted out of band. Exit 0 clean, 2 drift, 1 error.
    #[command(after_help = "Examples:\n  landlord drift\n  landlord drift --tenant acme --json")]
    Drift {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        format: FormatArgs,
        /// Also write a JUnit XML report to FILE: a test case per tenant, a failure per
        /// drifted resource.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Record objects that already exist as resources of the templates, so apply manages
    /// them instead of creating others (Terraform's `import`).
    #[command(
        after_help = "Examples:\n  landlord adopt globex/aws_s3_bucket.assets\n  landlord adopt _shared/aws_route53_zone.base --id Z0123456789ABC\n  landlord adopt --tenant globex --tenant initech\n\nConfigurations are rendered from the templates; `--id` (one address only) is needed where the provider looks an object up by id (hosted zones, certificates, keys). With --tenant, every resource of those tenants that exists is adopted and the rest is listed for apply to create."
    )]
    Adopt {
        /// Resource addresses (`<tenant>/<type>.<name>`).
        addresses: Vec<String>,
        /// Every resource of these tenants (repeatable).
        #[arg(long = "tenant", value_name = "ID")]
        tenants: Vec<String>,
        /// The object's id at the provider, where its configuration does not name it.
        #[arg(long)]
        id: Option<String>,
        /// Wait this long for another run to release the state.
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
        lock_timeout: Duration,
    },
    /// Publish a plan or drift report where reviewers look (GitHub pull requests and
    /// issues, GitLab merge requests).
    #[command(subcommand)]
    Report(ReportCommand),
    /// Inspect and repair recorded state.
    #[command(
        subcommand,
        after_help = "Examples:\n  landlord state list\n  landlord state export > backup.json"
    )]
    State(StateCommand),
    /// Print recorded attributes (sensitive ones only with --show-sensitive and an address).
    #[command(
        after_help = "Examples:\n  landlord output\n  landlord output acme/tls_self_signed_cert.site not_after\n  landlord output acme/random_password.db result --show-sensitive"
    )]
    Output {
        /// Resource address.
        address: Option<String>,
        /// Attribute name.
        attribute: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Allow printing a sensitive attribute.
        #[arg(long)]
        show_sensitive: bool,
    },
    /// Print the desired resource graph.
    #[command(
        after_help = "Examples:\n  landlord graph --format dot | dot -Tsvg > graph.svg\n  landlord graph --format mermaid --tenant acme"
    )]
    Graph {
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
        /// Limit to these tenants.
        #[arg(long = "tenant", value_name = "ID")]
        tenants: Vec<String>,
    },
    /// Tenant commands.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Follow, continue or end the rollout started by `apply --rollout`.
    #[command(
        subcommand,
        after_help = "Examples:\n  landlord apply --rollout --auto-approve\n  landlord rollout status\n  landlord rollout resume --auto-approve\n  landlord rollout abort"
    )]
    Rollout(RolloutCommand),
    /// The audit chains: every change to state, per tenant, hash-linked.
    #[command(
        subcommand,
        after_help = "Examples:\n  landlord audit log --tenant acme\n  landlord audit verify"
    )]
    Audit(AuditCommand),
}

/// `landlord audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the audit events (oldest first).
    #[command(after_help = "Example:\n  landlord audit log --tenant acme --json")]
    Log {
        /// Limit to these tenants.
        #[arg(long = "tenant", value_name = "ID")]
        tenants: Vec<String>,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Check every chain and that state is what the chains last wrote (exit 1 if not).
    #[command(after_help = "Example:\n  landlord audit verify")]
    Verify,
}

/// Graph output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz.
    Dot,
    /// Mermaid.
    Mermaid,
}

/// `landlord rollout ...`.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Where the last rollout stands: waves, tenants done and failed.
    #[command(after_help = "Example:\n  landlord rollout status --json")]
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Continue a paused, halted or interrupted rollout from where it stopped; tenants it
    /// already applied are not applied again.
    #[command(after_help = "Example:\n  landlord rollout resume --auto-approve")]
    Resume {
        #[command(flatten)]
        exec: ExecArgs,
        /// Read live objects before planning (`--refresh=false` plans against state only).
        #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        refresh: bool,
        /// Let the rest of the rollout exceed the bulk-change guard's limits.
        #[arg(long)]
        allow_bulk: bool,
        /// Wait this long for another run to release the state.
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
        lock_timeout: Duration,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Write the run's figures to FILE in the Prometheus text format.
        #[arg(long, value_name = "FILE")]
        metrics_file: Option<PathBuf>,
    },
    /// End the rollout; its remaining waves are never applied by it.
    #[command(after_help = "Example:\n  landlord rollout abort")]
    Abort {
        /// Wait this long for another run to release the state.
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
        lock_timeout: Duration,
    },
}

/// `landlord tenants ...`.
#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// List tenants with tier, status, region and recorded resources.
    #[command(after_help = "Example:\n  landlord tenants list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Only the tenants of shard K of N (see `plan --shard`), with a count per shard.
        #[arg(long, value_name = "K/N", value_parser = crate::ops::shard::Shard::parse)]
        shard: Option<crate::ops::shard::Shard>,
    },
}

/// `landlord state ...`.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List recorded resources.
    #[command(after_help = "Example:\n  landlord state list --tenant acme")]
    List {
        /// Limit to these tenants.
        #[arg(long = "tenant", value_name = "ID")]
        tenants: Vec<String>,
    },
    /// Show one recorded resource (sensitive values redacted).
    #[command(after_help = "Example:\n  landlord state show acme/local_file.site")]
    Show {
        /// Resource address.
        address: String,
    },
    /// Forget resources without touching the real objects.
    #[command(after_help = "Example:\n  landlord state rm acme/local_file.site")]
    Rm {
        /// Resource addresses.
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Move a record to a new address (after renaming a resource in a template).
    #[command(
        after_help = "Example:\n  landlord state mv acme/local_file.site acme/local_file.nginx"
    )]
    Mv {
        /// Current address.
        from: String,
        /// New address.
        to: String,
    },
    /// Remove lock records left by a run that is gone.
    #[command(after_help = "Example:\n  landlord state unlock --tenant acme")]
    Unlock {
        /// Only this tenant's lock (default: all).
        #[arg(long = "tenant", value_name = "ID")]
        tenant: Option<String>,
    },
    /// Write the whole state as JSON (secrets stay encrypted).
    #[command(after_help = "Example:\n  landlord state export --out backup.json")]
    Export {
        /// Write to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Replace the state with an export (same master key).
    #[command(after_help = "Example:\n  landlord state import backup.json")]
    Import {
        /// Export file.
        file: PathBuf,
    },
    /// Show run history.
    #[command(after_help = "Example:\n  landlord state history")]
    History,
    /// Copy the state to another backend, verified there; the source is left as it was.
    #[command(
        after_help = "Examples:\n  landlord state migrate --to s3 --bucket acme-landlord-state --key fleet/state.json --region eu-west-1\n  landlord state migrate --to postgres --url-env LANDLORD_STATE_URL\n  landlord state migrate --to postgres --server main --database landlord --schema fleet\n  landlord state migrate --to sled --path state-copy\n\nThen point [state] in landlord.toml at the new backend."
    )]
    Migrate {
        /// Where to copy to.
        #[command(flatten)]
        target: MigrateTarget,
        /// Wait this long for another run to release either state.
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
        lock_timeout: Duration,
    },
}

/// The backend `state migrate` copies to.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateTarget {
    /// The backend: `sled`, `s3` or `postgres`.
    #[arg(long, value_name = "BACKEND")]
    pub to: String,
    /// postgres: the environment variable holding the connection URL.
    #[arg(long, value_name = "VAR")]
    pub url_env: Option<String>,
    /// postgres: a `[providers.postgresql.<name>]` server (instead of --url-env).
    #[arg(long, value_name = "NAME")]
    pub server: Option<String>,
    /// postgres with --server: the database.
    #[arg(long)]
    pub database: Option<String>,
    /// postgres: the schema (default landlord).
    #[arg(long)]
    pub schema: Option<String>,
    /// sled: the directory, relative to the workspace.
    #[arg(long)]
    pub path: Option<String>,
    /// s3: the bucket.
    #[arg(long)]
    pub bucket: Option<String>,
    /// s3: the object key (default landlord/state.json).
    #[arg(long)]
    pub key: Option<String>,
    /// s3: the bucket's region.
    #[arg(long)]
    pub region: Option<String>,
}
