//! The benches' workspace of tenants with five resources each (two random values and
//! three local files, one referring to another), over three tiers.

use std::path::Path;

const MODULE: &str = r#"- type: random_id
  name: suffix
  properties: { byte_length: 4 }
- type: random_password
  name: db
  properties: { length: 24, special: false }
- type: local_file
  name: config
  properties:
    filename: "out/{{ tenant.id }}/app.conf"
    content: |
      tenant = "{{ tenant.id }}"
      tier = "{{ tier.name }}"
      bucket = "{{ workspace.name }}-{{ tenant.id }}-${random_id.suffix.hex}"
      max_body = "{{ settings.limits.max_body }}"
- type: local_file
  name: env
  properties:
    filename: "out/{{ tenant.id }}/db.env"
    file_permission: "0600"
    content: "DATABASE_PASSWORD=${random_password.db.result}\n"
- type: local_file
  name: readme
  depends_on: [local_file.config]
  properties:
    filename: "out/{{ tenant.id }}/README"
    content: "{{ tenant.name }} on {{ tier.name }} in {{ tenant.region }}\n"
"#;

/// Writes a workspace of `n` tenants of five resources into `dir`.
pub fn generate(dir: &Path, n: usize) {
    let w = |p: &str, t: &str| {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, t).unwrap();
    };
    w(
        "landlord.toml",
        "[workspace]\nname = \"bench\"\n[providers.local]\nroot = \"out\"\n",
    );
    w(
        "modules/bench/app/module.yaml",
        "description: five resources per tenant\n",
    );
    w("modules/bench/app/app.yaml.tera", MODULE);
    for tier in ["basic", "professional", "enterprise"] {
        w(
            &format!("plans/{tier}.yaml"),
            "modules:\n  - use: bench/app\ndefaults: { limits: { max_body: 10m } }\ncustomizations:\n  - path: limits.max_body\n    one_of: [10m, 50m]\n",
        );
    }
    let tiers = ["basic", "professional", "enterprise"];
    for i in 0..n {
        let id = format!("tenant-{i:05}");
        let extra = if i % 7 == 0 {
            "settings: { limits: { max_body: 50m } }\n"
        } else {
            ""
        };
        w(
            &format!("tenants/{id}.yaml"),
            &format!("id: {id}\nname: Tenant {i}\nplan: {}\nregion: eu-west-1\nresidency: [eu]\ndomain: {{ kind: subdomain, name: {id} }}\n{extra}", tiers[i % 3]),
        );
    }
}
