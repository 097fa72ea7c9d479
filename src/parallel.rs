//! Independent work over a fleet, split over the cores in consecutive parts whose results
//! come back in order, so the outcome is the one a single pass gives.

/// From how many items the work is split (below, threads cost more than they save).
pub const PARALLEL_FROM: usize = 64;

/// How many items go in each part: `None` to do the work in one piece.
fn part_size(len: usize) -> Option<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores > 1 && len >= PARALLEL_FROM).then(|| len.div_ceil(cores))
}

/// `f` on every part at once, one thread each; the results in the parts' order. A panic
/// in a part is raised again here.
fn run<P: Send, R: Send>(parts: impl Iterator<Item = P>, f: &(impl Fn(P) -> R + Sync)) -> Vec<R> {
    std::thread::scope(|s| {
        let handles: Vec<_> = parts.map(|part| s.spawn(move || f(part))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// `f` applied to consecutive parts of `items`, one part per core when there are at
/// least [`PARALLEL_FROM`] items; the results in the parts' order.
pub fn parts<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    match part_size(items.len()) {
        Some(size) => run(items.chunks(size), &f),
        None => vec![f(items)],
    }
}

/// [`parts`] over items that `f` may change.
pub fn parts_mut<T: Send, R: Send>(items: &mut [T], f: impl Fn(&mut [T]) -> R + Sync) -> Vec<R> {
    match part_size(items.len()) {
        Some(size) => run(items.chunks_mut(size), &f),
        None => vec![f(items)],
    }
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
