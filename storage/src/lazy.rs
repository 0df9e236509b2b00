//! [`LazyMap`]: a read-only file mapped at its first use, for files an open only names (a
//! sealed segment, a segment index) and most processes never read.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::{ReadOnlyBytes, Storage};

/// Bytes of a read-only file, mapped at the first [`LazyMap::get_with`], or given at once.
#[derive(Clone)]
pub struct LazyMap {
    bytes: OnceLock<ReadOnlyBytes>,
    /// Where to map them from; `None` for bytes given at once.
    source: Option<(Arc<dyn Storage>, PathBuf)>,
}

impl LazyMap {
    /// The file at `path`, mapped at its first use.
    #[must_use]
    pub fn new(storage: Arc<dyn Storage>, path: PathBuf) -> LazyMap {
        LazyMap {
            bytes: OnceLock::new(),
            source: Some((storage, path)),
        }
    }

    /// Bytes already in hand.
    #[must_use]
    pub fn ready(bytes: ReadOnlyBytes) -> LazyMap {
        let map = LazyMap {
            bytes: OnceLock::new(),
            source: None,
        };
        let _ = map.bytes.set(bytes);
        map
    }

    /// The bytes, if they are mapped (or were given).
    #[must_use]
    pub fn get(&self) -> Option<&ReadOnlyBytes> {
        self.bytes.get()
    }

    /// The bytes, mapping the file now if it is not yet; `prepare` sees a new map before it
    /// is kept (to advise it, or to check it: its error is returned and the map dropped). Two
    /// first uses at once may both map the file: one map is kept, the other dropped.
    ///
    /// # Errors
    /// The map's I/O error, or `prepare`'s.
    pub fn get_with(
        &self,
        prepare: impl FnOnce(&ReadOnlyBytes) -> io::Result<()>,
    ) -> io::Result<&ReadOnlyBytes> {
        if let Some(bytes) = self.bytes.get() {
            return Ok(bytes);
        }
        let Some((storage, path)) = &self.source else {
            return Err(io::Error::other("no bytes and no file to map"));
        };
        let bytes = storage.map_readonly(path)?;
        prepare(&bytes)?;
        Ok(self.bytes.get_or_init(|| bytes))
    }
}

impl fmt::Debug for LazyMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyMap")
            .field("path", &self.source.as_ref().map(|(_, path)| path))
            .field("mapped", &self.bytes.get().is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimStorage;
    use std::path::Path;

    #[test]
    fn a_file_is_mapped_at_its_first_use_and_a_refused_map_is_not_kept() {
        let storage: Arc<dyn Storage> = Arc::new(SimStorage::new());
        storage.create_dir_all(Path::new("/d")).expect("mkdir");
        let path = PathBuf::from("/d/f");
        let map = LazyMap::new(storage.clone(), path.clone());
        assert!(map.get_with(|_| Ok(())).is_err(), "no file yet");
        let file = storage.create(&path).expect("create");
        file.write_all_at(b"bytes", 0).expect("write");
        assert!(map.get().is_none(), "not mapped before its first use");
        let refused = map.get_with(|_| Err(io::Error::other("refused")));
        assert!(refused.is_err());
        assert!(map.get().is_none(), "a refused map is not kept");
        let bytes = map.get_with(|_| Ok(())).expect("mapped");
        assert_eq!(&bytes[..], b"bytes");
        assert!(map.get().is_some());
        let ready = LazyMap::ready(ReadOnlyBytes::new(b"given".to_vec()));
        assert_eq!(
            &ready
                .get_with(|_| unreachable!("mapped already"))
                .expect("given")[..],
            b"given"
        );
    }
}
