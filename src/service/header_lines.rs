//! [`HeaderLines`]: header fields encoded once (`Name: value\r\n...`) and checked when they
//! are built, so a handler can hand the same lines to every response without the writer
//! checking them again, and no build of the library can send a field that splits a
//! response.

use super::ResponseError;
use crate::http1::encode;

/// Header field lines, encoded and checked once: every name an RFC 9110 token, every value
/// free of CR, LF, NUL and other control bytes but HTAB. Built at configuration time and
/// handed to [`ResponseWriter::head_encoded`](super::ResponseWriter::head_encoded) and its
/// siblings, or to [`FixedResponse::new`](super::FixedResponse::new).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderLines {
    bytes: Box<[u8]>,
}

impl HeaderLines {
    /// Lines for `fields`, in order.
    ///
    /// # Errors
    ///
    /// [`ResponseError::InvalidField`] if a name is not a token or a value is not a valid
    /// field value ([`encode::is_valid_header_value`]).
    pub fn new<N: AsRef<str>, V: AsRef<[u8]>>(fields: &[(N, V)]) -> Result<Self, ResponseError> {
        let mut bytes = Vec::new();
        for (name, value) in fields {
            write_checked(&mut bytes, name.as_ref().as_bytes(), value.as_ref())?;
        }
        Ok(HeaderLines {
            bytes: bytes.into_boxed_slice(),
        })
    }

    /// These lines followed by `fields` (a route's lines plus a handler's own).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with<N: AsRef<str>, V: AsRef<[u8]>>(
        &self,
        fields: &[(N, V)],
    ) -> Result<Self, ResponseError> {
        let mut bytes = self.bytes.to_vec();
        for (name, value) in fields {
            write_checked(&mut bytes, name.as_ref().as_bytes(), value.as_ref())?;
        }
        Ok(HeaderLines {
            bytes: bytes.into_boxed_slice(),
        })
    }

    /// These lines followed by a field the crate spells out itself (a constant, known
    /// valid: checked in debug builds only).
    pub(crate) fn and(&self, name: &'static str, value: &'static [u8]) -> Self {
        let mut bytes = self.bytes.to_vec();
        encode::write_header(&mut bytes, name.as_bytes(), value);
        HeaderLines {
            bytes: bytes.into_boxed_slice(),
        }
    }

    /// The encoded lines.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether there are no lines.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Appends `name: value\r\n` if both are valid; else appends nothing.
pub(super) fn write_checked(
    out: &mut Vec<u8>,
    name: &[u8],
    value: &[u8],
) -> Result<(), ResponseError> {
    if encode::is_valid_header_name(name) && encode::is_valid_header_value(value) {
        encode::write_header(out, name, value);
        Ok(())
    } else {
        Err(ResponseError::InvalidField)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_checked_when_built() {
        let lines = HeaderLines::new(&[("X-A", "1"), ("Cache-Control", "no-store")]).unwrap();
        assert_eq!(lines.as_bytes(), b"X-A: 1\r\nCache-Control: no-store\r\n");
        let more = lines.with(&[("Allow", b"GET")]).unwrap();
        assert_eq!(
            more.as_bytes(),
            b"X-A: 1\r\nCache-Control: no-store\r\nAllow: GET\r\n"
        );
        for (name, value) in [
            ("X-A", &b"a\r\nSet-Cookie: x=1"[..]),
            ("X-A", b"a\nb"),
            ("X-A", b"a\rb"),
            ("X-A", b"a\0b"),
            ("X A", b"v"),
            ("X-A\r\nY", b"v"),
            ("", b"v"),
        ] {
            assert_eq!(
                HeaderLines::new(&[(name, value)]),
                Err(ResponseError::InvalidField),
                "{name:?} {value:?}"
            );
        }
    }
}
