//! A BIND9 `named` per test on a free loopback port, serving zones that accept
//! TSIG-signed dynamic updates and transfers.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

/// TSIG key name used by the tests.
pub const KEY_NAME: &str = "landlord-key";

/// A running named.
pub struct Bind {
    child: Child,
    dir: tempfile::TempDir,
    /// Port (UDP and TCP) on 127.0.0.1.
    pub port: u16,
    /// Base64 TSIG secret.
    pub secret: String,
}

fn named() -> PathBuf {
    std::env::var_os("LANDLORD_NAMED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/named"))
}

/// A port free for both TCP and UDP on loopback.
fn free_udp_tcp_port() -> u16 {
    loop {
        let port = super::moto::free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Bind {
    /// Starts named as the primary of `zones`; fails loudly when BIND is not installed.
    pub fn start(zones: &[&str]) -> Bind {
        Self::launch(zones, None)
    }

    /// Starts named as a secondary of `zones`, transferring from `primary` at start and
    /// then only on its SOA refresh (the primary sends no NOTIFY): a lagging server.
    pub fn start_secondary(primary: &Bind, zones: &[&str]) -> Bind {
        let b = Self::launch(zones, Some(primary.port));
        // Wait for the initial transfer, so later changes on the primary are not in it.
        let start = Instant::now();
        for z in zones {
            while b.dig(z, "SOA").is_empty() {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "the secondary never loaded {z}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        b
    }

    fn launch(zones: &[&str], primary: Option<u16>) -> Bind {
        let bin = named();
        assert!(bin.exists(), "BIND9 `named` not found at {}: run scripts/install-test-deps (Debian bind9) or set LANDLORD_NAMED", bin.display());
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_udp_tcp_port();
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = (port as usize * 31 + i * 17) as u8 ^ (std::process::id() as u8);
        }
        let secret = base64::engine::general_purpose::STANDARD.encode(key);
        std::fs::write(
            d.join("tsig.key"),
            format!("key \"{KEY_NAME}\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n"),
        )
        .unwrap();
        let mut conf = format!(
            "include \"{dir}/tsig.key\";\noptions {{\n  directory \"{dir}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  pid-file \"{dir}/named.pid\";\n  session-keyfile \"{dir}/session.key\";\n  recursion no;\n  dnssec-validation no;\n  allow-transfer {{ key \"{KEY_NAME}\"; 127.0.0.1; }};\n  notify no;\n}};\ncontrols {{ }};\n",
            dir = d.display()
        );
        for z in zones {
            if let Some(p) = primary {
                conf.push_str(&format!(
                    "zone \"{z}\" {{ type secondary; file \"{dir}/{z}.db\"; primaries {{ 127.0.0.1 port {p}; }}; }};\n",
                    dir = d.display()
                ));
                continue;
            }
            std::fs::write(
                d.join(format!("{z}.zone")),
                format!("$ORIGIN {z}.\n$TTL 60\n@ IN SOA ns1.{z}. hostmaster.{z}. ( 1 60 60 3600 60 )\n  IN NS ns1.{z}.\nns1 IN A 127.0.0.1\n"),
            )
            .unwrap();
            conf.push_str(&format!(
                "zone \"{z}\" {{ type primary; file \"{dir}/{z}.zone\"; allow-update {{ key \"{KEY_NAME}\"; }}; }};\n",
                dir = d.display()
            ));
        }
        std::fs::write(d.join("named.conf"), conf).unwrap();
        let child = Command::new(&bin)
            .args(["-g", "-c"])
            .arg(d.join("named.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("named.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let bind = Bind {
            child,
            dir,
            port,
            secret,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "named did not listen on {port}: {}",
                std::fs::read_to_string(bind.dir.path().join("named.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        bind
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The TSIG key file (for nsupdate -k).
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("tsig.key")
    }

    /// Sends nsupdate commands (server and key are added).
    pub fn nsupdate(&self, commands: &str) {
        use std::io::Write;
        let mut child = Command::new("nsupdate")
            .arg("-k")
            .arg(self.key_file())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nsupdate runs (Debian bind9-dnsutils)");
        let script = format!("server 127.0.0.1 {}\n{commands}\nsend\n", self.port);
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nsupdate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Answers of `dig` for name/type, sorted.
    pub fn dig(&self, name: &str, rtype: &str) -> Vec<String> {
        let out = Command::new("dig")
            .args([
                "+short",
                "-p",
                &self.port.to_string(),
                "@127.0.0.1",
                name,
                rtype,
            ])
            .output()
            .expect("dig runs");
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_matches('"').to_string())
            .filter(|l| !l.is_empty())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
