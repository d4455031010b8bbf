//! Sampling the process's threads by the CPU time each one uses: the profiler's system
//! interface (timers, signals, the sample table's mapping, unwinding), the one file of the
//! admin layer where `unsafe` is allowed.
//!
//! Every thread gets its own POSIX timer on its own CPU-time clock (`timer_create` on the
//! thread's `CLOCK_THREAD_CPUTIME_ID`-class clock, `SIGEV_THREAD_ID`: Go's design since 1.18),
//! so a thread is interrupted by `SIGPROF` after each period of CPU it used, wherever it
//! used it, and the signal lands on that very thread. A signal that arrives late says how
//! many periods it stands for (`si_overrun`), so no CPU time goes uncounted.
//!
//! The handler unwinds the interrupted thread (libgcc's unwinder, through the signal frame)
//! and counts the stack in a fixed table mapped at start: no allocation, no lock, only
//! atomics, so it is async-signal-safe and any number of threads may be in it at once. The
//! stack of a thread interrupted inside the unwinder or the dynamic loader is not unwound
//! (nor inside glibc before 2.35, whose unwinder support takes a lock): such a sample keeps
//! its one address, and is counted all the same.

use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Frames kept of a stack, innermost first (a deeper stack loses its outermost frames).
pub(super) const MAX_FRAMES: usize = 64;
/// Distinct (thread, stack) pairs a profile holds; more are counted without their stack.
const SLOTS: usize = 4096;
/// Slots tried for a stack before it counts as an overflow.
const PROBES: usize = 32;
/// Words per slot: key, count, thread id, depth, then the frames.
const SLOT_WORDS: usize = 4 + MAX_FRAMES;
/// Frames above the interrupted one (the handler's own, the signal trampoline) skipped at
/// most while looking for the interrupted address.
const MAX_SKIP: usize = 32;
/// A slot's key while its first writer fills it.
const FILLING: u64 = 1;

/// The table of the profile running, for the signal handler; null when none runs.
static TABLE: AtomicPtr<Table> = AtomicPtr::new(null_mut());
/// Handlers running right now (the table is freed only when none is).
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// The handler's data: counters and the mapped slot array.
struct Table {
    words: *const AtomicU64,
    bytes: usize,
    /// Samples whose stack found no slot (counted, stack lost).
    overflow: AtomicU64,
    /// Signals handled (a signal counts `1 + si_overrun` samples).
    signals: AtomicU64,
    /// Address ranges not to unwind from.
    leaf_only: Vec<(usize, usize)>,
}

// The words are atomics in memory this table owns.
unsafe impl Send for Table {}
unsafe impl Sync for Table {}

