//! Read-only views: `output`, `graph`, `tenants list`.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::args::GraphFormat;
use super::EXIT_OK;
use crate::addr::ResourceAddr;
use crate::ops;
use crate::value::redact_attrs;
use crate::workspace::Workspace;

/// `landlord output`.
pub fn output(
    dir: &Path,
    address: Option<String>,
    attribute: Option<String>,
    json_out: bool,
    show_sensitive: bool,
) -> Result<u8> {
    let st = ops::open_state_only(dir, "landlord output", Duration::from_secs(10))?;
    let records = st.store.resources()?;
    match (address, attribute) {
        (Some(a), Some(attr)) => {
            let a: ResourceAddr = a.parse()?;
            let Some(r) = records.iter().find(|r| r.address == a) else {
                bail!("`{a}` is not in state")
            };
            let Some(v) = r.attributes.get(&attr) else {
                bail!("`{a}` has no attribute `{attr}`")
            };
            if r.sensitive.contains(&attr) && !show_sensitive {
                bail!("`{a}.{attr}` is sensitive; pass --show-sensitive to print it");
            }
            match (v, json_out) {
                (Value::String(s), false) => println!("{s}"),
                (v, _) => println!("{}", serde_json::to_string_pretty(v)?),
            }
        }
        (addr, None) => {
            let filter: Option<ResourceAddr> = addr.map(|a| a.parse()).transpose()?;
            let mut doc = serde_json::Map::new();
            for r in records
                .iter()
                .filter(|r| filter.as_ref().is_none_or(|f| f == &r.address))
            {
                let mut attrs = r.attributes.clone();
                redact_attrs(&mut attrs, &r.sensitive);
                if json_out {
                    doc.insert(r.address.to_string(), Value::Object(attrs));
                } else {
                    println!("{}:", r.address);
                    for (k, v) in attrs {
                        let text = match &v {
                            Value::String(s) if s.contains('\n') => {
                                format!("<{} lines>", s.lines().count())
                            }
                            other => crate::value::display(other),
                        };
                        println!("  {k} = {text}");
                    }
                }
            }
            if json_out {
                println!("{}", serde_json::to_string_pretty(&doc)?);
            }
        }
        (None, Some(_)) => bail!("give an address before the attribute"),
    }
    Ok(EXIT_OK)
}

/// `landlord graph`.
pub fn graph(dir: &Path, format: GraphFormat, tenants: &[String]) -> Result<u8> {
    let s = ops::open(dir)?;
    ops::check_tenants(&s.ws, tenants, None)?;
    let d = ops::desired(&s)?;
    let selected = crate::addr::Selection::new(tenants);
    let keep = |a: &ResourceAddr| selected.holds(a.scope.as_str());
    let mut out = String::new();
    match format {
        GraphFormat::Dot => out.push_str("digraph landlord {\n  rankdir = LR;\n"),
        GraphFormat::Mermaid => out.push_str("graph LR\n"),
    }
    for (i, r) in d
        .resources
        .iter()
        .enumerate()
        .filter(|(_, r)| keep(&r.address))
    {
        match format {
            GraphFormat::Dot => out.push_str(&format!("  \"{}\";\n", r.address)),
            GraphFormat::Mermaid => out.push_str(&format!("  n{i}[\"{}\"]\n", r.address)),
        }
        for j in d.dag.dependencies(i) {
            match format {
                GraphFormat::Dot => out.push_str(&format!(
                    "  \"{}\" -> \"{}\";\n",
                    r.address, d.resources[j].address
                )),
                GraphFormat::Mermaid => out.push_str(&format!("  n{i} --> n{j}\n")),
            }
        }
    }
    if format == GraphFormat::Dot {
        out.push_str("}\n");
    }
    print!("{out}");
    Ok(EXIT_OK)
}

/// `landlord tenants list`.
pub fn tenants(dir: &Path, json_out: bool, shard: Option<ops::shard::Shard>) -> Result<u8> {
    let ws = Workspace::load(dir)?;
    if let Some(sh) = shard {
        // The split: how many tenants each shard of N holds.
        let split: Vec<String> = (1..=sh.n)
            .map(|k| {
                let s = ops::shard::Shard { k, n: sh.n };
                let n = ws.tenants.iter().filter(|t| s.holds(&t.spec.id)).count();
                format!("{s}: {n}")
            })
            .collect();
        eprintln!("Tenants per shard: {}", split.join(", "));
    }
    let counts = ops::open_state(
        &ws.root,
        &ws.config,
        "landlord tenants list",
        &[],
        Duration::from_secs(10),
    )
    .and_then(|st| Ok(st.store.resources()?))
    .map(|rs| {
        rs.into_iter().fold(
            std::collections::BTreeMap::<String, usize>::new(),
            |mut m, r| {
                *m.entry(r.address.scope.to_string()).or_default() += 1;
                m
            },
        )
    })?;
    let rows: Vec<Value> = ws
        .tenants
        .iter()
        .filter(|t| shard.is_none_or(|s| s.holds(&t.spec.id)))
        .map(|t| {
            json!({
                "id": t.spec.id,
                "tier": t.spec.plan,
                "status": t.spec.status.as_str(),
                "region": t.spec.region,
                "domain": t.spec.domain.as_ref().map(|d| d.name.clone()),
                "resources": counts.get(&t.spec.id).copied().unwrap_or(0),
            })
        })
        .collect();
    if json_out {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let cell = |r: &Value, k: &str| match &r[k] {
            Value::String(s) => s.clone(),
            Value::Null => "-".to_string(),
            other => other.to_string(),
        };
        let columns = ["id", "tier", "status", "region", "resources", "domain"];
        let table: Vec<Vec<String>> =
            std::iter::once(columns.iter().map(|c| c.to_uppercase()).collect())
                .chain(
                    rows.iter()
                        .map(|r| columns.iter().map(|c| cell(r, c)).collect()),
                )
                .collect();
        let widths: Vec<usize> = (0..columns.len())
            .map(|i| {
                table
                    .iter()
                    .map(|row| row[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &table {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (text, w))| match columns[i] {
                    "resources" => format!("{text:>w$}"),
                    "domain" => text.clone(),
                    _ => format!("{text:<w$}"),
                })
                .collect();
            println!("{}", line.join("  ").trim_end());
        }
    }
    Ok(EXIT_OK)
}
