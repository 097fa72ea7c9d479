//! A moto_server per test on a free loopback port, and an inventory of what it holds,
//! read through the AWS SDK.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Regions the tests use.
pub const REGIONS: &[&str] = &["us-east-1", "us-east-2", "eu-west-1", "eu-central-1"];

/// A running moto_server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("LANDLORD_MOTO_SERVER") {
        return p.into();
    }
    super::tools_dir().join("moto-5.1.22/bin/moto_server")
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Moto {
    /// Starts moto; fails loudly when it is not installed.
    pub fn start() -> Moto {
        let bin = binary();
        assert!(
            bin.exists(),
            "moto_server not found at {}: run scripts/install-test-deps (or set LANDLORD_MOTO_SERVER)",
            bin.display()
        );
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_ACM_VALIDATION_WAIT", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto_server did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    /// Environment for landlord (and the SDK) to talk to this server.
    pub fn env(&self) -> Vec<(String, String)> {
        env_for(&self.endpoint)
    }
}

/// SDK environment for an endpoint.
pub fn env_for(endpoint: &str) -> Vec<(String, String)> {
    vec![
        ("AWS_ENDPOINT_URL".into(), endpoint.into()),
        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
    ]
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SDK clients against an endpoint.
pub struct Sdk {
    rt: tokio::runtime::Runtime,
    endpoint: String,
}

async fn conf(endpoint: &str, region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}

/// What the server holds, sorted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Hosted zone names.
    pub zones: Vec<String>,
    /// `name TYPE value` of every record but the apex SOA/NS.
    pub records: Vec<String>,
    /// Bucket names.
    pub buckets: Vec<String>,
    /// `bucket/key` of every object.
    pub objects: Vec<String>,
    /// Domain of every certificate.
    pub certificates: Vec<String>,
    /// `region/key id` of every key not pending deletion.
    pub keys: Vec<String>,
    /// Alias names (customer aliases only).
    pub aliases: Vec<String>,
}

impl Sdk {
    /// Clients for `endpoint`.
    pub fn new(endpoint: &str) -> Sdk {
        Sdk {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            endpoint: endpoint.into(),
        }
    }

    /// Runs SDK calls.
    pub fn run<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Route 53 client.
    pub fn route53(&self) -> aws_sdk_route53::Client {
        aws_sdk_route53::Client::new(&self.run(conf(&self.endpoint, "us-east-1")))
    }

    /// S3 client (path style).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let c = self.run(conf(&self.endpoint, "us-east-1"));
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&c)
                .force_path_style(true)
                .build(),
        )
    }

    /// KMS client of a region.
    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.run(conf(&self.endpoint, region)))
    }

    /// ACM client.
    pub fn acm(&self) -> aws_sdk_acm::Client {
        aws_sdk_acm::Client::new(&self.run(conf(&self.endpoint, "us-east-1")))
    }

    /// Replaces the tags of a bucket with one tag.
    pub fn tag_bucket(&self, bucket: &str, key: &str, value: &str) {
        use aws_sdk_s3::types::{Tag, Tagging};
        let tags = Tagging::builder()
            .tag_set(Tag::builder().key(key).value(value).build().unwrap())
            .build()
            .unwrap();
        self.run(
            self.s3()
                .put_bucket_tagging()
                .bucket(bucket)
                .tagging(tags)
                .send(),
        )
        .unwrap();
    }

    /// The id of a zone by name.
    pub fn zone_id(&self, name: &str) -> String {
        let r53 = self.route53();
        let zones = self.run(r53.list_hosted_zones().send()).unwrap();
        zones
            .hosted_zones()
            .iter()
            .find(|z| z.name().trim_end_matches('.') == name)
            .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
            .expect("zone exists")
    }

    /// Everything the server holds.
    pub fn inventory(&self) -> Inventory {
        let mut inv = Inventory::default();
        let r53 = self.route53();
        let zones = self.run(r53.list_hosted_zones().send()).unwrap();
        for z in zones.hosted_zones() {
            let name = z.name().trim_end_matches('.').to_string();
            let mut start: Option<(String, aws_sdk_route53::types::RrType)> = None;
            loop {
                let mut call = r53
                    .list_resource_record_sets()
                    .hosted_zone_id(z.id())
                    .max_items(300);
                if let Some((n, t)) = start.take() {
                    call = call.start_record_name(n).start_record_type(t);
                }
                let page = self.run(call.send()).unwrap();
                for s in page.resource_record_sets() {
                    let n = s.name().trim_end_matches('.');
                    let t = s.r#type().as_str();
                    if n == name && (t == "SOA" || t == "NS") {
                        continue;
                    }
                    inv.records
                        .push(format!("{n} {t} {}", s.resource_records().len()));
                }
                match (
                    page.is_truncated(),
                    page.next_record_name(),
                    page.next_record_type(),
                ) {
                    (true, Some(n), Some(t)) => start = Some((n.to_string(), t.clone())),
                    _ => break,
                }
            }
            inv.zones.push(name);
        }
        let s3 = self.s3();
        for b in self.run(s3.list_buckets().send()).unwrap().buckets() {
            let name = b.name().unwrap_or_default().to_string();
            let objs = self.run(s3.list_objects_v2().bucket(&name).send()).unwrap();
            for o in objs.contents() {
                inv.objects
                    .push(format!("{name}/{}", o.key().unwrap_or_default()));
            }
            inv.buckets.push(name);
        }
        let acm = self.acm();
        for c in self
            .run(acm.list_certificates().send())
            .unwrap()
            .certificate_summary_list()
        {
            inv.certificates
                .push(c.domain_name().unwrap_or_default().to_string());
        }
        for region in REGIONS {
            let kms = self.kms(region);
            for k in self.run(kms.list_keys().send()).unwrap().keys() {
                let id = k.key_id().unwrap_or_default();
                let d = self.run(kms.describe_key().key_id(id).send()).unwrap();
                if d.key_metadata().and_then(|m| m.key_state())
                    != Some(&aws_sdk_kms::types::KeyState::PendingDeletion)
                {
                    inv.keys.push(format!("{region}/{id}"));
                }
            }
            for a in self.run(kms.list_aliases().send()).unwrap().aliases() {
                let n = a.alias_name().unwrap_or_default();
                if !n.starts_with("alias/aws/") {
                    inv.aliases.push(n.to_string());
                }
            }
        }
        for v in [
            &mut inv.zones,
            &mut inv.records,
            &mut inv.buckets,
            &mut inv.objects,
            &mut inv.certificates,
            &mut inv.keys,
            &mut inv.aliases,
        ] {
            v.sort();
        }
        inv
    }
}
