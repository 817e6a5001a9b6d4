//! The file source (`--source file:PATH`, `engine replay FILE`): JSONL, one Kafka record value
//! per line, or `{"topic":…,"key":…,"value":…}` lines (value `null` = tombstone; a string value
//! is the record text itself). Blank lines are skipped; a malformed line becomes a dead letter
//! with its line number and reading goes on.
//!
//! Owns reading and line framing only; parsing is [`crate::debezium`], grouping
//! [`crate::group`]. Reads to the end once (replay), it does not follow a growing file.

use crate::deadletter::{DeadLetterStats, DeadLetters};
use crate::event::Parsed;
use crate::group::{GroupConfig, TxAssembler};
use crate::source::SourceIo;
use crate::types::{Micros, Position, Transaction};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a run read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    pub lines: u64,
    pub events: u64,
    pub transactions: u64,
    pub dead_letters: u64,
}

/// Replays a JSONL file of Debezium messages.
pub struct FileSource {
    pub path: PathBuf,
    pub dead_letters: Arc<DeadLetters>,
    pub group: GroupConfig,
}

impl FileSource {
    /// Dead letters are kept in memory (last 1,000); use [`FileSource::with_dead_letters`] to
    /// share a log with the API or write it to a file.
    pub fn new(path: impl Into<PathBuf>) -> FileSource {
        FileSource {
            path: path.into(),
            dead_letters: Arc::new(DeadLetters::in_memory(1000)),
            group: GroupConfig::default(),
        }
    }

    pub fn with_dead_letters(mut self, dl: Arc<DeadLetters>) -> FileSource {
        self.dead_letters = dl;
        self
    }

    /// Reads the file to its end, sending transactions in order (blocking when the engine is
    /// behind), then returns. Stops early when the engine stops or hangs up.
    pub fn run(self, io: SourceIo) -> Result<FileStats, FileError> {
        let out = &io.out;
        let stop = io.stop.clone();
        let applied = io.applied.clone();
        let send = |tx: Transaction| -> bool {
            // Nothing to acknowledge for a file: drain so the channel does not grow.
            while applied.try_recv().is_ok() {}
            out.send(tx).is_ok()
        };
        self.run_with(|| stop.load(std::sync::atomic::Ordering::Relaxed), send)
    }

    /// [`FileSource::run`] handing each transaction to `send` on this thread (false: stop)
    /// and stopping early when `stop` says so. For a replay that submits to the engine from
    /// the reading thread itself, without a channel and a thread that only pass transactions
    /// on (each hand-over could wake a parked thread: a futex call per transaction).
    pub fn run_with(
        self,
        mut stop: impl FnMut() -> bool,
        mut send: impl FnMut(Transaction) -> bool,
    ) -> Result<FileStats, FileError> {
        let mut stats = FileStats::default();
        read_lines(
            &self.path,
            &self.dead_letters,
            self.group.clone(),
            &mut stats,
            &mut stop,
            &mut send,
        )?;
        tracing::info!(path = %self.path.display(), lines = stats.lines, events = stats.events,
            transactions = stats.transactions, dead_letters = stats.dead_letters, "file replayed");
        Ok(stats)
    }
}

/// Reads a whole file into transactions (for `engine replay` and tests).
pub fn read_file(path: &Path) -> Result<(Vec<Transaction>, DeadLetterStats), FileError> {
    let dl = DeadLetters::in_memory(100);
    let (txs, _) = read_file_with(path, &dl, GroupConfig::default())?;
    Ok((txs, dl.stats()))
}

/// [`read_file`] with the caller's dead-letter log and grouping.
pub fn read_file_with(
    path: &Path,
    dl: &DeadLetters,
    group: GroupConfig,
) -> Result<(Vec<Transaction>, FileStats), FileError> {
    let mut txs = Vec::new();
    let mut stats = FileStats::default();
    read_lines(path, dl, group, &mut stats, &mut || false, &mut |t| {
        // Empty transactions only carry positions to acknowledge; a replay has none.
        if !t.changes.is_empty() {
            txs.push(t);
        }
        true
    })?;
    Ok((txs, stats))
}

