//! Independent work over a fleet, split over the cores in consecutive parts whose results
//! come back in order, so the outcome is the one a single pass gives.

/// From how many items the work is split (below, threads cost more than they save).
pub const PARALLEL_FROM: usize = 64;

/// `f` applied to consecutive parts of `items`, one part per core when there are at
/// least [`PARALLEL_FROM`] items; the results in the parts' order. A panic in a part is
/// raised again here.
pub fn parts<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || items.len() < PARALLEL_FROM {
        return vec![f(items)];
    }
    let size = items.len().div_ceil(cores);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(size)
            .map(|part| s.spawn(move || f(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// `f` applied to every item, spread as [`parts`] does; the results in item order.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    parts(items, |part| part.iter().map(&f).collect::<Vec<R>>())
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_the_order_of_the_items() {
        let items: Vec<u32> = (0..1000).collect();
        assert_eq!(
            super::map(&items, |i| i * 2),
            (0..1000).map(|i| i * 2).collect::<Vec<_>>()
        );
        assert_eq!(super::map(&items[..3], |i| i + 1), [1, 2, 3]);
        let sums: u32 = super::parts(&items, |p| p.iter().sum::<u32>())
            .into_iter()
            .sum();
        assert_eq!(sums, items.iter().sum::<u32>());
    }
}