impl Table {
    fn new(leaf_only: Vec<(usize, usize)>) -> Result<Table, String> {
        let bytes = SLOTS * SLOT_WORDS * std::mem::size_of::<AtomicU64>();
        // Fresh anonymous pages read as zero (every slot empty) and are only made resident
        // as stacks fill them; unmapping gives them back at the end.
        let words = unsafe {
            libc::mmap(
                null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if words == libc::MAP_FAILED {
            return Err(format!(
                "cannot map the profile's table: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(Table {
            words: words as *const AtomicU64,
            bytes,
            overflow: AtomicU64::new(0),
            signals: AtomicU64::new(0),
            leaf_only,
        })
    }

    fn word(&self, index: usize) -> &AtomicU64 {
        debug_assert!(index < SLOTS * SLOT_WORDS);
        // In bounds of the mapping, which lives as long as `self`.
        unsafe { &*self.words.add(index) }
    }

    /// One sample from the signal handler: async-signal-safe.
    fn record(&self, info: *const libc::siginfo_t, context: *const c_void) {
        let count = 1 + overrun(info);
        self.signals.fetch_add(1, Ordering::Relaxed);
        let pc = interrupted_pc(context);
        let mut frames = [0u64; MAX_FRAMES];
        let mut depth = 0;
        if pc != 0 && !self.leaf_only.iter().any(|&(lo, hi)| pc >= lo && pc < hi) {
            let mut skipped = 0;
            let mut found = false;
            unsafe {
                backtrace::trace_unsynchronized(|frame| {
                    let ip = frame.ip() as usize;
                    if ip == 0 {
                        // The end of the stack.
                        return false;
                    }
                    if !found {
                        if ip != pc {
                            skipped += 1;
                            return skipped < MAX_SKIP;
                        }
                        found = true;
                    }
                    frames[depth] = ip as u64;
                    depth += 1;
                    depth < MAX_FRAMES
                });
            }
        }
        if depth == 0 {
            // Not unwound (or the unwinder could not pass the signal frame): the address.
            frames[0] = pc as u64;
            depth = 1;
        }
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u64;
        self.add(tid, &frames[..depth], count);
    }

    fn add(&self, tid: u64, frames: &[u64], count: u64) {
        let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ tid;
        for &frame in frames {
            hash = (hash ^ frame).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let key = hash | 2; // never 0 (empty) nor FILLING
        for probe in 0..PROBES {
            let base = ((hash as usize).wrapping_add(probe) % SLOTS) * SLOT_WORDS;
            let mut current = self.word(base).load(Ordering::Acquire);
            if current == 0 {
                match self.word(base).compare_exchange(
                    0,
                    FILLING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        self.word(base + 2).store(tid, Ordering::Relaxed);
                        self.word(base + 3)
                            .store(frames.len() as u64, Ordering::Relaxed);
                        for (i, &frame) in frames.iter().enumerate() {
                            self.word(base + 4 + i).store(frame, Ordering::Relaxed);
                        }
                        self.word(base + 1).store(count, Ordering::Relaxed);
                        self.word(base).store(key, Ordering::Release);
                        return;
                    }
                    Err(now) => current = now,
                }
            }
            if current == key && self.holds(base, tid, frames) {
                self.word(base + 1).fetch_add(count, Ordering::Relaxed);
                return;
            }
            // Another stack, or one being filled (the same stack may then get two slots;
            // the report adds them up).
        }
        self.overflow.fetch_add(count, Ordering::Relaxed);
    }

    fn holds(&self, base: usize, tid: u64, frames: &[u64]) -> bool {
        self.word(base + 2).load(Ordering::Relaxed) == tid
            && self.word(base + 3).load(Ordering::Relaxed) == frames.len() as u64
            && frames
                .iter()
                .enumerate()
                .all(|(i, &frame)| self.word(base + 4 + i).load(Ordering::Relaxed) == frame)
    }

    /// The stacks counted (read once no handler runs).
    fn stacks(&self) -> Vec<Stack> {
        let mut stacks = Vec::new();
        for slot in 0..SLOTS {
            let base = slot * SLOT_WORDS;
            if self.word(base).load(Ordering::Acquire) <= FILLING {
                continue;
            }
            let depth = (self.word(base + 3).load(Ordering::Relaxed) as usize).min(MAX_FRAMES);
            stacks.push(Stack {
                tid: self.word(base + 2).load(Ordering::Relaxed) as i32,
                frames: (0..depth)
                    .map(|i| self.word(base + 4 + i).load(Ordering::Relaxed))
                    .collect(),
                count: self.word(base + 1).load(Ordering::Relaxed),
            });
        }
        stacks
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        unsafe { libc::munmap(self.words as *mut c_void, self.bytes) };
    }
}

/// The first fields of a `siginfo_t` from a POSIX timer (the kernel's `_timer` member).
#[repr(C)]
struct TimerSiginfo {
    signo: c_int,
    errno: c_int,
    code: c_int,
    timer: TimerFields,
}

#[repr(C)]
struct TimerFields {
    tid: c_int,
    overrun: c_int,
    value: *mut c_void,
}

/// Expirations a timer's signal stands for beyond the first (it was pending meanwhile).
fn overrun(info: *const libc::siginfo_t) -> u64 {
    if info.is_null() {
        return 0;
    }
    let info = info as *const TimerSiginfo;
    unsafe {
        if (*info).code != libc::SI_TIMER {
            return 0;
        }
        u64::try_from((*info).timer.overrun).unwrap_or(0)
    }
}

/// The instruction address the signal interrupted.
fn interrupted_pc(context: *const c_void) -> usize {
    if context.is_null() {
        return 0;
    }
    let context = context as *const libc::ucontext_t;
    #[cfg(target_arch = "x86_64")]
    return unsafe { (*context).uc_mcontext.gregs[libc::REG_RIP as usize] as usize };
    #[cfg(target_arch = "aarch64")]
    return unsafe { (*context).uc_mcontext.pc as usize };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = context;
        0
    }
}

extern "C" fn on_sigprof(_: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    let errno = unsafe { *libc::__errno_location() };
    IN_HANDLER.fetch_add(1, Ordering::SeqCst);
    let table = TABLE.load(Ordering::SeqCst);
    if !table.is_null() {
        // Freed only after TABLE is null and IN_HANDLER has drained to 0.
        unsafe { (*table).record(info, context) };
    }
    IN_HANDLER.fetch_sub(1, Ordering::SeqCst);
    unsafe { *libc::__errno_location() = errno };
}

/// One stack and how many samples it got.
pub(super) struct Stack {
    pub(super) tid: i32,
    /// Innermost first: the interrupted address, then return addresses.
    pub(super) frames: Vec<u64>,
    pub(super) count: u64,
}

/// What a profile collected, for the report.
pub(super) struct Collected {
    pub(super) stacks: Vec<Stack>,
    /// Thread names by thread id.
    pub(super) threads: HashMap<i32, String>,
    /// Samples counted without a stack (the table was full).
    pub(super) overflow: u64,
    pub(super) signals: u64,
    pub(super) frequency: u32,
    pub(super) started: SystemTime,
    pub(super) duration: Duration,
}

impl Collected {
    /// Samples taken, each one period of some thread's CPU time.
    pub(super) fn samples(&self) -> u64 {
        self.stacks.iter().map(|stack| stack.count).sum::<u64>() + self.overflow
    }

    pub(super) fn period(&self) -> Duration {
        Duration::from_nanos(1_000_000_000 / u64::from(self.frequency.max(1)))
    }
}

/// A profile being collected: the handler installed, one timer per thread.
pub(super) struct Sampler {
    table: *mut Table,
    timers: HashMap<i32, libc::timer_t>,
    threads: HashMap<i32, String>,
    period: libc::timespec,
    frequency: u32,
    started: SystemTime,
    started_at: Instant,
}

// The timers are process-wide handles; the table pointer is ours.
unsafe impl Send for Sampler {}

impl Sampler {
    /// Installs the handler and arms a timer on every thread of the process.
    pub(super) fn start(frequency: u32) -> Result<Sampler, String> {
        let frequency = frequency.max(1);
        if !TABLE.load(Ordering::SeqCst).is_null() {
            return Err("a sampler is already running".to_string());
        }
        // Bind the unwinder's and gettid's symbols now: lazy binding must not happen in the
        // handler.
        backtrace::trace(|_| true);
        let _ = unsafe { libc::syscall(libc::SYS_gettid) };
        let table = Box::into_raw(Box::new(Table::new(leaf_only_ranges())?));
        TABLE.store(table, Ordering::SeqCst);
        let action = libc::sigaction {
            sa_sigaction: on_sigprof as *const () as usize,
            sa_mask: unsafe { std::mem::zeroed() },
            sa_flags: libc::SA_SIGINFO | libc::SA_RESTART,
            sa_restorer: None,
        };
        if unsafe { libc::sigaction(libc::SIGPROF, &action, null_mut()) } != 0 {
            let err = std::io::Error::last_os_error();
            TABLE.store(null_mut(), Ordering::SeqCst);
            drop(unsafe { Box::from_raw(table) });
            return Err(format!("cannot install the SIGPROF handler: {err}"));
        }
        let nanos = 1_000_000_000 / i64::from(frequency);
        let mut sampler = Sampler {
            table,
            timers: HashMap::new(),
            threads: HashMap::new(),
            period: libc::timespec {
                tv_sec: nanos / 1_000_000_000,
                tv_nsec: nanos % 1_000_000_000,
            },
            frequency,
            started: SystemTime::now(),
            started_at: Instant::now(),
        };
        sampler.rescan()?;
        Ok(sampler)
    }

    /// Arms a timer on each thread started since the last scan (and forgets the ones that
    /// ended). `Err` if no timer could be armed at all.
    pub(super) fn rescan(&mut self) -> Result<(), String> {
        let tids = thread_ids();
        let mut last_error = None;
        for &tid in &tids {
            if self.timers.contains_key(&tid) {
                continue;
            }
            match arm(tid, self.period) {
                Ok(timer) => {
                    self.timers.insert(tid, timer);
                    self.threads.insert(tid, thread_name(tid));
                }
                // The thread may have ended since the listing.
                Err(err) => last_error = Some(err),
            }
        }
        self.timers.retain(|tid, timer| {
            let alive = tids.contains(tid);
            if !alive {
                unsafe { libc::timer_delete(*timer) };
            }
            alive
        });
        match last_error {
            Some(err) if self.timers.is_empty() => Err(format!("cannot arm a CPU timer: {err}")),
            _ => Ok(()),
        }
    }

    /// Stops sampling and hands over what was collected.
    pub(super) fn stop(mut self) -> Collected {
        let duration = self.started_at.elapsed();
        let table = self.quiesce();
        // Names now: a thread names itself after it starts, possibly after its timer.
        for (tid, name) in &mut self.threads {
            let now = thread_name(*tid);
            if !now.is_empty() {
                *name = now;
            }
        }
        let collected = Collected {
            stacks: table.stacks(),
            threads: std::mem::take(&mut self.threads),
            overflow: table.overflow.load(Ordering::Relaxed),
            signals: table.signals.load(Ordering::Relaxed),
            frequency: self.frequency,
            started: self.started,
            duration,
        };
        drop(table);
        collected
    }

    /// Deletes the timers, detaches the table and waits until no handler uses it.
    fn quiesce(&mut self) -> Box<Table> {
        for (_, timer) in self.timers.drain() {
            unsafe { libc::timer_delete(timer) };
        }
        // A signal still pending finds no table; `SIG_IGN`, not the default action (which
        // would end the process), for one arriving later still.
        TABLE.store(null_mut(), Ordering::SeqCst);
        unsafe { libc::signal(libc::SIGPROF, libc::SIG_IGN) };
        while IN_HANDLER.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        let table = std::mem::replace(&mut self.table, null_mut());
        unsafe { Box::from_raw(table) }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if !self.table.is_null() {
            drop(self.quiesce());
        }
    }
}

/// The thread ids of this process.
fn thread_ids() -> Vec<i32> {
    std::fs::read_dir("/proc/self/task")
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn thread_name(tid: i32) -> String {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
        .map(|name| name.trim_end().to_string())
        .unwrap_or_default()
}

/// A timer sending `SIGPROF` to thread `tid` after each `period` of its CPU time.
fn arm(tid: i32, period: libc::timespec) -> Result<libc::timer_t, std::io::Error> {
    // The kernel's CPU clock of one thread: MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED), what
    // glibc's pthread_getcpuclockid returns for it.
    let clock = ((!tid) << 3) | 6;
    let mut event: libc::sigevent = unsafe { std::mem::zeroed() };
    event.sigev_notify = libc::SIGEV_THREAD_ID;
    event.sigev_signo = libc::SIGPROF;
    event.sigev_notify_thread_id = tid;
    let mut timer: libc::timer_t = null_mut();
    if unsafe { libc::timer_create(clock, &mut event, &mut timer) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let spec = libc::itimerspec {
        it_interval: period,
        it_value: period,
    };
    if unsafe { libc::timer_settime(timer, 0, &spec, null_mut()) } != 0 {
        let err = std::io::Error::last_os_error();
        unsafe { libc::timer_delete(timer) };
        return Err(err);
    }
    Ok(timer)
}

/// Executable mappings in which an interrupted thread is not unwound: the unwinder
/// (libgcc_s), the dynamic loader, and glibc before 2.35 (its `dl_iterate_phdr`, which the
/// unwinder then calls, takes a lock).
fn leaf_only_ranges() -> Vec<(usize, usize)> {
    let old_glibc = glibc_before_2_35();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let path = fields.nth(3)?;
            let name = path.rsplit('/').next()?;
            let blocked = name.starts_with("libgcc_s")
                || name.starts_with("ld-linux")
                || (old_glibc && name.starts_with("libc.so"));
            if !perms.contains('x') || !blocked {
                return None;
            }
            let (lo, hi) = range.split_once('-')?;
            Some((
                usize::from_str_radix(lo, 16).ok()?,
                usize::from_str_radix(hi, 16).ok()?,
            ))
        })
        .collect()
}

#[cfg(target_env = "gnu")]
fn glibc_before_2_35() -> bool {
    let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    let mut parts = version
        .to_str()
        .unwrap_or("0.0")
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) < (2, 35)
}

#[cfg(not(target_env = "gnu"))]
fn glibc_before_2_35() -> bool {
    false
}

/// Hands the heap freed by symbolising back to the system: glibc keeps freed memory in its
/// arenas (the profiler thread's, here) otherwise.
pub(super) fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim takes no pointer and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
