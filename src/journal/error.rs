//! Turning SQLite's errors into [`JournalError`]s, for the store, the schema
//! and the read-only reports alike (so none of them imports another for it).

use std::path::Path;

use super::JournalError;

/// Turns a SQLite error into one that says what to do about it.
pub(super) fn classify(path: &Path, error: rusqlite::Error) -> JournalError {
    use rusqlite::ErrorCode as Code;
    let path = path.to_path_buf();
    match error.sqlite_error_code() {
        Some(Code::DatabaseBusy | Code::DatabaseLocked) => JournalError::Busy { path },
        Some(Code::NotADatabase) => JournalError::NotAJournal { path },
        Some(Code::DiskFull) => JournalError::DiskFull { path },
        Some(Code::DatabaseCorrupt) => JournalError::Damaged {
            path,
            problem: error.to_string(),
        },
        Some(Code::CannotOpen | Code::PermissionDenied | Code::ReadOnly) => {
            JournalError::Access { path, cause: error }
        }
        _ => JournalError::Sqlite { path, cause: error },
    }
}
