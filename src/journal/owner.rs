//! Who drives an order: one live process at a time.
//!
//! Every process that writes the journal is an owner: it holds an exclusive
//! lock on a file of its own, `<journal>.owners/<id>.lock`, for as long as it
//! lives. The kernel drops the lock when the process ends however it ends
//! (exit, crash, kill -9), and a power cut drops every lock, so "is the owner
//! alive?" is one non-blocking try-lock on its file, with no lease to expire
//! and no pid to be reused. An order row names its owner; a process takes over
//! only an order whose owner is gone ([`crate::journal::Journal::claim`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rand::RngExt;

/// This process's ownership of the orders it drives; dropping it (at exit)
/// releases them to recovery.
#[derive(Debug)]
pub struct Owner {
    id: String,
    path: PathBuf,
    // Held, never read: the lock lives as long as the open file.
    _lock: File,
}

impl Owner {
    /// Takes a new owner id for this process, next to the journal at `journal`.
    pub fn acquire(journal: &Path) -> io::Result<Self> {
        let folder = folder(journal);
        let id = format!("{}-{}", std::process::id(), random_part());
        let path = folder.join(format!("{id}.lock"));
        let mut attempts = 0;
        let mut file = loop {
            std::fs::create_dir_all(&folder)?;
            let opened = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path);
            match opened {
                // Another owner leaving removed the empty folder in between.
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 3 => attempts += 1,
                opened => break opened?,
            }
        };
        file.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => e,
            TryLockError::WouldBlock => io::Error::other("a brand-new lock file is locked"),
        })?;
        // For a person looking at the folder: which process this was.
        let _ = writeln!(file, "pid {}", std::process::id());
        Ok(Self {
            id,
            path,
            _lock: file,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        // Only succeeds once no other owner's file is left in it.
        if let Some(folder) = self.path.parent() {
            let _ = std::fs::remove_dir(folder);
        }
    }
}

/// Whether the owner `id` of orders in the journal at `journal` still runs.
/// A missing lock file, or one nobody holds, means it is gone. Anything this
/// cannot tell (a file it may not open) counts as alive: an order is never
/// taken from a process that might still be sending for it.
pub fn is_alive(journal: &Path, id: &str) -> bool {
    if id.contains(['/', '\0']) || id.starts_with('.') {
        return false;
    }
    let path = folder(journal).join(format!("{id}.lock"));
    let file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return false,
        Err(_) => return true,
    };
    match file.try_lock() {
        Ok(()) => {
            // Its process is gone: the file is litter now.
            let _ = std::fs::remove_file(&path);
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => true,
    }
}

fn folder(journal: &Path) -> PathBuf {
    let mut name = journal.file_name().unwrap_or_default().to_os_string();
    name.push(".owners");
    journal.with_file_name(name)
}

fn random_part() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_is_alive_while_held_and_gone_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("journal.sqlite3");
        let a = Owner::acquire(&journal).unwrap();
        let b = Owner::acquire(&journal).unwrap();
        assert_ne!(a.id(), b.id());
        assert!(is_alive(&journal, a.id()));
        let id = a.id().to_string();
        drop(a);
        assert!(!is_alive(&journal, &id));
        assert!(is_alive(&journal, b.id()));
        assert!(!is_alive(&journal, "123-NOSUCH"));
        assert!(!is_alive(&journal, "../../etc/passwd"));
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_is_not_alive() {
        // What kill -9 leaves: the file, with no process holding its lock.
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("journal.sqlite3");
        let owners = folder(&journal);
        std::fs::create_dir_all(&owners).unwrap();
        std::fs::write(owners.join("999999-DEAD0000.lock"), "pid 999999\n").unwrap();
        assert!(!is_alive(&journal, "999999-DEAD0000"));
        assert!(!owners.join("999999-DEAD0000.lock").exists());
    }
}
