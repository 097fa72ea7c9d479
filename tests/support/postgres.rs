//! A fresh PostgreSQL 15 cluster per test on a free loopback port (127.0.0.1 only,
//! scram-sha-256, optionally TLS-only with a throwaway CA), stopped on drop. When the tests
//! run as root, initdb and the server run as the `postgres` user.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A running cluster in its own temporary directory.
pub struct Pg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    tls: bool,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Password of the superuser `postgres`.
    pub password: String,
}

/// Extensions for the test CA and for the server certificate it signs.
const OPENSSL_CNF: &str = "[req]\ndistinguished_name = dn\n[dn]\n\
[ca]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n\
subjectKeyIdentifier = hash\n\
[server]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n\
extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost, IP:127.0.0.1\n\
subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n";

/// openssl runs making `ca.crt` and `server.{crt,key}` (P-256 keys) in the cluster directory.
const OPENSSL_RUNS: [&str; 3] = [
    "req -config openssl.cnf -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 30 -subj /CN=landlord-test-ca -extensions ca",
    "req -config openssl.cnf -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr -subj /CN=localhost",
    "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial 2 -days 30 -out server.crt -extfile openssl.cnf -extensions server",
];

/// Whether this process runs as root (then initdb and the server run as `postgres`).
fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// A command for a server binary run in `dir`, through `runuser -u postgres --` when root.
fn server_cmd(bin: &Path, prog: &str, dir: &Path) -> Command {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(prog));
        c
    } else {
        Command::new(bin.join(prog))
    };
    c.current_dir(dir).stdin(Stdio::null());
    c
}

/// Runs a setup command to completion; panics with its output when it fails.
fn run(c: &mut Command, what: &str) {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An alphanumeric password derived from the port, the process id and the clock.
fn password(port: u16) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let mut x = (((port as u64) << 48) ^ ((std::process::id() as u64) << 16) ^ nanos) | 1;
    (0..24)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALNUM[(x % 62) as usize] as char
        })
        .collect()
}

/// Lets the `postgres` user reach `d` (parents traversable) and gives it `d` and its files.
fn give_to_postgres(d: &Path) {
    for p in d.ancestors().skip(1) {
        let Ok(m) = std::fs::metadata(p) else {
            continue;
        };
        let mode = m.permissions().mode() & 0o7777;
        if mode & 0o001 == 0 {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | 0o001))
                .unwrap_or_else(|e| panic!("cannot make {} traversable: {e}", p.display()));
        }
    }
    run(
        Command::new("chown").args(["-R", "postgres:"]).arg(d),
        "chown -R postgres: (no `postgres` user? Debian postgresql-15 makes it)",
    );
}

impl Pg {
    /// A cluster accepting plain TCP connections (scram-sha-256).
    pub fn start() -> Pg {
        Self::launch(false)
    }

    /// A cluster accepting only TLS connections (`hostssl`), its certificate signed by `ca_cert()`.
    pub fn start_tls() -> Pg {
        Self::launch(true)
    }

    /// initdb, configuration and `pg_ctl start` (paths relative to the cluster directory),
    /// on another port when the port was taken.
    fn launch(tls: bool) -> Pg {
        let bin = std::env::var_os("LANDLORD_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
        for p in ["initdb", "pg_ctl", "postgres"].map(|p| bin.join(p)) {
            assert!(p.exists(), "PostgreSQL server binary not found at {}: run scripts/install-test-deps (Debian postgresql-15) or set LANDLORD_PG_BIN", p.display());
        }
        let dir = tempfile::Builder::new()
            .prefix("landlord-pg-")
            .tempdir()
            .expect("cannot create a temporary directory for PostgreSQL");
        let d = dir.path().to_path_buf();
        let port = super::moto::free_port();
        let password = password(port);
        std::fs::write(d.join("pwfile"), format!("{password}\n")).expect("cannot write pwfile");
        if tls {
            std::fs::write(d.join("openssl.cnf"), OPENSSL_CNF).expect("cannot write openssl.cnf");
            for args in OPENSSL_RUNS {
                let mut c = Command::new("openssl");
                c.current_dir(&d).stdin(Stdio::null()).args(args.split(' '));
                run(&mut c, &format!("openssl {args} (Debian openssl)"));
            }
            std::fs::set_permissions(d.join("server.key"), std::fs::Permissions::from_mode(0o600))
                .expect("cannot chmod server.key");
        }
        if is_root() {
            give_to_postgres(&d);
        }
        let args = "-D data -A scram-sha-256 -U postgres --pwfile=pwfile -E UTF8 --locale=C -N";
        run(
            server_cmd(&bin, "initdb", &d).args(args.split(' ')),
            "initdb",
        );
        let _ = std::fs::remove_file(d.join("pwfile"));
        let mut conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             log_statement = 'all'\nlog_line_prefix = '%m [%p] %u@%d '\nlogging_collector = off\n\
             fsync = off\nfull_page_writes = off\nsynchronous_commit = off\nmax_connections = 200\n",
            d.display()
        );
        let mut hba = String::from("local all all scram-sha-256\n");
        if tls {
            conf.push_str(&format!(
                "ssl = on\nssl_cert_file = '{0}/server.crt'\nssl_key_file = '{0}/server.key'\n",
                d.display()
            ));
            hba.push_str("hostssl all all 127.0.0.1/32 scram-sha-256\n");
        } else {
            hba.push_str("host all all 127.0.0.1/32 scram-sha-256\n");
        }
        // Appending and rewriting keep the files' owner (the server user).
        std::fs::OpenOptions::new()
            .append(true)
            .open(d.join("data/postgresql.conf"))
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .expect("cannot append to postgresql.conf");
        std::fs::write(d.join("data/pg_hba.conf"), hba).expect("cannot write pg_hba.conf");
        let mut pg = Pg {
            dir,
            bin,
            tls,
            port,
            password,
        };
        for attempt in 1..=3 {
            let before = pg.log().len();
            let out = server_cmd(&pg.bin, "pg_ctl", &d)
                .args(["-o", &format!("-p {}", pg.port)])
                .args("-D data -l server.log -w -s start".split(' '))
                .output()
                .expect("cannot run pg_ctl");
            if out.status.success() {
                return pg;
            }
            let log = pg.log();
            let taken = log
                .get(before..)
                .unwrap_or(log.as_str())
                .contains("Address already in use");
            if !taken || attempt == 3 {
                let err = String::from_utf8_lossy(&out.stderr);
                panic!(
                    "PostgreSQL did not start on port {} ({err})\n--- server log\n{log}",
                    pg.port
                );
            }
            pg.port = super::moto::free_port();
        }
        unreachable!("the last attempt returns or panics")
    }

