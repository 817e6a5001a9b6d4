//! `engine replay FILE --dump DIR`: the final contents of every view as sorted JSON files in
//! the dump format of SPEC §7 (`DIR/<view>.json`, one JSON array per view, one row per line).
//!
//! The store keeps rows in their dump order already (`Ord` of each row type is the §7 sort
//! order), so dumping is a straight walk. Files are written to a temporary name and renamed,
//! so a reader never sees a half-written dump.

use std::io::Write;
use std::path::Path;
use view_store::{ViewName, ViewStore};

/// Writes `DIR/<view>.json` for every view; returns the row count per view.
pub fn write_dump(store: &ViewStore, dir: &Path) -> anyhow::Result<Vec<(ViewName, usize)>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("creating dump directory {}: {e}", dir.display()))?;
    let mut counts = Vec::new();
    for view in ViewName::ALL {
        let (_, rows) = store.snapshot(view);
        let path = dir.join(format!("{}.json", view.as_str()));
        let tmp = dir.join(format!(".{}.json.tmp", view.as_str()));
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&tmp)
                .map_err(|e| anyhow::anyhow!("creating {}: {e}", tmp.display()))?,
        );
        out.write_all(b"[")?;
        for (i, row) in rows.iter().enumerate() {
            out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            serde_json::to_writer(&mut out, &row.to_json())?;
        }
        out.write_all(b"\n]\n")?;
        out.into_inner()
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?
            .sync_all()?;
        std::fs::rename(&tmp, &path)
            .map_err(|e| anyhow::anyhow!("renaming to {}: {e}", path.display()))?;
        counts.push((view, rows.len()));
    }
    Ok(counts)
}
