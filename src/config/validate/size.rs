//! Byte sizes as an operator writes them: an integer (`1048576`), or a string with a
//! 1024-based unit (`"512K"`, `"10M"`, `"1G"`, or the IEC spellings `"512KiB"`, `"10MiB"`,
//! `"1GiB"`; `k`, `m`, `g` too, as nginx takes them). There are no 1000-based units: `"10MB"`
//! means 10 000 000 bytes to some readers and 10 485 760 to others, so it is refused with a
//! message saying what to write instead, rather than guessed at.
//!
//! This file must never accept a size it cannot represent exactly (no fractions, no overflow):
//! a limit silently rounded is a limit nobody set.

/// Why a size string is not a size. The text is the error message's tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SizeError {
    /// No digits before the unit.
    NoNumber,
    /// `1.5M`.
    Fraction,
    /// `10MB`, `10kB`: a 1000-based-looking unit.
    Ambiguous,
    /// Anything else after the number.
    UnknownUnit,
    /// More than `i64::MAX` bytes.
    TooLarge,
}

impl SizeError {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            SizeError::NoNumber => {
                "expected a whole number of bytes, optionally with a unit (\"512K\", \"10M\", \"1GiB\")"
            }
            SizeError::Fraction => {
                "fractions are not accepted: use a smaller unit (\"1536K\", not \"1.5M\")"
            }
            SizeError::Ambiguous => {
                "KB, MB and GB are ambiguous: write K, M, G or KiB, MiB, GiB (all 1024-based), or the number of bytes"
            }
            SizeError::UnknownUnit => {
                "unknown unit (K, M, G, KiB, MiB, GiB, all 1024-based, or B for bytes)"
            }
            SizeError::TooLarge => "too large (at most 9223372036854775807 bytes)",
        }
    }
}

/// The number of bytes `text` stands for. Spaces around the number and between it and the
/// unit are allowed (`"10 MiB"`).
pub(crate) fn parse_size(text: &str) -> Result<i64, SizeError> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, rest) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(SizeError::NoNumber);
    }
    if rest.starts_with(['.', ',']) {
        return Err(SizeError::Fraction);
    }
    let shift = match rest.trim_start() {
        "" | "B" | "b" => 0,
        "K" | "k" | "KiB" | "kiB" => 10,
        "M" | "m" | "MiB" => 20,
        "G" | "g" | "GiB" => 30,
        "KB" | "kB" | "kb" | "Kb" | "MB" | "mB" | "mb" | "Mb" | "GB" | "gB" | "gb" | "Gb" => {
            return Err(SizeError::Ambiguous);
        }
        _ => return Err(SizeError::UnknownUnit),
    };
    let number: i64 = digits.parse().map_err(|_| SizeError::TooLarge)?;
    number.checked_mul(1 << shift).ok_or(SizeError::TooLarge)
}

/// `bytes` the way the file may write it, exactly: the largest 1024-based unit that divides it
/// (`1M`, `1536K`), else the plain number (`1000`). `parse_size` reads every output back.
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes % (1 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::{SizeError, format_size, parse_size};

    #[test]
    fn format_size_uses_the_largest_exact_unit() {
        let cases = [
            (0, "0"),
            (1000, "1000"),
            (1024, "1K"),
            (1536 << 10, "1536K"),
            (1 << 20, "1M"),
            (3 << 30, "3G"),
        ];
        for (bytes, want) in cases {
            assert_eq!(format_size(bytes), want);
            assert_eq!(parse_size(want), Ok(i64::try_from(bytes).unwrap()));
        }
    }

    #[test]
    fn sizes_take_1024_based_units_and_nothing_ambiguous() {
        let cases = [
            ("0", Ok(0)),
            ("1048576", Ok(1_048_576)),
            ("512B", Ok(512)),
            ("512k", Ok(524_288)),
            ("512K", Ok(524_288)),
            ("512KiB", Ok(524_288)),
            ("10M", Ok(10_485_760)),
            ("10m", Ok(10_485_760)),
            ("10 MiB", Ok(10_485_760)),
            (" 1G ", Ok(1_073_741_824)),
            ("1GiB", Ok(1_073_741_824)),
            ("8589934591G", Ok(8_589_934_591 << 30)),
            ("8589934592G", Err(SizeError::TooLarge)),
            ("99999999999999999999", Err(SizeError::TooLarge)),
            ("10MB", Err(SizeError::Ambiguous)),
            ("10kB", Err(SizeError::Ambiguous)),
            ("1.5M", Err(SizeError::Fraction)),
            ("10T", Err(SizeError::UnknownUnit)),
            ("10Mi", Err(SizeError::UnknownUnit)),
            ("M", Err(SizeError::NoNumber)),
            ("-1", Err(SizeError::NoNumber)),
            ("", Err(SizeError::NoNumber)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_size(text), want, "{text:?}");
        }
    }
}
