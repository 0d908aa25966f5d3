//! Visiting items in the order of a `std::multimap` keyed by name, as 3.2 stored attributes:
//! sorted by key in byte order, equal keys in insertion order.

/// Most templates and vectors are smaller than this; their order is computed in a stack array.
const STACK_LIMIT: usize = 64;

/// Calls `visit` on every item, sorted by `key` (stable). No heap allocation for up to
/// [`STACK_LIMIT`] items; larger inputs sort an index vector instead.
pub(super) fn for_each_sorted<'a, T>(
    items: &'a [T],
    key: impl Fn(&'a T) -> &'a str,
    mut visit: impl FnMut(&'a T),
) {
    if items.len() <= STACK_LIMIT {
        let mut buffer = [0usize; STACK_LIMIT];
        let order = &mut buffer[..items.len()];
        for (slot, index) in order.iter_mut().zip(0..) {
            *slot = index;
        }
        // Insertion sort: stable, and the fastest choice for a few dozen items.
        for unsorted in 1..order.len() {
            let mut j = unsorted;
            while j > 0 && key(&items[order[j - 1]]) > key(&items[order[j]]) {
                order.swap(j - 1, j);
                j -= 1;
            }
        }
        for &index in order.iter() {
            visit(&items[index]);
        }
    } else {
        let mut order: Vec<&'a T> = items.iter().collect();
        order.sort_by(|a, b| key(a).cmp(key(b)));
        for item in order {
            visit(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted_by_helper(items: &[(String, usize)]) -> Vec<usize> {
        let mut seen = Vec::new();
        for_each_sorted(items, |(k, _)| k.as_str(), |(_, n)| seen.push(*n));
        seen
    }

    fn sorted_by_std(items: &[(String, usize)]) -> Vec<usize> {
        let mut copy = items.to_vec();
        copy.sort_by(|a, b| a.0.cmp(&b.0));
        copy.into_iter().map(|(_, n)| n).collect()
    }

    #[test]
    fn matches_a_stable_sort_below_and_above_the_stack_limit() {
        for len in [0, 1, 2, 5, STACK_LIMIT, STACK_LIMIT + 1, 200] {
            let items: Vec<(String, usize)> = (0..len)
                .map(|n| (format!("K{}", (n * 7919) % 13), n))
                .collect();
            assert_eq!(sorted_by_helper(&items), sorted_by_std(&items), "len {len}");
        }
    }
}
