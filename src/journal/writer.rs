//! The journal's one writer: a thread that owns the write connection, so an
//! fsync'd commit never runs on the async runtime's worker threads and never
//! waits behind a report. The engine, the till and replay send it jobs and
//! await the reply; readers open their own read-only connection.

use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use super::{Journal, JournalError};

type Job = Box<dyn FnOnce(&mut Journal) + Send>;

enum Message {
    Job(Job),
    /// Close the journal (checkpoint, release the order ownership) and end.
    Close(mpsc::Sender<()>),
}

/// A handle on the writer thread; cheap to clone. The thread ends, closing
/// the journal, when the last handle is dropped.
#[derive(Clone)]
pub struct JournalWriter {
    jobs: mpsc::Sender<Message>,
    owner: String,
}

impl JournalWriter {
    /// Moves `journal` onto its own thread.
    pub fn spawn(mut journal: Journal) -> Self {
        let owner = journal.owner_id().unwrap_or_default().to_string();
        let (jobs, queue) = mpsc::channel::<Message>();
        thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || {
                for message in queue {
                    match message {
                        Message::Job(job) => job(&mut journal),
                        Message::Close(done) => {
                            drop(journal);
                            let _ = done.send(());
                            return;
                        }
                    }
                }
            })
            .expect("the journal writer thread starts");
        Self { jobs, owner }
    }

    /// Closes the journal now and waits until it is closed, however many
    /// handles remain: the process is about to exit, and a thread that is
    /// never joined would leave its WAL unmerged and its owner file behind.
    /// Later jobs fail with [`JournalError::WriterGone`].
    pub fn close(&self) {
        let (done, closed) = mpsc::channel();
        if self.jobs.send(Message::Close(done)).is_ok() {
            let _ = closed.recv();
        }
    }

    /// This process's owner id, as the orders it drives record it.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Runs `job` on the writer thread and waits for its result.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Journal) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        let (reply, answer) = oneshot::channel();
        self.send(job, reply)?;
        answer.await.map_err(|_| JournalError::WriterGone)?
    }

    /// [`Self::run`] for code outside the async runtime.
    pub fn run_blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Journal) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        let (reply, answer) = oneshot::channel();
        self.send(job, reply)?;
        answer
            .blocking_recv()
            .map_err(|_| JournalError::WriterGone)?
    }

    fn send<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Journal) -> Result<T, JournalError> + Send + 'static,
        reply: oneshot::Sender<Result<T, JournalError>>,
    ) -> Result<(), JournalError> {
        let job: Job = Box::new(move |journal| {
            // A panicking job must not take the thread (and every later
            // write) with it; SQLite rolls back its open transaction.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(journal)))
                .unwrap_or(Err(JournalError::WriterGone));
            let _ = reply.send(result);
        });
        self.jobs
            .send(Message::Job(job))
            .map_err(|_| JournalError::WriterGone)
    }
}
