//! The resume record kept next to a partial download (`NAME.part.state`):
//! which bytes of `NAME.part` arrived, for which content (size, checksum, ETag).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{checksum::Checksum, ranges::RangeSet};

const VERSION: u32 = 1;

/// Where the partial file, its record and the finished file live.
#[derive(Clone, Debug)]
pub struct Paths {
    pub part: PathBuf,
    pub state: PathBuf,
    pub done: PathBuf,
}

impl Paths {
    pub fn new(dir: &Path, name: &str) -> Paths {
        Paths {
            part: dir.join(format!("{name}.part")),
            state: dir.join(format!("{name}.part.state")),
            done: dir.join(name),
        }
    }
}

/// What a previous run left: bytes of the `.part` file that arrived whole
/// from the server, for content with this size, checksum and ETag.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResumeState {
    pub version: u32,
    pub size: u64,
    pub checksum: Checksum,
    /// The ETag the data plane sent; later ranges carry it in `If-Range`.
    pub etag: Option<String>,
    /// Byte ranges `[start, end)` written to the `.part` file.
    pub have: Vec<(u64, u64)>,
}

impl ResumeState {
    pub fn new(size: u64, checksum: Checksum, etag: Option<String>, have: &RangeSet) -> Self {
        ResumeState {
            version: VERSION,
            size,
            checksum,
            etag,
            have: have.ranges().to_vec(),
        }
    }

    /// The record for this content, if a usable one exists: same version,
    /// size and checksum, and a `.part` file of the full size beside it.
    pub fn load(paths: &Paths, size: u64, checksum: &Checksum) -> Option<ResumeState> {
        let text = std::fs::read(&paths.state).ok()?;
        let state: ResumeState = serde_json::from_slice(&text).ok()?;
        let part_len = std::fs::metadata(&paths.part).ok()?.len();
        let fits = state.have.iter().all(|(s, e)| s < e && *e <= size);
        (state.version == VERSION
            && state.size == size
            && &state.checksum == checksum
            && part_len == size
            && fits)
            .then_some(state)
    }

    /// Writes the record atomically (temporary file, then rename).
    pub fn save(&self, paths: &Paths) -> std::io::Result<()> {
        let tmp = paths.state.with_extension("state.tmp");
        let body = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, &paths.state)
    }

    pub fn have(&self) -> RangeSet {
        RangeSet::from_ranges(self.have.iter().copied())
    }
}

/// Removes the partial file and its record (missing ones are fine).
pub fn discard(paths: &Paths) -> std::io::Result<()> {
    for p in [&paths.state, &paths.part] {
        match std::fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::transfer::checksum::Algorithm;

    #[test]
    fn saved_state_loads_only_for_the_same_content() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path(), "disk.vmdk");
        let sum = Checksum {
            algorithm: Algorithm::Sha256,
            hex: "ab".repeat(32),
        };
        let have = RangeSet::from_ranges([(0, 10), (20, 30)]);
        let state = ResumeState::new(100, sum.clone(), Some("\"x\"".into()), &have);
        state.save(&paths).unwrap();
        // No .part of the right size yet.
        assert!(ResumeState::load(&paths, 100, &sum).is_none());
        std::fs::File::create(&paths.part)
            .unwrap()
            .set_len(100)
            .unwrap();
        assert_eq!(ResumeState::load(&paths, 100, &sum), Some(state.clone()));
        assert_eq!(ResumeState::load(&paths, 100, &sum).unwrap().have(), have);
        let other = Checksum {
            algorithm: Algorithm::Sha256,
            hex: "cd".repeat(32),
        };
        assert!(ResumeState::load(&paths, 100, &other).is_none());
        assert!(ResumeState::load(&paths, 101, &sum).is_none());
        std::fs::write(&paths.state, b"{not json").unwrap();
        assert!(ResumeState::load(&paths, 100, &sum).is_none());
        discard(&paths).unwrap();
        assert!(!paths.part.exists() && !paths.state.exists());
        discard(&paths).unwrap();
    }
}
