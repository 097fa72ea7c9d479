//! An Azurite blob service per test on a free loopback port (Azure Storage's data plane),
//! with the storage accounts a test names, and an inventory of their containers.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use azure_storage::{CloudLocation, StorageCredentials};
use azure_storage_blobs::prelude::ClientBuilder;
use futures_util::StreamExt;

use super::arm::ACCOUNT_KEY;
use super::moto::free_port;

/// A running azurite-blob.
pub struct Azurite {
    child: Child,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    accounts: Vec<String>,
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("LANDLORD_AZURITE_BLOB") {
        return p.into();
    }
    super::tools_dir().join("azurite-3.37.0/node_modules/.bin/azurite-blob")
}

/// A runtime for the blob client's calls.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Azurite {
    /// Starts Azurite knowing `accounts` (all with the key the ARM contract server lists);
    /// fails loudly when it is not installed.
    pub fn start(accounts: &[&str]) -> Azurite {
        let bin = binary();
        assert!(
            bin.exists(),
            "azurite-blob not found at {}: run scripts/install-test-deps (or set LANDLORD_AZURITE_BLOB)",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let known: Vec<String> = accounts
            .iter()
            .map(|a| format!("{a}:{ACCOUNT_KEY}"))
            .collect();
        let child = Command::new(&bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(dir.path())
            .args([
                "--silent",
                "--skipApiVersionCheck",
                "--disableProductStyleUrl",
            ])
            .env("AZURITE_ACCOUNTS", known.join(";"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let azurite = Azurite {
            child,
            _dir: dir,
            endpoint: format!("http://127.0.0.1:{port}"),
            accounts: accounts.iter().map(|a| a.to_string()).collect(),
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "azurite-blob did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        azurite
    }

    /// The blob endpoint template for the ARM contract server.
    pub fn blob_endpoint(&self) -> String {
        format!("{}/{{name}}/", self.endpoint)
    }

    fn client(&self, account: &str) -> ClientBuilder {
        ClientBuilder::with_location(
            CloudLocation::Custom {
                account: account.into(),
                uri: format!("{}/{account}", self.endpoint),
            },
            StorageCredentials::access_key(account, azure_core::auth::Secret::new(ACCOUNT_KEY)),
        )
    }

    /// `account/container` of every container, sorted.
    pub fn containers(&self) -> Vec<String> {
        let rt = runtime();
        let mut all = Vec::new();
        for account in &self.accounts {
            let service = self.client(account).blob_service_client();
            rt.block_on(async {
                let mut pages = service.list_containers().into_stream();
                while let Some(page) = pages.next().await {
                    for c in page.expect("list containers").containers {
                        all.push(format!("{account}/{}", c.name));
                    }
                }
            });
        }
        all.sort();
        all
    }

    /// Deletes a container out of band.
    pub fn delete_container(&self, account: &str, name: &str) {
        let rt = runtime();
        let client = self.client(account).container_client(name);
        rt.block_on(client.delete().into_future())
            .expect("delete container");
    }

    /// Sets a container's public access level out of band (`None`, `Blob` or `Container`).
    pub fn set_container_access(
        &self,
        account: &str,
        name: &str,
        access: azure_storage_blobs::container::PublicAccess,
    ) {
        let rt = runtime();
        let client = self.client(account).container_client(name);
        rt.block_on(client.set_acl(access).into_future())
            .expect("set container acl");
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        // Azurite sometimes ignores SIGTERM: escalate to SIGKILL.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
