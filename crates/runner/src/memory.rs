//! How much memory this process may still take: the least of the machine's available
//! memory, the cgroup's remaining allowance and the address-space limit. Used to refuse,
//! before any work, settings whose allocations could not succeed (libtorch aborts the
//! process on a failed allocation, with no record and no message of ours).

use std::fs;

/// Bytes this process can still allocate, as far as the system tells; `None` when it tells
/// nothing.
pub fn available_bytes() -> Option<u64> {
    [mem_available(), cgroup_headroom(), address_space_headroom()]
        .into_iter()
        .flatten()
        .min()
}

/// `MemAvailable` of `/proc/meminfo`.
fn mem_available() -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    kib_field(&text, "MemAvailable:")
}

fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// `memory.max - memory.current` of this process's cgroup (v2), when it has a limit.
fn cgroup_headroom() -> Option<u64> {
    let cgroup = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = std::path::Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
    let max: u64 = fs::read_to_string(dir.join("memory.max"))
        .ok()?
        .trim()
        .parse()
        .ok()?; // "max": no limit
    let current: u64 = fs::read_to_string(dir.join("memory.current"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(max.saturating_sub(current))
}

/// `RLIMIT_AS` (`ulimit -v`) minus the address space already mapped.
fn address_space_headroom() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } != 0
        || lim.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let mapped = kib_field(&status, "VmSize:").unwrap_or(0);
    Some(lim.rlim_cur.saturating_sub(mapped))
}

/// Bytes as a short human figure.
pub fn human(bytes: f64) -> String {
    let gb = bytes / 1e9;
    if gb >= 1000.0 {
        format!("{:.1} TB", gb / 1000.0)
    } else if gb >= 1.0 {
        format!("{gb:.1} GB")
    } else {
        format!("{:.0} MB", bytes / 1e6)
    }
}

/// Makes glibc's malloc keep large freed blocks for reuse instead of handing them back to
/// the kernel, unless `ADN_MALLOC=system`, or the user tuned glibc's allocator themselves
/// (`GLIBC_TUNABLES=glibc.malloc.*` or a `MALLOC_*` variable for these settings). Returns
/// whether it did.
///
/// Why: libtorch allocates every activation and gradient with malloc, and glibc serves each
/// block over 32 MB from fresh `mmap`ed pages that it unmaps on free, so the kernel
/// zero-fills them again at the next step. Measured on 2 cores: a fifth of a 448-px
/// extraction went to page faults, and the bf16 flow step ran 1.25 × faster without them.
/// One arena for all threads, because glibc's per-thread arenas map every large block
/// afresh whatever the limit says (the loader thread's chunk buffers would still fault).
/// The cost is resident memory: the high-water mark stays mapped (a few hundred MB more).
pub fn keep_freed_memory() -> bool {
    const GLIBC_SETTINGS: [&str; 6] = [
        "MALLOC_MMAP_MAX_",
        "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_TRIM_THRESHOLD_",
        "MALLOC_TOP_PAD_",
        "MALLOC_ARENA_MAX",
        "MALLOC_ARENA_TEST",
    ];
    let user_set = std::env::var("ADN_MALLOC").is_ok_and(|v| v == "system")
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|v| v.contains("glibc.malloc."))
        || GLIBC_SETTINGS.iter().any(|k| std::env::var_os(k).is_some());
    if user_set {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // Every setting is applied even if one is refused.
        // SAFETY: mallopt only changes the allocator's parameters; blocks already handed
        // out stay valid.
        unsafe {
            let settings = [
                (libc::M_MMAP_MAX, 0),
                (libc::M_TRIM_THRESHOLD, i32::MAX),
                (libc::M_ARENA_MAX, 1),
            ];
            settings.map(|(what, value)| libc::mallopt(what, value) == 1) == [true; 3]
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_fields_parse() {
        let text = "MemTotal:       24000000 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(kib_field(text, "MemAvailable:"), Some(20_000_000 * 1024));
        assert_eq!(kib_field(text, "Nothing:"), None);
        assert!(available_bytes().is_some_and(|b| b > 0));
        assert_eq!(human(2.9e12), "2.9 TB");
        assert_eq!(human(1.5e9), "1.5 GB");
    }
}
