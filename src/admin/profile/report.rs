//! A collected profile as pprof protobuf and as a flame graph.
//!
//! Only the addresses the stacks hold are symbolised (each once), and the symboliser's
//! caches (the binary's and libraries' debug information, mapped or decompressed) are
//! dropped afterwards and the freed heap handed back to the system (`malloc_trim`), so a
//! profile costs memory only while it is being reported. The pprof profile carries the
//! addresses and the mappings they fall in too, so `pprof` or `go tool pprof` can also
//! symbolise it against the binary.

use std::collections::HashMap;
use std::ffi::c_void;
use std::io::Write;

use pprof::protos;
use pprof::protos::Message;

use super::session::Profile;
use super::sys::Collected;

/// Outermost frames dropped from every stack: how a thread starts (libc's thread
/// creation and the Rust runtime's), the same in every sample.
const THREAD_START: &[&str] = &[
    "clone",
    "clone3",
    "__clone",
    "__clone3",
    "start_thread",
    "_start",
    "__libc_start_main",
    "__libc_start_call_main",
    "main",
];
/// Outermost frames whose name contains one of these are dropped too (std's thread
/// start-up: `<std::sys::thread::unix::Thread>::new::thread_start`, the boxed closure's
/// `call_once`, `catch_unwind`, `__rust_begin_short_backtrace`; `std::rt::lang_start`).
const THREAD_START_PARTS: &[&str] = &[
    "thread_start",
    "::start_thread",
    "::spawn_unchecked",
    "__rust_begin_short_backtrace",
    "{{vtable.shim}}",
    "std::rt::lang_start",
    "catch_unwind",
    "std::panicking::try",
    "__rust_try",
    "core::ops::function::FnOnce",
    "core::ops::function::impls::",
];

/// One source-level frame of an address (an address has several when calls were inlined).
#[derive(Clone)]
struct Symbol {
    name: String,
    file: String,
    line: i64,
}

fn thread_start(name: &str) -> bool {
    THREAD_START.contains(&name) || THREAD_START_PARTS.iter().any(|part| name.contains(part))
}

/// The frames of `address`, innermost first; the address itself when unknown.
fn symbolise(address: u64) -> Vec<Symbol> {
    let mut symbols = Vec::new();
    backtrace::resolve(address as usize as *mut c_void, |symbol| {
        let Some(name) = symbol.name() else { return };
        symbols.push(Symbol {
            name: format!("{name:#}"),
            file: symbol
                .filename()
                .map(|file| file.display().to_string())
                .unwrap_or_default(),
            line: symbol.lineno().map_or(0, i64::from),
        });
    });
    if symbols.is_empty() {
        symbols.push(Symbol {
            name: format!("{address:#x}"),
            file: String::new(),
            line: 0,
        });
    }
    symbols
}

/// An executable mapping of the process, for pprof's `Mapping`.
struct Mapping {
    start: u64,
    limit: u64,
    offset: u64,
    file: String,
}

fn mappings() -> Vec<Mapping> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (start, limit) = fields.next()?.split_once('-')?;
            if !fields.next()?.contains('x') {
                return None;
            }
            let offset = fields.next()?;
            let file = fields.nth(2).unwrap_or("").to_string();
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                limit: u64::from_str_radix(limit, 16).ok()?,
                offset: u64::from_str_radix(offset, 16).ok()?,
                file,
            })
        })
        .collect()
}

/// Interns strings for the pprof string table (index 0 is "").
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        Strings {
            table: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }

    fn get(&mut self, text: &str) -> i64 {
        if let Some(&index) = self.index.get(text) {
            return index;
        }
        let index = self.table.len() as i64;
        self.table.push(text.to_string());
        self.index.insert(text.to_string(), index);
        index
    }
}

/// Symbolises what was collected and encodes both formats; then frees the symboliser's
/// memory.
pub(super) fn encode(collected: &Collected) -> Result<Profile, String> {
    let profile = build(collected);
    backtrace::clear_symbol_cache();
    profile
}

