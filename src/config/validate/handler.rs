//! Validation of a route's handler and its settings: which keys belong to which handler
//! (`NotForHandler` otherwise), their values and defaults, and the filesystem checks of a
//! static root (an existing, readable directory) and an upload directory (an existing,
//! writable one, probed by creating and removing an empty file).
//!
//! The filesystem checks are validation's only filesystem I/O; they must never change anything
//! they find (the probe file is removed at once), and their errors carry the OS's words. The
//! proxy's settings are `upstream.rs`'s.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use toml::Spanned;

use super::super::model::{RawList, RawRoute};
use super::super::{ConfigErrorKind, HandlerSpec};
use super::{IntRange, Validator};

const STATUS: (i64, IntRange) = (200, IntRange::new(200, 599));
const REDIRECT_STATUS: i64 = 302;
const REDIRECT_STATUSES: [i64; 5] = [301, 302, 303, 307, 308];
const DEFAULT_INDEX: &str = "index.html";

const RESPOND: &str = "\"respond\"";
const STATIC: &str = "\"static\"";
const UPLOAD: &str = "\"upload\"";
const REDIRECT: &str = "\"redirect\"";
const PROXY: &str = "\"proxy\"";
const RESPOND_REDIRECT: &str = "\"respond\" and \"redirect\"";

