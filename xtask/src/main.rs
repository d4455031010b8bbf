//! Build tasks for asycamore that are not part of the shipped binary.
//!
//! `cargo run -p xtask -- man OUTDIR` writes the man pages: asycamore(8) to
//! `OUTDIR/asycamore.8` and asycamore.toml(5) to `OUTDIR/asycamore.toml.5`.

mod man;
mod man_config;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["man", dir] => match write_man(PathBuf::from(dir)) {
            Ok(paths) => {
                for path in paths {
                    println!("wrote {}", path.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask man: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo run -p xtask -- man OUTDIR");
            ExitCode::from(2)
        }
    }
}

fn write_man(dir: PathBuf) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(&dir)?;
    let daemon = dir.join(man::FILE_NAME);
    std::fs::write(&daemon, man::render()?)?;
    let config = dir.join(man_config::FILE_NAME);
    std::fs::write(&config, man_config::render(asycamore::daemon::VERSION)?)?;
    Ok(vec![daemon, config])
}
