//! A copy of the run's log kept in memory, written into the run record as `log.txt`.
//!
//! The run folder appears only when the run is complete (it is renamed into place), so the
//! log cannot stream into it; it is collected here and written with the rest.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

/// Shared log buffer; clones write to the same buffer.
#[derive(Debug, Clone, Default)]
pub struct RunLog(Arc<Mutex<Vec<u8>>>);

impl RunLog {
    /// Everything logged so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

/// The writer handed to tracing for each event.
pub struct RunLogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for RunLogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for RunLog {
    type Writer = RunLogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RunLogWriter(self.0.clone())
    }
}