fn build(collected: &Collected) -> Result<Profile, String> {
    let period = collected.period().as_nanos() as i64;
    let samples = collected.samples();
    // Each address symbolised once.
    let mut symbols: HashMap<u64, Vec<Symbol>> = HashMap::new();
    for stack in &collected.stacks {
        for &address in &stack.frames {
            symbols.entry(address).or_insert_with(|| symbolise(address));
        }
    }
    let mappings = mappings();
    // How many samples interrupted a thread inside libc (system call wrappers, memcpy):
    // the pprof crate's default of skipping them lost most of a server's CPU time.
    let in_libc: u64 = collected
        .stacks
        .iter()
        .filter(|stack| {
            mappings.iter().any(|mapping| {
                mapping
                    .file
                    .rsplit('/')
                    .next()
                    .is_some_and(|name| name.starts_with("libc.so"))
                    && stack.frames[0] >= mapping.start
                    && stack.frames[0] < mapping.limit
            })
        })
        .map(|stack| stack.count)
        .sum();
    log::debug!(
        "profile: {samples} sample(s) from {} signal(s), {in_libc} in libc, {} without a stack",
        collected.signals,
        collected.overflow
    );
    let mut strings = Strings::new();
    let mut functions: HashMap<(String, String), u64> = HashMap::new();
    let mut profile = protos::Profile::default();
    for (index, mapping) in mappings.iter().enumerate() {
        let filename = strings.get(&mapping.file);
        profile.mapping.push(protos::Mapping {
            id: index as u64 + 1,
            memory_start: mapping.start,
            memory_limit: mapping.limit,
            file_offset: mapping.offset,
            filename,
            has_functions: true,
            has_filenames: true,
            has_line_numbers: true,
            has_inline_frames: true,
            ..protos::Mapping::default()
        });
    }
    let mut locations: HashMap<u64, u64> = HashMap::new();
    let thread_key = strings.get("thread");
    let mut folded: HashMap<String, u64> = HashMap::new();
    for stack in &collected.stacks {
        // Drop the thread-start frames from the outer end.
        let mut keep = stack.frames.len();
        while keep > 1
            && symbols[&stack.frames[keep - 1]]
                .iter()
                .all(|symbol| thread_start(&symbol.name))
        {
            keep -= 1;
        }
        let frames = &stack.frames[..keep];
        let thread = collected
            .threads
            .get(&stack.tid)
            .filter(|name| !name.is_empty())
            .cloned()
            .unwrap_or_else(|| format!("thread {}", stack.tid));
        let mut location_ids = Vec::with_capacity(frames.len());
        for &address in frames {
            let next = locations.len() as u64 + 1;
            let id = *locations.entry(address).or_insert_with(|| {
                let line = symbols[&address]
                    .iter()
                    .map(|symbol| {
                        let key = (symbol.name.clone(), symbol.file.clone());
                        let next = functions.len() as u64 + 1;
                        let function_id = *functions.entry(key).or_insert_with(|| {
                            let name = strings.get(&symbol.name);
                            let filename = strings.get(&symbol.file);
                            profile.function.push(protos::Function {
                                id: next,
                                name,
                                system_name: name,
                                filename,
                                ..protos::Function::default()
                            });
                            next
                        });
                        protos::Line {
                            function_id,
                            line: symbol.line,
                            ..protos::Line::default()
                        }
                    })
                    .collect();
                let mapping_id = mappings
                    .iter()
                    .position(|mapping| address >= mapping.start && address < mapping.limit)
                    .map_or(0, |index| index as u64 + 1);
                profile.location.push(protos::Location {
                    id: next,
                    mapping_id,
                    address,
                    line,
                    ..protos::Location::default()
                });
                next
            });
            location_ids.push(id);
        }
        let count = stack.count as i64;
        let label = protos::Label {
            key: thread_key,
            str: strings.get(&thread),
            ..protos::Label::default()
        };
        profile.sample.push(protos::Sample {
            location_id: location_ids,
            value: vec![count, count * period],
            label: vec![label],
            ..protos::Sample::default()
        });
        // The flame graph: thread, then outermost to innermost (';' separates frames).
        let mut line = thread.replace(';', ":");
        for &address in frames.iter().rev() {
            for symbol in symbols[&address].iter().rev() {
                line.push(';');
                line.push_str(&symbol.name.replace(';', ":"));
            }
        }
        *folded.entry(line).or_default() += stack.count;
    }
    if collected.overflow > 0 {
        let id = profile.function.len() as u64 + 1;
        let name = strings.get("[stack table full]");
        profile.function.push(protos::Function {
            id,
            name,
            system_name: name,
            ..protos::Function::default()
        });
        let location = profile.location.len() as u64 + 1;
        profile.location.push(protos::Location {
            id: location,
            line: vec![protos::Line {
                function_id: id,
                ..protos::Line::default()
            }],
            ..protos::Location::default()
        });
        let count = collected.overflow as i64;
        profile.sample.push(protos::Sample {
            location_id: vec![location],
            value: vec![count, count * period],
            ..protos::Sample::default()
        });
        *folded.entry("[stack table full]".to_string()).or_default() += collected.overflow;
    }
    let samples_type = protos::ValueType {
        ty: strings.get("samples"),
        unit: strings.get("count"),
        ..protos::ValueType::default()
    };
    let cpu_type = protos::ValueType {
        ty: strings.get("cpu"),
        unit: strings.get("nanoseconds"),
        ..protos::ValueType::default()
    };
    profile.sample_type = vec![samples_type, cpu_type.clone()];
    profile.period_type = Some(cpu_type).into();
    profile.period = period;
    profile.time_nanos = collected
        .started
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i64;
    profile.duration_nanos = collected.duration.as_nanos() as i64;
    profile.string_table = std::mem::take(&mut strings.table);
    let proto = profile
        .write_to_bytes()
        .map_err(|err| format!("cannot encode the pprof profile: {err}"))?;
    drop(profile);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&proto)
        .map_err(|err| format!("cannot compress the profile: {err}"))?;
    let pprof = gzip
        .finish()
        .map_err(|err| format!("cannot compress the profile: {err}"))?;
    let title = title(collected);
    let svg = flame_graph(&folded, &title)?;
    Ok(Profile {
        pprof,
        svg,
        samples,
        duration: collected.duration,
    })
}

