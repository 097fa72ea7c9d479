//! Pebble (the ACME test server) per test, with a test CA and a localhost certificate
//! made here, resolving DNS-01 challenges through a given DNS server.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use super::moto::free_port;

/// A running Pebble.
pub struct Pebble {
    child: Child,
    dir: tempfile::TempDir,
    /// ACME directory URL.
    pub directory: String,
    /// Management port (roots at `/roots/0`).
    pub management: u16,
}

fn pebble() -> PathBuf {
    std::env::var_os("LANDLORD_PEBBLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/pebble"))
}

impl Pebble {
    /// Starts Pebble validating DNS-01 against `dns` (`host:port`); fails loudly when missing.
    pub fn start(dns: &str) -> Pebble {
        let bin = pebble();
        assert!(bin.exists(), "Pebble not found at {}: run scripts/install-test-deps (Debian pebble) or set LANDLORD_PEBBLE", bin.display());
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A CA for Pebble's own HTTPS listener, and a certificate for 127.0.0.1.
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "landlord test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        std::fs::write(d.join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(d.join("cert.pem"), leaf_cert.pem()).unwrap();
        std::fs::write(d.join("key.pem"), leaf_key.serialize_pem()).unwrap();
        let (port, management) = (free_port(), free_port());
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": d.join("cert.pem"),
            "privateKey": d.join("key.pem"),
            "httpPort": free_port(),
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        std::fs::write(d.join("pebble.json"), config.to_string()).unwrap();
        let child = Command::new(&bin)
            .arg("-config")
            .arg(d.join("pebble.json"))
            .args(["-dnsserver", dns])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(std::fs::File::create(d.join("pebble.log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let p = Pebble {
            child,
            dir,
            directory: format!("https://127.0.0.1:{port}/dir"),
            management,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "pebble did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        p
    }

    /// The CA that signed Pebble's HTTPS certificate (for `ca_bundle`).
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The root that signs issued certificates, fetched from the management interface.
    pub fn issuing_root(&self) -> String {
        let out = Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(self.ca_pem())
            .arg(format!("https://127.0.0.1:{}/roots/0", self.management))
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "cannot fetch pebble's root");
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
