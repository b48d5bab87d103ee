//! Host-side bookkeeping of the GPU layer (no GPU needed, tested on every machine): plan caches
//! keyed by shape, and device-memory accounting.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// A cache of plans (cuFFT plans, compiled modules) keyed by shape: each key is built once and
/// shared afterwards.
pub struct PlanCache<K, V> {
    map: Mutex<HashMap<K, Arc<V>>>,
}

impl<K: Eq + Hash + Clone, V> Default for PlanCache<K, V> {
    fn default() -> Self {
        PlanCache {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V> PlanCache<K, V> {
    /// The plan for `key`, built by `make` on first use. A failed build is not cached.
    pub fn get_or_try<E>(&self, key: &K, make: impl FnOnce() -> Result<V, E>) -> Result<Arc<V>, E> {
        let mut map = self.lock();
        if let Some(v) = map.get(key) {
            return Ok(v.clone());
        }
        let v = Arc::new(make()?);
        map.insert(key.clone(), v.clone());
        Ok(v)
    }
    /// The map, also after a panic elsewhere while it was locked (a test that failed while
    /// building a plan): an entry is inserted only once built, so the map is never half-written,
    /// and one failed test must not fail every later user of a process-wide cache.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Arc<V>>> {
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
    /// Number of cached plans.
    pub fn len(&self) -> usize {
        self.lock().len()
    }
    /// Whether no plan is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Bytes of live device allocations and their peak, as the trainer reports them.
#[derive(Debug, Default)]
pub struct MemTracker {
    live: usize,
    peak: usize,
    /// Bytes of every allocation ever recorded.
    allocated: u64,
}

impl MemTracker {
    /// Record an allocation of `bytes`.
    pub fn alloc(&mut self, bytes: usize) {
        self.live += bytes;
        self.peak = self.peak.max(self.live);
        self.allocated += bytes as u64;
    }
    /// Record a release of `bytes` (panics if more is released than is live: a bookkeeping bug).
    pub fn free(&mut self, bytes: usize) {
        self.live = self
            .live
            .checked_sub(bytes)
            .expect("MemTracker: freed more bytes than are live");
    }
    /// Live bytes now.
    pub fn live(&self) -> usize {
        self.live
    }
    /// Highest live byte count seen.
    pub fn peak(&self) -> usize {
        self.peak
    }
    /// Bytes of every allocation recorded so far, freed or not.
    pub fn allocated(&self) -> u64 {
        self.allocated
    }
    /// Start a new peak measurement from the current live bytes.
    pub fn reset_peak(&mut self) {
        self.peak = self.live;
    }
}