/// The `{"topic", "key", "value"}` line form.
#[derive(Deserialize)]
struct Framed<'a> {
    #[serde(borrow, default)]
    topic: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
}

const FRAME_KEYS: [&str; 7] = [
    "topic",
    "key",
    "value",
    "partition",
    "offset",
    "timestamp",
    "headers",
];

/// Whether a line is the framed form, judged by its first key (cheap: no full parse). A
/// Debezium message starts with `schema`, `payload`, `before`, `after`, … or a column name; no
/// table of ours has a column named like a frame key.
fn is_framed(line: &[u8]) -> bool {
    let s = line.trim_ascii_start();
    let Some(rest) = s.strip_prefix(b"{") else {
        return false;
    };
    let Some(rest) = rest.trim_ascii_start().strip_prefix(b"\"") else {
        return false;
    };
    FRAME_KEYS
        .iter()
        .any(|k| rest.len() > k.len() && rest.starts_with(k.as_bytes()) && rest[k.len()] == b'"')
}

/// A dead letter's position: `path:line`.
#[derive(Copy, Clone)]
struct At<'a>(&'a str, u64);

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

/// Why line handling stopped early.
enum Flow {
    Go,
    Stop,
}

fn read_lines(
    path: &Path,
    dl: &DeadLetters,
    group: GroupConfig,
    stats: &mut FileStats,
    stopping: &mut dyn FnMut() -> bool,
    send: &mut dyn FnMut(Transaction) -> bool,
) -> Result<(), FileError> {
    let io_err = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut lines = Lines {
        dl,
        asm: TxAssembler::new(group),
        name: path.display().to_string(),
        line_no: 0,
        stats,
        stopping,
        send,
    };
    // Lines are handled where they lie in the read buffer; only a line cut by the buffer's end
    // is copied (into `partial`), instead of copying every line out as `read_until` did.
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let buf = reader.fill_buf().map_err(io_err)?;
        if buf.is_empty() {
            break;
        }
        // what this read returned arrived now (a line cut by the previous read's end, when
        // its rest came)
        lines.asm.arrived(Some(Micros::now()));
        let len = buf.len();
        let mut start = 0;
        if !partial.is_empty() {
            match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    partial.extend_from_slice(&buf[..=i]);
                    start = i + 1;
                    if let Flow::Stop = lines.line(&partial) {
                        return Ok(());
                    }
                    partial.clear();
                }
                None => {
                    partial.extend_from_slice(buf);
                    reader.consume(len);
                    continue;
                }
            }
        }
        let base = start;
        for i in memchr::memchr_iter(b'\n', &buf[base..]) {
            let end = base + i + 1;
            if let Flow::Stop = lines.line(&buf[start..end]) {
                return Ok(());
            }
            start = end;
        }
        partial.extend_from_slice(&buf[start..]);
        reader.consume(len);
    }
    // The last line may lack its newline.
    if !partial.is_empty() {
        if let Flow::Stop = lines.line(&partial) {
            return Ok(());
        }
    }
    lines.asm.flush();
    lines.drain();
    Ok(())
}

/// Per-line state of [`read_lines`].
struct Lines<'a> {
    dl: &'a DeadLetters,
    asm: TxAssembler,
    name: String,
    line_no: u64,
    stats: &'a mut FileStats,
    stopping: &'a mut dyn FnMut() -> bool,
    send: &'a mut dyn FnMut(Transaction) -> bool,
}

