//! The `landlord` binary: parse arguments, run, exit with the code the CLI chose.

/// mimalloc instead of the system allocator: rendering and planning allocate many small,
/// short-lived values. Measured with `cargo bench --bench plan_scale -- 10000` (50,000
/// resources, 2 cores), system allocator → mimalloc: plan --refresh=false 1.19 s → 0.85 s,
/// no-change plan with refresh 2.04 s → 1.33 s, no-change plan 1.47 s → 1.02 s, retiring
/// every tenant 7.3 s → 5.2 s, audit verify 0.62 s → 0.44 s; peak memory 6-8 % higher
/// (242 → 261 MiB for the plan), and 45 → 85 MiB for a one-tenant plan (arenas reserved up
/// front). Kept: a third less time for a few percent more memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// mimalloc's `mi_option_purge_delay` (the same position in its v2 and v3 option lists).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

fn main() -> std::process::ExitCode {
    // SAFETY: prctl with PR_SET_THP_DISABLE takes no pointers; mimalloc's option calls
    // take plain integers and are safe at any time.
    unsafe {
        // mimalloc asks for transparent huge pages; the kernel then zeroes 2 MiB at every
        // first touch, and a plan's memory is touched sparsely as it grows. Measured on the
        // quick start with 10,000 tenants (`plan --refresh=false`, 2 cores, 6 runs each):
        // with huge pages 1.5 s to 2.4 s (system time 0.2 s to 1.0 s, depending on what
        // the kernel had free), without 1.65 s to 1.8 s (system time 0.2 s to 0.3 s).
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        // Freed memory is kept for reuse rather than handed back to the kernel after a
        // delay and faulted in (and zeroed) again: a run lives seconds, and its peak is
        // what it needs anyway. 100,000 quick-start tenants: 17.2 s → 15.9 s, the
        // system time 5.3 s → 4.0 s, the same peak memory. Only when the option at that
        // position holds a default purge delay of mimalloc (10 ms in v2, 1 s in v3), so
        // another layout is left alone.
        if matches!(mi_option_get(MI_OPTION_PURGE_DELAY), 10 | 1000) {
            mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        }
    }
    std::process::ExitCode::from(landlord::cli::main())
}
