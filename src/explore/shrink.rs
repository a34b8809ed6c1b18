//! Delta debugging (Zeller's ddmin): the smallest subset of a list for which a
//! test still fails, 1-minimal — removing any one remaining element makes the
//! failure go away.

use std::collections::BTreeMap;

/// A 1-minimal subset of `items` on which `fails` holds (`fails(items)` must
/// hold). Each distinct subset is tested at most once.
pub fn ddmin<T: Clone + Ord>(items: &[T], fails: &mut dyn FnMut(&[T]) -> bool) -> Vec<T> {
    let mut memo: BTreeMap<Vec<T>, bool> = BTreeMap::new();
    let mut test = |set: &[T]| -> bool {
        let key = set.to_vec();
        if let Some(v) = memo.get(&key) {
            return *v;
        }
        let v = fails(set);
        memo.insert(key, v);
        v
    };
    let mut current = items.to_vec();
    if test(&[]) {
        return Vec::new();
    }
    let mut n = 2usize;
    while current.len() >= 2 {
        let chunks = split(&current, n);
        let mut reduced = false;
        for c in &chunks {
            if test(c) {
                current = c.clone();
                n = 2;
                reduced = true;
                break;
            }
        }
        if !reduced && chunks.len() > 2 {
            for i in 0..chunks.len() {
                let comp: Vec<T> = chunks
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, c)| c.iter().cloned())
                    .collect();
                if test(&comp) {
                    current = comp;
                    n = (n - 1).max(2);
                    reduced = true;
                    break;
                }
            }
        }
        if !reduced {
            if n >= current.len() {
                break;
            }
            n = (n * 2).min(current.len());
        }
    }
    // ddmin ends 1-minimal; check it outright (cheap: memoised).
    loop {
        let removable = (0..current.len()).find(|&i| {
            let mut less = current.clone();
            less.remove(i);
            test(&less)
        });
        match removable {
            Some(i) => {
                current.remove(i);
            }
            None => return current,
        }
    }
}

fn split<T: Clone>(items: &[T], n: usize) -> Vec<Vec<T>> {
    let n = n.min(items.len()).max(1);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let end = start + (items.len() - start) / (n - i);
        out.push(items[start..end].to_vec());
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_one_minimal_subset() {
        // Fails when both 3 and 7 are present.
        let items: Vec<u32> = (0..12).collect();
        let mut runs = 0;
        let got = ddmin(&items, &mut |s: &[u32]| {
            runs += 1;
            s.contains(&3) && s.contains(&7)
        });
        assert_eq!(got, vec![3, 7]);
        assert!(runs < 60, "{runs} runs");
    }

    #[test]
    fn keeps_everything_when_everything_is_needed_and_nothing_when_nothing_is() {
        let items = vec![1, 2, 3];
        assert_eq!(ddmin(&items, &mut |s: &[i32]| s.len() == 3), vec![1, 2, 3]);
        assert_eq!(ddmin(&items, &mut |_: &[i32]| true), Vec::<i32>::new());
    }
}