impl Lines<'_> {
    /// One line, with or without its newline.
    fn line(&mut self, line: &[u8]) -> Flow {
        self.line_no += 1;
        let line_no = self.line_no;
        self.stats.lines = line_no;
        let text = line.trim_ascii();
        if text.is_empty() {
            return Flow::Go;
        }
        let (dl, asm) = (self.dl, &mut self.asm);
        let position = Position::FileLine(line_no);
        let at = At(&self.name, line_no);
        let parsed = if is_framed(text) {
            match serde_json::from_slice::<Framed>(text) {
                Ok(f) => {
                    let topic = f.topic.as_deref();
                    match f.value.map(|v| v.get()) {
                        None | Some("null") => {
                            asm.push(Parsed::Tombstone, position);
                            true
                        }
                        // A string value is the record text itself.
                        Some(v) if v.starts_with('"') => match serde_json::from_str::<String>(v) {
                            Ok(inner) => {
                                asm.push_message(dl, at, topic, Some(inner.as_bytes()), position)
                            }
                            Err(e) => {
                                dl.record_reason(at, "malformed_json", &e.to_string(), text);
                                asm.push_dead(None, position);
                                false
                            }
                        },
                        Some(v) => asm.push_message(dl, at, topic, Some(v.as_bytes()), position),
                    }
                }
                Err(e) => {
                    dl.record_reason(at, "malformed_json", &format!("malformed JSON: {e}"), text);
                    asm.push_dead(None, position);
                    false
                }
            }
        } else {
            asm.push_message(dl, at, None, Some(text), position)
        };
        if !parsed {
            self.stats.dead_letters += 1;
        }
        self.stats.events = self.asm.stats().events;
        if let Flow::Stop = self.drain() {
            return Flow::Stop;
        }
        if line_no.is_multiple_of(1024) && (self.stopping)() {
            return Flow::Stop;
        }
        Flow::Go
    }

    /// Sends what the assembler released.
    fn drain(&mut self) -> Flow {
        while let Some(tx) = self.asm.pop() {
            self.stats.transactions += 1;
            if !(self.send)(tx) {
                return Flow::Stop;
            }
        }
        Flow::Go
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ChangeKind, Row};

    /// Lines cut by the 1 MiB read buffer, a line longer than the buffer, CRLF, blank lines and
    /// a last line without its newline all come out as the same lines `split` finds.
    #[test]
    fn lines_across_buffer_boundaries() {
        let order = |id: u64| {
            format!(
                r#"{{"before":null,"after":{{"order_id":{id},"order_date":"2024-01-01T00:00:00Z","total_price":"1.50","status":"pending","customer_id":1,"payment_id":null,"shipment_id":null}},"source":{{"table":"orders","txId":{id},"lsn":{id}}},"op":"c"}}"#
            )
        };
        let mut text = String::new();
        let mut ids = Vec::new();
        let mut lines = 0u64;
        let mut long_line = 0;
        for id in 1..=9000u64 {
            ids.push(id);
            text.push_str(&order(id));
            // Vary the line lengths so the buffer's end falls at many offsets within a line.
            text.push_str(&" ".repeat((id % 7) as usize));
            text.push_str(if id % 3 == 0 { "\r\n" } else { "\n" });
            lines += 1;
            if id % 1000 == 0 {
                text.push('\n');
                lines += 1;
            }
            if id == 4000 {
                // Longer than the read buffer: a dead letter on its own line.
                text.push('{');
                text.push_str(&"x".repeat(1_300_000));
                text.push('\n');
                lines += 1;
                long_line = lines;
            }
        }
        ids.push(9001);
        text.push_str(&order(9001));
        lines += 1;
        let path =
            std::env::temp_dir().join(format!("shopstream-lines-{}.jsonl", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        let dl = DeadLetters::in_memory(10);
        let read = read_file_with(&path, &dl, GroupConfig::default());
        let _ = std::fs::remove_file(&path);
        let (txs, stats) = read.unwrap();
        assert_eq!(stats.lines, lines);
        assert_eq!(stats.events, ids.len() as u64);
        assert_eq!(stats.dead_letters, 1);
        let got: Vec<u64> = txs
            .iter()
            .flat_map(|t| &t.changes)
            .map(|c| match &c.kind {
                ChangeKind::Upsert {
                    row: Row::Order(o), ..
                } => o.order_id as u64,
                other => panic!("unexpected change {other:?}"),
            })
            .collect();
        assert_eq!(got, ids);
        let dead = dl.recent(10);
        assert_eq!(dead.len(), 1);
        let at = format!(":{long_line}");
        assert!(dead[0].position.ends_with(&at), "{:?}", dead[0].position);
    }
}
