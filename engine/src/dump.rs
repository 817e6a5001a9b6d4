//! `engine replay FILE --dump DIR`: the final contents of every view as sorted JSON files in
//! the dump format of SPEC §7 (`DIR/<view>.json`, one JSON array per view, one row per line).
//!
//! The store keeps rows in their dump order already (`Ord` of each row type is the §7 sort
//! order), so dumping is a straight walk. `recommendations` is computed at read time: its file
//! is every customer with any interaction in id order, each with their first K recommendations
//! in rank order, computed one customer at a time from one consistent store state (never all
//! lists in memory at once). Files are written to a temporary name and renamed, so a reader
//! never sees a half-written dump.

use std::io::Write;
use std::path::Path;
use view_store::{ViewName, ViewRow, ViewStore};

type Out = std::io::BufWriter<std::fs::File>;

/// Writes `DIR/<view>.json` for every view; returns the row count per view.
pub fn write_dump(store: &ViewStore, dir: &Path) -> anyhow::Result<Vec<(ViewName, usize)>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("creating dump directory {}: {e}", dir.display()))?;
    let mut counts = Vec::new();
    for view in ViewName::ALL {
        let n = write_file(dir, view, |out| {
            if view == ViewName::Recommendations {
                return store.with_recommender(|_, r| {
                    let mut n = 0;
                    for c in r.customers() {
                        for row in r.recommend(c, r.k()) {
                            write_row(out, n, &ViewRow::Recommendation(row))?;
                            n += 1;
                        }
                    }
                    Ok(n)
                });
            }
            let (_, rows) = store.snapshot(view);
            for (i, row) in rows.iter().enumerate() {
                write_row(out, i, row)?;
            }
            Ok(rows.len())
        })?;
        counts.push((view, n));
    }
    Ok(counts)
}

/// The `i`-th row of a file (0-based): a separator, then the row.
fn write_row(out: &mut Out, i: usize, row: &ViewRow) -> anyhow::Result<()> {
    out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
    serde_json::to_writer(&mut *out, &row.to_json())?;
    Ok(())
}

/// Writes one view's file with `rows` (which returns how many it wrote), atomically.
fn write_file(
    dir: &Path,
    view: ViewName,
    rows: impl FnOnce(&mut Out) -> anyhow::Result<usize>,
) -> anyhow::Result<usize> {
    let path = dir.join(format!("{}.json", view.as_str()));
    let tmp = dir.join(format!(".{}.json.tmp", view.as_str()));
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&tmp)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", tmp.display()))?,
    );
    out.write_all(b"[")?;
    let n = rows(&mut out)?;
    out.write_all(b"\n]\n")?;
    out.into_inner()
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?
        .sync_all()?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| anyhow::anyhow!("renaming to {}: {e}", path.display()))?;
    Ok(n)
}