/// The flame graph's title: what it counts and over how long.
fn title(collected: &Collected) -> String {
    let samples = collected.samples();
    let cpu = collected.period().as_secs_f64() * samples as f64;
    format!(
        "CPU profile: {samples} samples at {} Hz ({cpu:.2} s of CPU) in {:.2} s",
        collected.frequency,
        collected.duration.as_secs_f64()
    )
}

fn flame_graph(folded: &HashMap<String, u64>, title: &str) -> Result<Vec<u8>, String> {
    let mut svg = Vec::new();
    if folded.is_empty() {
        svg.extend_from_slice(empty_svg(title).as_bytes());
        return Ok(svg);
    }
    let mut lines: Vec<String> = folded
        .iter()
        .map(|(stack, count)| format!("{stack} {count}"))
        .collect();
    lines.sort_unstable();
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_string();
    options.count_name = "samples".to_string();
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)
        .map_err(|err| format!("cannot draw the flame graph: {err}"))?;
    Ok(svg)
}

fn empty_svg(title: &str) -> String {
    let title = title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<?xml version=\"1.0\" standalone=\"no\"?>\n\
         <svg version=\"1.1\" width=\"1200\" height=\"80\" xmlns=\"http://www.w3.org/2000/svg\">\
         <text x=\"600\" y=\"30\" text-anchor=\"middle\" font-family=\"Verdana\" font-size=\"17\">\
         {title}</text><text x=\"600\" y=\"60\" text-anchor=\"middle\" font-family=\"Verdana\" \
         font-size=\"14\">No samples were collected</text></svg>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_start_frames() {
        for name in [
            "clone3",
            "start_thread",
            "std::sys::pal::unix::thread::Thread::new::thread_start",
            "<std::sys::thread::unix::Thread>::new::thread_start",
            "std::thread::lifecycle::spawn_unchecked::{{closure}}::{{closure}}",
            "std::panicking::catch_unwind::do_call",
            "core::ops::function::FnOnce::call_once{{vtable.shim}}",
            "std::sys::backtrace::__rust_begin_short_backtrace",
        ] {
            assert!(thread_start(name), "{name}");
        }
        for name in ["asycamore::server::worker::run", "mio::poll::Poll::poll"] {
            assert!(!thread_start(name), "{name}");
        }
    }
}
