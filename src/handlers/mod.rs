//! The built-in handlers that configuration can name, and the enum that dispatches to them.
//!
//! Built-ins are dispatched through an enum rather than `Box<dyn Handler>`, so serving one
//! costs a `match`, not an allocation and an indirect call. Handlers only see the service
//! model: they must not reach into the server, the reactor or the configuration.

mod echo;
pub mod proxy;
mod redirect;
mod respond;
mod static_files;
mod upload;

pub use echo::{Echo, EchoExchange};
pub use redirect::{Redirect, RedirectSettings};
pub use respond::Respond;
pub use static_files::{StaticFiles, StaticSettings};
pub use upload::{
    Swept, Upload, UploadExchange, UploadSettings, sweep_stale as sweep_stale_uploads,
};

use crate::service::{BodyEvent, Exchange, Handler, Request, ResponseWriter, Start};

/// Any built-in handler.
#[derive(Debug)]
pub enum Builtin {
    /// A fixed response.
    Respond(Respond),
    /// The request reflected back.
    Echo(Echo),
    /// Files under a root.
    Static(StaticFiles),
    /// Request bodies stored as files.
    Upload(Upload),
    /// A redirect.
    Redirect(Redirect),
    /// A reverse proxy to an upstream group.
    Proxy(proxy::Proxy),
}

/// The exchange of any built-in handler that needs one.
#[derive(Debug)]
pub enum BuiltinExchange {
    /// The exchange of a handler whose exchange type is `()`.
    Nothing,
    /// An echo in progress.
    Echo(EchoExchange),
    /// An upload in progress (boxed: it is large, and every connection holds this enum
    /// inline while only uploads need the room).
    Upload(Box<UploadExchange>),
    /// A proxied request in progress (boxed, as uploads are).
    Proxy(Box<proxy::ProxyExchange>),
}

impl Builtin {
    /// The upstream group a proxy route forwards to.
    pub fn upstream(&self) -> Option<&std::sync::Arc<proxy::Upstream>> {
        match self {
            Builtin::Proxy(proxy) => Some(proxy.upstream()),
            _ => None,
        }
    }
}

impl Handler for Builtin {
    type Exchange = BuiltinExchange;

    fn methods(&self) -> Option<&'static [&'static str]> {
        match self {
            Builtin::Static(files) => files.methods(),
            Builtin::Upload(upload) => upload.methods(),
            Builtin::Respond(_) | Builtin::Echo(_) | Builtin::Redirect(_) | Builtin::Proxy(_) => {
                None
            }
        }
    }

    fn start(
        &self,
        request: &Request<'_>,
        response: &mut ResponseWriter<'_>,
    ) -> Start<Self::Exchange> {
        match self {
            Builtin::Respond(respond) => respond
                .start(request, response)
                .map(|()| BuiltinExchange::Nothing),
            Builtin::Echo(echo) => echo.start(request, response).map(BuiltinExchange::Echo),
            Builtin::Static(files) => files
                .start(request, response)
                .map(|()| BuiltinExchange::Nothing),
            Builtin::Upload(upload) => upload
                .start(request, response)
                .map(|exchange| BuiltinExchange::Upload(Box::new(exchange))),
            Builtin::Redirect(redirect) => redirect
                .start(request, response)
                .map(|()| BuiltinExchange::Nothing),
            Builtin::Proxy(proxy) => proxy
                .start(request, response)
                .map(|exchange| BuiltinExchange::Proxy(Box::new(exchange))),
        }
    }
}

impl Exchange for BuiltinExchange {
    fn on_body(&mut self, event: BodyEvent<'_>, response: &mut ResponseWriter<'_>) {
        match self {
            BuiltinExchange::Nothing => {}
            BuiltinExchange::Echo(echo) => echo.on_body(event, response),
            BuiltinExchange::Upload(upload) => upload.on_body(event, response),
            BuiltinExchange::Proxy(proxy) => proxy.on_body(event, response),
        }
    }

    fn on_writable(&mut self, response: &mut ResponseWriter<'_>) {
        match self {
            BuiltinExchange::Nothing => {}
            BuiltinExchange::Echo(echo) => echo.on_writable(response),
            BuiltinExchange::Upload(upload) => upload.on_writable(response),
            BuiltinExchange::Proxy(proxy) => proxy.on_writable(response),
        }
    }
}
