//! File sink: JSONL of every view change, one file per view: `DIR/<view>.jsonl`.
//!
//! Each line is `{"as_of":{…},"op":"+"|"-","row":{…}}` with the row in dump format, in feed
//! order (per engine time: retractions and insertions together). The first snapshot is written
//! as `+` lines, so replaying a file from its first line rebuilds the view. If the sink lags and
//! the store drops it, it re-subscribes and writes `{"as_of":…,"op":"reset"}` to every view file
//! followed by the new snapshot as `+` lines: a reader rebuilding state clears the view on
//! `reset`.
//!
//! Rotation: when writing a line would take `<view>.jsonl` over `max_bytes`, the files shift
//! (`<view>.jsonl.N-1` → `.N`, …, `<view>.jsonl` → `.1`) and at most `max_files` rotated files
//! are kept. Lines are never split across files. Writes are buffered and flushed after every
//! group of batches (and at shutdown).

use crate::{metrics, FeedReader, SinkHandle, Step};
use serde_json::json;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use tokio::sync::watch;
use view_store::{AsOf, ViewName, ViewRow, ViewStore};

const SINK: &str = "file";

#[derive(Debug, thiserror::Error)]
pub enum FileSinkError {
    #[error("creating sink directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Clone, Debug)]
pub struct FileSinkConfig {
    pub dir: PathBuf,
    /// Views to write; `None` = every view.
    pub views: Option<Vec<ViewName>>,
    /// Rotate `<view>.jsonl` before it would exceed this size.
    pub max_bytes: u64,
    /// Keep at most this many rotated files per view (`.1` … `.max_files`).
    pub max_files: u32,
}

impl FileSinkConfig {
    /// Every view, 64 MiB per file, 10 rotated files.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileSinkConfig {
            dir: dir.into(),
            views: None,
            max_bytes: 64 << 20,
            max_files: 10,
        }
    }
}

/// One view's open file.
struct ViewFile {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
}

pub(crate) struct Writer {
    cfg: FileSinkConfig,
    files: HashMap<ViewName, ViewFile>,
}

impl Writer {
    pub(crate) fn new(cfg: FileSinkConfig) -> Self {
        Writer {
            cfg,
            files: HashMap::new(),
        }
    }

    fn wants(&self, view: ViewName) -> bool {
        self.cfg.views.as_ref().is_none_or(|v| v.contains(&view))
    }

    fn open(&mut self, view: ViewName) -> io::Result<&mut ViewFile> {
        if !self.files.contains_key(&view) {
            let path = self.cfg.dir.join(format!("{}.jsonl", view.as_str()));
            let f = OpenOptions::new().create(true).append(true).open(&path)?;
            let size = f.metadata()?.len();
            self.files.insert(
                view,
                ViewFile {
                    path,
                    out: BufWriter::new(f),
                    size,
                },
            );
        }
        self.files
            .get_mut(&view)
            .ok_or_else(|| io::Error::other("view file vanished"))
    }

    fn line(&mut self, view: ViewName, line: &serde_json::Value) -> io::Result<()> {
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let (max_bytes, max_files) = (self.cfg.max_bytes, self.cfg.max_files);
        let f = self.open(view)?;
        if f.size > 0 && f.size + bytes.len() as u64 > max_bytes {
            f.out.flush()?;
            rotate(&f.path, max_files)?;
            let file = OpenOptions::new().create(true).append(true).open(&f.path)?;
            f.out = BufWriter::new(file);
            f.size = 0;
        }
        f.out.write_all(&bytes)?;
        f.size += bytes.len() as u64;
        metrics::messages(SINK, view.as_str()).inc();
        Ok(())
    }

    pub(crate) fn row(
        &mut self,
        as_of: &serde_json::Value,
        row: &ViewRow,
        diff: i64,
    ) -> io::Result<()> {
        let view = row.view();
        if !self.wants(view) {
            return Ok(());
        }
        let op = if diff > 0 { "+" } else { "-" };
        // A multiplicity other than ±1 is written as that many lines, so replay stays exact.
        for _ in 0..diff.unsigned_abs() {
            self.line(
                view,
                &json!({"as_of": as_of, "op": op, "row": row.to_json()}),
            )?;
        }
        Ok(())
    }

    pub(crate) fn reset(&mut self, as_of: &serde_json::Value) -> io::Result<()> {
        for view in ViewName::ALL {
            if self.wants(view) {
                self.line(view, &json!({"as_of": as_of, "op": "reset"}))?;
            }
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        for f in self.files.values_mut() {
            f.out.flush()?;
        }
        Ok(())
    }

    fn step(&mut self, step: &Step) -> io::Result<()> {
        match step {
            Step::Snapshot {
                as_of,
                rows,
                resubscribed,
            } => {
                let a = as_of_json(*as_of);
                if *resubscribed {
                    self.reset(&a)?;
                }
                for r in rows {
                    self.row(&a, r, 1)?;
                }
            }
            Step::Changes(b) => {
                let a = as_of_json(b.as_of);
                for (r, d) in &b.changes {
                    self.row(&a, r, *d)?;
                }
            }
            Step::Stop => {}
        }
        Ok(())
    }
}

fn as_of_json(a: AsOf) -> serde_json::Value {
    a.to_json()
}

/// `path.N-1` → `path.N`, …, `path` → `path.1`, dropping what would exceed `max_files`.
fn rotate(path: &Path, max_files: u32) -> io::Result<()> {
    let name = |i: u32| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{i}"));
        PathBuf::from(p)
    };
    if max_files == 0 {
        return fs::remove_file(path);
    }
    match fs::remove_file(name(max_files)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    for i in (1..max_files).rev() {
        match fs::rename(name(i), name(i + 1)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    fs::rename(path, name(1))
}

pub struct FileSink;

impl FileSink {
    /// Starts the sink on the current tokio runtime. File writes are small buffered appends and
    /// run on the task itself (a slow disk delays only this sink: the store drops it rather than
    /// wait).
    pub fn spawn(cfg: FileSinkConfig, store: ViewStore) -> Result<SinkHandle, FileSinkError> {
        fs::create_dir_all(&cfg.dir).map_err(|source| FileSinkError::Dir {
            path: cfg.dir.clone(),
            source,
        })?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let view = match cfg.views.as_deref() {
            Some([v]) => Some(*v),
            _ => None,
        };
        let mut reader = FeedReader::new(SINK, store, view, stop_rx);
        let task = tokio::spawn(async move {
            let mut w = Writer::new(cfg);
            loop {
                let mut step = Some(reader.next().await);
                let mut done = false;
                while let Some(s) = step.take() {
                    if matches!(s, Step::Stop) {
                        done = true;
                        break;
                    }
                    if let Err(e) = w.step(&s) {
                        metrics::errors(SINK).inc();
                        tracing::error!(error = %e, "file sink write failed");
                    }
                    step = reader.try_next();
                }
                if let Err(e) = w.flush() {
                    metrics::errors(SINK).inc();
                    tracing::error!(error = %e, "file sink flush failed");
                }
                if done {
                    break;
                }
            }
        });
        Ok(SinkHandle::new(SINK, stop_tx, task))
    }
}
