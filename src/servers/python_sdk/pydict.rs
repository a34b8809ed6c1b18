//! A Python `dict` with string keys: insertion-ordered, so that loops over it
//! (cleanup, termination) visit entries in the order Python would.
//!
//! Lookups are O(log n), as a hashed dict's are O(1): 1.20's session manager
//! keeps every terminated session in its dict, and a linear scan per request
//! made a long `mcpsim serve` of that release slow down with every session
//! it had ever served (`mcpsim bench --serve --server python-sdk-1.20`).

use std::collections::BTreeMap;

/// An insertion-ordered map.
#[derive(Debug, Clone)]
pub struct PyDict<V> {
    /// key → (insertion number, value).
    by_key: BTreeMap<String, (u64, V)>,
    /// insertion number → key: the iteration order.
    order: BTreeMap<u64, String>,
    next: u64,
}

impl<V> Default for PyDict<V> {
    fn default() -> Self {
        Self {
            by_key: BTreeMap::new(),
            order: BTreeMap::new(),
            next: 0,
        }
    }
}

impl<V: Clone> PyDict<V> {
    /// `d[key]` (cloned) or `None`.
    pub fn get(&self, key: &str) -> Option<V> {
        self.by_key.get(key).map(|(_, v)| v.clone())
    }

    /// `key in d`.
    pub fn contains(&self, key: &str) -> bool {
        self.by_key.contains_key(key)
    }

    /// `d[key] = value` (an existing key keeps its position).
    pub fn insert(&mut self, key: String, value: V) {
        if let Some((_, v)) = self.by_key.get_mut(&key) {
            *v = value;
            return;
        }
        let n = self.next;
        self.next += 1;
        self.order.insert(n, key.clone());
        self.by_key.insert(key, (n, value));
    }

    /// `d.pop(key, None)`.
    pub fn pop(&mut self, key: &str) -> Option<V> {
        let (n, v) = self.by_key.remove(key)?;
        self.order.remove(&n);
        Some(v)
    }

    /// `list(d.keys())`.
    pub fn keys(&self) -> Vec<String> {
        self.order.values().cloned().collect()
    }

    /// `len(d)`.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// `d.clear()`.
    pub fn clear(&mut self) {
        self.by_key.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::PyDict;

    #[test]
    fn keeps_insertion_order_through_updates_and_pops() {
        let mut d = PyDict::default();
        for k in ["b", "a", "c"] {
            d.insert(k.to_string(), k.len());
        }
        d.insert("a".into(), 7);
        assert_eq!(d.keys(), ["b", "a", "c"]);
        assert_eq!(d.get("a"), Some(7));
        assert_eq!(d.pop("b"), Some(1));
        d.insert("b".into(), 2);
        assert_eq!(d.keys(), ["a", "c", "b"]);
        assert!(d.contains("c") && !d.contains("z"));
        assert_eq!(d.len(), 3);
        d.clear();
        assert_eq!(d.len(), 0);
        assert!(d.keys().is_empty());
    }
}