impl Validator<'_> {
    /// The route's handler; `at` is where its table starts (where a missing key is reported).
    pub(super) fn handler(
        &mut self,
        prefix: &str,
        at: usize,
        raw: &RawRoute,
    ) -> Option<HandlerSpec> {
        let key = |name: &str| format!("{prefix}.{name}");
        let Some(handler) = &raw.handler else {
            self.error(at, key("handler"), ConfigErrorKind::Missing);
            // Still range-check status so that fixing one error does not reveal another.
            let _: u16 = self.int(&raw.status, &key("status"), STATUS);
            return None;
        };
        let known = ["respond", "echo", "static", "upload", "redirect", "proxy"];
        let Some(&name) = known.iter().find(|&&k| k == handler.get_ref()) else {
            let kind = ConfigErrorKind::UnknownHandler {
                value: handler.get_ref().clone(),
            };
            self.error(handler.span().start, key("handler"), kind);
            let _: u16 = self.int(&raw.status, &key("status"), STATUS);
            return None;
        };
        self.misplaced_settings(prefix, name, raw);
        match name {
            "respond" => self.respond(prefix, raw),
            "echo" => Some(HandlerSpec::Echo),
            "static" => self.static_files(prefix, at, raw),
            "upload" => self.upload(prefix, at, raw),
            "redirect" => self.redirect(prefix, at, raw),
            _ => self.proxy(prefix, at, raw),
        }
    }

    /// One `NotForHandler` per setting the handler does not take.
    fn misplaced_settings(&mut self, prefix: &str, handler: &'static str, raw: &RawRoute) {
        let string = |f: &Option<Spanned<String>>| f.as_ref().map(|f| f.span().start);
        let boolean = |f: &Option<Spanned<bool>>| f.as_ref().map(|f| f.span().start);
        let list = |f: &Option<RawList>| f.as_ref().map(|f| f.span().start);
        let settings: [(&'static str, Option<usize>, &'static str); 13] = [
            (
                "status",
                raw.status.as_ref().map(|f| f.span().start),
                RESPOND_REDIRECT,
            ),
            ("body", string(&raw.body), RESPOND),
            ("root", string(&raw.root), STATIC),
            ("index", list(&raw.index), STATIC),
            ("listing", boolean(&raw.listing), STATIC),
            (
                "follow_symlinks_outside_root",
                boolean(&raw.follow_symlinks_outside_root),
                STATIC,
            ),
            ("dir", string(&raw.dir), UPLOAD),
            ("fsync", boolean(&raw.fsync), UPLOAD),
            ("to", string(&raw.to), REDIRECT),
            ("keep_path", boolean(&raw.keep_path), REDIRECT),
            ("keep_query", boolean(&raw.keep_query), REDIRECT),
            ("upstream", string(&raw.upstream), PROXY),
            ("proxy_host", string(&raw.proxy_host), PROXY),
        ];
        let quoted = format!("\"{handler}\"");
        for (name, offset, only) in settings {
            let Some(offset) = offset else {
                continue;
            };
            if !only.contains(&quoted) {
                let kind = ConfigErrorKind::NotForHandler {
                    key: name,
                    handler,
                    only,
                };
                self.error(offset, format!("{prefix}.{name}"), kind);
            }
        }
    }

    fn respond(&mut self, prefix: &str, raw: &RawRoute) -> Option<HandlerSpec> {
        let status: u16 = self.int(&raw.status, &format!("{prefix}.status"), STATUS);
        let body = raw.body.as_ref();
        // RFC 9110 15.3.5, 15.3.6 and 15.4.5: 204, 205 and 304 responses never carry
        // content; the server would have to drop the body silently, so say so now instead.
        if let Some(b) = body.filter(|b| !b.get_ref().is_empty()) {
            if matches!(status, 204 | 205 | 304) {
                let kind = ConfigErrorKind::BodyNotAllowed { status };
                self.error(b.span().start, format!("{prefix}.body"), kind);
            }
        }
        Some(HandlerSpec::Respond {
            status,
            body: body.map(|b| b.get_ref().clone()).unwrap_or_default(),
        })
    }

    fn static_files(&mut self, prefix: &str, at: usize, raw: &RawRoute) -> Option<HandlerSpec> {
        if let Some(exact) = &raw.exact {
            // An exact match reaches only the root itself, which answers with a redirect
            // to a path the route does not match: the files could never be served.
            let kind = ConfigErrorKind::StaticNeedsPrefix;
            self.error(exact.span().start, format!("{prefix}.exact"), kind);
        }
        let root = self.directory(prefix, at, "root", raw.root.as_ref(), Access::Read);
        let index = match &raw.index {
            None => Some(vec![DEFAULT_INDEX.to_owned()]),
            Some(list) => {
                let before = self.errors.len();
                for (i, item) in list.get_ref().iter().enumerate() {
                    let name = item.get_ref();
                    let plain = !name.is_empty()
                        && name != "."
                        && name != ".."
                        && !name.contains(['/', '\0']);
                    if !plain {
                        let kind = ConfigErrorKind::InvalidIndexName {
                            value: name.clone(),
                        };
                        self.error(item.span().start, format!("{prefix}.index[{i}]"), kind);
                    }
                }
                let names = list.get_ref().iter().map(|n| n.get_ref().clone());
                (self.errors.len() == before).then(|| names.collect())
            }
        };
        Some(HandlerSpec::Static {
            root: root?,
            index: index?,
            listing: flag(&raw.listing, false),
            follow_symlinks_outside_root: flag(&raw.follow_symlinks_outside_root, false),
        })
    }

    fn upload(&mut self, prefix: &str, at: usize, raw: &RawRoute) -> Option<HandlerSpec> {
        let dir = self.directory(prefix, at, "dir", raw.dir.as_ref(), Access::Write)?;
        Some(HandlerSpec::Upload {
            dir,
            fsync: flag(&raw.fsync, false),
        })
    }

    fn redirect(&mut self, prefix: &str, at: usize, raw: &RawRoute) -> Option<HandlerSpec> {
        let status = match &raw.status {
            None => Some(REDIRECT_STATUS),
            Some(s) if REDIRECT_STATUSES.contains(s.get_ref()) => Some(*s.get_ref()),
            Some(s) => {
                let kind = ConfigErrorKind::NotRedirectStatus {
                    value: *s.get_ref(),
                };
                self.error(s.span().start, format!("{prefix}.status"), kind);
                None
            }
        };
        let to = match &raw.to {
            None => {
                self.error(at, format!("{prefix}.to"), ConfigErrorKind::Missing);
                None
            }
            Some(to) => match redirect_target(to.get_ref()) {
                Ok(()) => Some(to.get_ref().clone()),
                Err(reason) => {
                    let kind = ConfigErrorKind::InvalidRedirectTarget {
                        value: to.get_ref().clone(),
                        reason,
                    };
                    self.error(to.span().start, format!("{prefix}.to"), kind);
                    None
                }
            },
        };
        Some(HandlerSpec::Redirect {
            // One of REDIRECT_STATUSES, all of which fit.
            status: u16::try_from(status?).ok()?,
            to: to?,
            keep_path: flag(&raw.keep_path, false),
            keep_query: flag(&raw.keep_query, true),
        })
    }

    /// A required directory setting (`root`, `dir`): canonical, a directory, and readable
    /// (listed) or writable (a probe file created and removed).
    fn directory(
        &mut self,
        prefix: &str,
        at: usize,
        name: &str,
        field: Option<&Spanned<String>>,
        access: Access,
    ) -> Option<PathBuf> {
        let key = format!("{prefix}.{name}");
        let Some(field) = field else {
            self.error(at, key, ConfigErrorKind::Missing);
            return None;
        };
        let (value, offset) = (field.get_ref(), field.span().start);
        let fail = |error: std::io::Error| ConfigErrorKind::DirectoryAccess {
            path: value.as_str().into(),
            write: matches!(access, Access::Write),
            error: error.to_string().into(),
            cwd: crate::config::working_dir_of(value),
        };
        let checked = std::fs::canonicalize(value)
            .map_err(fail)
            .and_then(|path| {
                if path.is_dir() {
                    Ok(path)
                } else {
                    Err(ConfigErrorKind::NotADirectory {
                        path: value.clone(),
                        cwd: crate::config::working_dir_of(value),
                    })
                }
            })
            .and_then(|path| match access {
                Access::Read => std::fs::read_dir(&path).map(|_| path).map_err(fail),
                Access::Write => probe_write(&path).map(|()| path).map_err(fail),
            });
        match checked {
            Ok(path) => Some(path),
            Err(kind) => {
                self.error(offset, key, kind);
                None
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Access {
    Read,
    Write,
}

fn flag(field: &Option<Spanned<bool>>, default: bool) -> bool {
    field.as_ref().map_or(default, |f| *f.get_ref())
}

/// Creates and removes an empty file in `dir`: the one sure test that this process can
/// create files there (permissions, ACLs, read-only mounts and full inode tables included).
fn probe_write(dir: &Path) -> std::io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // Bounded: a name taken by a leftover probe is skipped, a few times at most.
    for _ in 0..8 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let probe = dir.join(format!(".asycamore-probe-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(file) => {
                drop(file);
                return std::fs::remove_file(&probe);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        ErrorKind::AlreadyExists,
        "cannot find a free probe file name",
    ))
}

/// `to`: an absolute URL (`scheme://authority...`) or an absolute path (`/...`, not `//`),
/// ASCII without whitespace or control characters (it goes into `Location` as written).
fn redirect_target(to: &str) -> Result<(), &'static str> {
    const FORM: &str = "must be an absolute URL (scheme://host/...) or an absolute path (/...)";
    if !to.is_ascii() {
        return Err("must be ASCII (percent-encode other characters)");
    }
    if to
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("must not contain whitespace or control characters");
    }
    if to.starts_with("//") {
        return Err("must not start with \"//\" (browsers read that as a host name)");
    }
    if to.starts_with('/') {
        return Ok(());
    }
    let Some((scheme, rest)) = to.split_once("://") else {
        return Err(FORM);
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    let has_host = !rest.is_empty() && !rest.starts_with(['/', '?', '#']);
    if scheme_ok && has_host {
        Ok(())
    } else {
        Err(FORM)
    }
}
