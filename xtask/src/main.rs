//! Build tasks for asycamore that are not part of the shipped binary.
//!
//! `cargo run -p xtask -- man OUTDIR` writes the asycamore(8) man page to `OUTDIR/asycamore.8`.

mod man;

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
            Ok(path) => {
                println!("wrote {}", path.display());
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

fn write_man(dir: PathBuf) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(man::FILE_NAME);
    std::fs::write(&path, man::render()?)?;
    Ok(path)
}
