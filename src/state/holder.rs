//! The lock of a local state directory and the record of who holds it, in one file
//! (`state/lock`): the lock is an OS lock (`flock`) on that file, and the holder writes
//! its record into the same file right after taking it and empties it when done. The OS
//! releases the lock when its process ends, so a local lock is never stale; a waiter
//! tells a live holder from a leftover record by the holder's pid *and* process start
//! time, and waits briefly for a holder that has just taken the lock to name itself.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{LockInfo, StateError};

/// The lock file's name in the state directory.
pub const LOCK_FILE: &str = "lock";

/// How long a waiter gives a holder that has just taken the lock to write its record.
const NAMING_GRACE: Duration = Duration::from_secs(2);

/// When the process `pid` started (clock ticks since boot), from `/proc/<pid>/stat`.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields after it start
    // at the last ')'. starttime is field 22, the 20th after the name.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// Whether `info` names a process that is running now (same pid, same start time).
pub fn is_live(info: &LockInfo) -> bool {
    match info.process_start {
        Some(start) => process_start(info.pid) == Some(start),
        None => pid_alive(info.pid),
    }
}

/// Whether a process with this pid exists (on this host).
pub fn pid_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A held lock on a state directory; released (record emptied, lock dropped) on drop.
#[derive(Debug)]
pub struct Held {
    file: File,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Mark released first: a waiter reading in between sees no record, not ours.
        let _ = self.file.set_len(0);
    }
}

fn flock(f: &File) -> bool {
    // SAFETY: flock on a file descriptor we own; non-blocking.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

fn read_record(f: &mut File) -> Option<LockInfo> {
    let mut text = String::new();
    f.rewind().ok()?;
    f.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Takes the lock of `dir` for `holder`, waiting up to `timeout`; on timeout the error
/// names the live holder (or says none has named itself).
pub fn take(dir: &Path, holder: &LockInfo, timeout: Duration) -> Result<Held, StateError> {
    let storage = |m: String| StateError::Storage {
        path: dir.display().to_string(),
        message: m,
    };
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| storage(format!("cannot open {}: {e}", path.display())))?;
    let start = Instant::now();
    loop {
        if flock(&file) {
            let body = serde_json::to_vec(holder).unwrap_or_default();
            file.set_len(0)
                .and_then(|_| file.rewind())
                .and_then(|_| file.write_all(&body))
                .map_err(|e| storage(format!("cannot write {}: {e}", path.display())))?;
            return Ok(Held { file });
        }
        if start.elapsed() >= timeout {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Held by another process: name it once it has named itself.
    let waited = start.elapsed();
    let naming = Instant::now();
    loop {
        if let Some(info) = read_record(&mut file).filter(is_live) {
            return Err(StateError::Locked {
                holder: info.to_string(),
                waited,
                advice: String::new(),
            });
        }
        if flock(&file) {
            // Released meanwhile; let the caller's next attempt take it.
            drop(file);
            return take(dir, holder, Duration::ZERO);
        }
        if naming.elapsed() >= NAMING_GRACE {
            return Err(StateError::Locked {
                holder: "a process that has not named itself".into(),
                waited,
                advice: format!(
                    "; the OS holds the lock on {} for it and releases it when that process ends",
                    path.display()
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The holder of the lock of `dir`, when a live process holds it.
pub fn current(dir: &Path) -> Option<LockInfo> {
    let mut f = File::open(dir.join(LOCK_FILE)).ok()?;
    read_record(&mut f).filter(is_live)
}
