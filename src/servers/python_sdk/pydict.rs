//! A Python `dict` with string keys: insertion-ordered, so that loops over it
//! (cleanup, termination) visit entries in the order Python would.

/// An insertion-ordered map.
#[derive(Debug, Clone)]
pub struct PyDict<V> {
    entries: Vec<(String, V)>,
}

impl<V> Default for PyDict<V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<V: Clone> PyDict<V> {
    /// `d[key]` (cloned) or `None`.
    pub fn get(&self, key: &str) -> Option<V> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// `key in d`.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// `d[key] = value` (an existing key keeps its position).
    pub fn insert(&mut self, key: String, value: V) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.entries.push((key, value)),
        }
    }

    /// `d.pop(key, None)`.
    pub fn pop(&mut self, key: &str) -> Option<V> {
        let pos = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(pos).1)
    }

    /// `list(d.keys())`.
    pub fn keys(&self) -> Vec<String> {
        self.entries.iter().map(|(k, _)| k.clone()).collect()
    }

    /// `len(d)`.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `d.clear()`.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