    /// The CA certificate that signed the server's certificate (TLS clusters only).
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.tls.then(|| self.dir.path().join("ca.crt"))
    }

    /// The address the server listens on.
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// An environment variable name unique to this cluster, and the superuser password.
    pub fn password_env(&self) -> (String, String) {
        let var = format!("LANDLORD_TEST_PG_PASSWORD_{}", self.port);
        (var, self.password.clone())
    }

    /// A `[providers.postgresql.NAME]` table for this cluster (verify-full with the CA for TLS).
    pub fn provider_toml(&self, name: &str, region: &str) -> String {
        let (var, _) = self.password_env();
        let mut s = format!(
            "[providers.postgresql.{name}]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"postgres\"\npassword_env = \"{var}\"\nregion = \"{region}\"\n",
            self.port
        );
        if let Some(ca) = self.ca_cert() {
            let ca = ca.display();
            s.push_str(&format!(
                "sslmode = \"verify-full\"\nsslrootcert = \"{ca}\"\n"
            ));
        }
        s
    }

    /// Runs psql over TCP (`-X -At`, stop on error) with one `-c` per command, in one session.
    fn run_psql(&self, user: &str, password: &str, db: &str, ssl: &str, cmds: &[String]) -> Output {
        let mut c = Command::new("/usr/bin/psql");
        c.args(["-X", "-h", "127.0.0.1", "-U", user, "-d", db, "-p"])
            .arg(self.port.to_string())
            .args(["-At", "-v", "ON_ERROR_STOP=1"])
            .env("PGPASSWORD", password)
            .env("PGSSLMODE", if self.tls { ssl } else { "disable" })
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null());
        if let Some(ca) = self.ca_cert() {
            c.env("PGSSLROOTCERT", ca);
        }
        for cmd in cmds {
            c.arg("-c").arg(cmd);
        }
        c.output()
            .expect("cannot run /usr/bin/psql (Debian postgresql-client-15)")
    }

    /// Runs SQL as the superuser in `db`; panics with psql's stderr on failure, returns trimmed stdout.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self.run_psql("postgres", &self.password, db, "require", &[sql.into()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "psql on {db} failed for {sql:?}:\n{err}"
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs SQL as `user` after `SET name = 'value'` for each setting, in one session (verify-full for TLS).
    pub fn try_psql_as(
        &self,
        user: &str,
        password: &str,
        db: &str,
        sql: &str,
        settings: &[(&str, &str)],
    ) -> Result<String, String> {
        let mut cmds: Vec<String> = settings
            .iter()
            .map(|(name, value)| format!("SET {name} = '{}'", value.replace('\'', "''")))
            .collect();
        cmds.push(sql.into());
        let out = self.run_psql(user, password, db, "verify-full", &cmds);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        // Each SET prints its command tag before the statement's own output.
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines().peekable();
        for _ in settings {
            lines.next_if_eq(&"SET");
        }
        Ok(lines.collect::<Vec<_>>().join("\n").trim().to_string())
    }

    /// A connection URL for `db` as the superuser (password included).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://postgres:{}@127.0.0.1:{}/{db}?sslmode=disable",
            self.password, self.port
        )
    }

    /// Stops the server at once (`-m immediate`), as a crash or a network loss looks to
    /// its clients; [`resume`](Self::resume) starts it again on the same port.
    pub fn pause(&self) {
        run(
            server_cmd(&self.bin, "pg_ctl", self.dir.path())
                .args("-D data -m immediate -w -s stop".split(' ')),
            "pg_ctl stop",
        );
    }

    /// Starts a paused server again.
    pub fn resume(&self) {
        run(
            server_cmd(&self.bin, "pg_ctl", self.dir.path())
                .args(["-o", &format!("-p {}", self.port)])
                .args("-D data -l server.log -w -s start".split(' ')),
            "pg_ctl start",
        );
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Stops the server and removes its directory (as dropping does).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = server_cmd(&self.bin, "pg_ctl", self.dir.path())
            .args("-D data -m immediate -w -s stop".split(' '))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
