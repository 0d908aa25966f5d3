//! Method table and dispatch of one XML-RPC call.

use super::error::oned_message;
use super::{acl, group, host, image, template, user, vm, vnet};
use super::{ApiError, HandlerResult, Params, Payload, Step};
use crate::core::auth::Caller;
use crate::core::Core;
use crate::core::ReadOnlySection;
use crate::xmlrpc::{self, Fault, MethodCall, OnedMethod, Value};
use std::sync::Arc;

pub type Handler = fn(&Arc<Core>, &Caller, &Params) -> HandlerResult;

/// What the front end encodes.
#[derive(Debug)]
pub enum Reply {
    /// `[true, value, 0]`
    Ok(Payload),
    /// `[false, message, code]`
    Err(String, i32),
    /// An XML-RPC fault (parameter types and counts, unknown methods).
    Fault(Fault),
    /// A `system.*` answer, any value.
    Value(Value),
}

/// The handler of each method, oned's and stratusd's own. The registry (`xmlrpc::methods`)
/// names the methods;
/// this `match` is exhaustive, so a method registered without a handler does not compile.
pub fn handler(method: OnedMethod) -> Handler {
    use OnedMethod as M;
    match method {
        M::VmAllocate => vm::allocate,
        M::VmDeploy => vm::deploy,
        M::VmAction => vm::action,
        M::VmMigrate => vm::migrate,
        M::VmSavedisk => vm::savedisk,
        M::VmInfo => vm::info,
        M::VmChown => vm::chown,
        M::VmChmod => vm::chmod,
        M::VmpoolInfo => vm::pool_info,
        M::TemplateAllocate => template::allocate,
        M::TemplateUpdate => template::update,
        M::TemplateInstantiate => template::instantiate,
        M::TemplateDelete => template::delete,
        M::TemplateInfo => template::info,
        M::TemplateChown => template::chown,
        M::TemplateChmod => template::chmod,
        M::TemplatepoolInfo => template::pool_info,
        M::HostAllocate => host::allocate,
        M::HostDelete => host::delete,
        M::HostInfo => host::info,
        M::HostUpdate => host::update,
        M::HostEnable => host::enable,
        M::HostpoolInfo => host::pool_info,
        M::GroupAllocate => group::allocate,
        M::GroupDelete => group::delete,
        M::GroupInfo => group::info,
        M::GrouppoolInfo => group::pool_info,
        M::VnAllocate => vnet::allocate,
        M::VnAddleases => vnet::addleases,
        M::VnRmleases => vnet::rmleases,
        M::VnHold => vnet::hold,
        M::VnRelease => vnet::release,
        M::VnUpdate => vnet::update,
        M::VnDelete => vnet::delete,
        M::VnInfo => vnet::info,
        M::VnChown => vnet::chown,
        M::VnChmod => vnet::chmod,
        M::VnpoolInfo => vnet::pool_info,
        M::UserAllocate => user::allocate,
        M::UserUpdate => user::update,
        M::UserDelete => user::delete,
        M::UserInfo => user::info,
        M::UserPasswd => user::passwd,
        M::UserChgrp => user::chgrp,
        M::UserChauth => user::chauth,
        M::UserpoolInfo => user::pool_info,
        M::ImageAllocate => image::allocate,
        M::ImagePersistent => image::persistent,
        M::ImageEnable => image::enable,
        M::ImageUpdate => image::update,
        M::ImageDelete => image::delete,
        M::ImageInfo => image::info,
        M::ImageChown => image::chown,
        M::ImageChmod => image::chmod,
        M::ImageChtype => image::chtype,
        M::ImagepoolInfo => image::pool_info,
        M::AclAddrule => acl::addrule,
        M::AclDelrule => acl::delrule,
        M::AclInfo => acl::info,
        // stratusd's own (docs/compatibility.md)
        M::VmpoolDisks => vm::pool_disks,
    }
}

/// stratusd's own methods (docs/api-coverage.md): name, message class, handler. They are not
/// in 3.2's registry, so `system.listMethods` answers as 3.2's did.
/// `name` as a label of the request metrics: a method of the registry
/// ([`crate::xmlrpc::METHODS`] or [`crate::xmlrpc::STRATUSD_METHODS`]), or `unknown`, so that
/// whatever names clients send, the set of labels stays the set of methods.
pub fn method_label(name: &str) -> &'static str {
    xmlrpc::lookup_any(name).map_or("unknown", |m| m.name)
}

/// The error or fault code of a reply that did not succeed.
pub fn failure_code(reply: &Reply) -> Option<i32> {
    match reply {
        Reply::Err(_, code) => Some(*code),
        Reply::Fault(f) => Some(f.code),
        Reply::Ok(_) | Reply::Value(_) => None,
    }
}

/// Runs one oned method: session type check, authentication, then the handler. A write
/// (a handler's command, or the registration of an unknown user by StratusLab's default
/// driver) is sent to the core's owner and awaited, so nothing here blocks on the store and
/// nothing has to guess which methods write. The synchronous parts run in a
/// [`ReadOnlySection`]: a blocking write slipped into one is refused, not run.
pub async fn call_oned(core: &Arc<Core>, call: &MethodCall) -> Option<Reply> {
    let method = xmlrpc::lookup_any(&call.method)?.oned()?;
    let (class, handler) = (method.class(), handler(method));
    let refusal = |e: &crate::core::Error| {
        let (m, c) = oned_message(class, e);
        Reply::Err(m, c)
    };
    let params = Params::new(&call.params);
    let session = match params.string(0) {
        Ok(s) => s,
        Err(ApiError::Fault(f)) => return Some(Reply::Fault(f)),
        Err(ApiError::Core(e)) => return Some(refusal(&e)),
    };
    let caller = match core.authenticate_async(session).await {
        Ok(c) => c,
        Err(e) => return Some(refusal(&e)),
    };
    let step = {
        let _read_only = ReadOnlySection::enter();
        handler(core, &caller, &params)
    };
    let payload = match step {
        Ok(Step::Answer(payload)) => Ok(payload),
        Ok(Step::Write { command, then }) => match core.submit(*command).await {
            Ok(answer) => {
                let _read_only = ReadOnlySection::enter();
                then(core, answer)
            }
            Err(e) => Err(ApiError::Core(e)),
        },
        Err(e) => Err(e),
    };
    Some(match payload {
        Ok(payload) => Reply::Ok(payload),
        Err(ApiError::Fault(f)) => Reply::Fault(f),
        Err(ApiError::Core(e)) => refusal(&e),
    })
}

fn reply_to_value(reply: Reply) -> Result<Value, Fault> {
    match reply {
        Reply::Ok(Payload::Int(i)) => Ok(Value::Array(vec![
            Value::Bool(true),
            Value::Int(i),
            Value::Int(0),
        ])),
        Reply::Ok(Payload::Doc(s)) => Ok(Value::Array(vec![
            Value::Bool(true),
            Value::String(s),
            Value::Int(0),
        ])),
        Reply::Ok(Payload::Escaped(doc)) => Ok(Value::Array(vec![
            Value::Bool(true),
            Value::String(doc.to_text()),
            Value::Int(0),
        ])),
        Reply::Err(m, c) => Ok(Value::Array(vec![
            Value::Bool(false),
            Value::String(m),
            Value::Int(c),
        ])),
        Reply::Fault(f) => Err(f),
        Reply::Value(v) => Ok(v),
    }
}

/// Dispatches any call, `system.*` included.
pub async fn dispatch(core: &Arc<Core>, call: &MethodCall) -> Reply {
    dispatch_with(core, call, None).await
}

/// Dispatches `call` as the identity of `session`, whatever session string the client sent:
/// parameter 0 is replaced by `session` (inserted when the call has no parameters), in every
/// call of a `system.multicall` too, exactly as one-proxy rebuilt the parameter list before
/// forwarding. The authenticating front door uses this; the core then authenticates `session`
/// as it would any other.
pub async fn dispatch_as(core: &Arc<Core>, call: &MethodCall, session: &str) -> Reply {
    dispatch_with(core, call, Some(session)).await
}

/// `params` with parameter 0 replaced by `session`.
fn with_session(params: &[Value], session: &str) -> Vec<Value> {
    std::iter::once(Value::String(session.to_string()))
        .chain(params.iter().skip(1).cloned())
        .collect()
}

async fn dispatch_with(core: &Arc<Core>, call: &MethodCall, session: Option<&str>) -> Reply {
    if call.method == "system.multicall" {
        // The inner calls carry their own session strings: an authenticated front-door caller
        // must not reach another identity through them.
        let descriptions = match xmlrpc::system::multicall_descriptions(&call.params) {
            Ok(d) => d,
            Err(f) => return Reply::Fault(f),
        };
        let mut results = Vec::with_capacity(descriptions.len());
        for description in descriptions {
            let inner = match xmlrpc::system::multicall_inner(description) {
                Ok(c) => c,
                Err(f) => return Reply::Fault(f),
            };
            let reply = dispatch_one(core, &inner, session).await;
            results.push(xmlrpc::system::multicall_entry(reply_to_value(reply)));
        }
        return Reply::Value(Value::Array(results));
    }
    dispatch_one(core, call, session).await
}

/// Any call but `system.multicall`.
async fn dispatch_one(core: &Arc<Core>, call: &MethodCall, session: Option<&str>) -> Reply {
    if call.method.starts_with("system.") {
        return match xmlrpc::system::call_builtin(call) {
            Some(Ok(v)) => Reply::Value(v),
            Some(Err(f)) => Reply::Fault(f),
            None => Reply::Fault(Fault::method_not_defined(&call.method)),
        };
    }
    let answer = match session {
        Some(session) => {
            call_oned(
                core,
                &MethodCall {
                    method: call.method.clone(),
                    params: with_session(&call.params, session),
                },
            )
            .await
        }
        None => call_oned(core, call).await,
    };
    match answer {
        Some(reply) => reply,
        None => Reply::Fault(Fault::method_not_defined(&call.method)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthMode, Settings};

    /// Metrics label a call by its registered name, whatever else clients send.
    #[test]
    fn methods_are_labelled_by_their_registered_name() {
        for m in xmlrpc::METHODS {
            assert_eq!(method_label(m.name), m.name);
        }
        assert_eq!(method_label("one.vm.delete"), "unknown");
        // stratusd's own methods are labelled, never listed.
        for m in xmlrpc::STRATUSD_METHODS {
            assert!(xmlrpc::lookup(m.name).is_none(), "{}", m.name);
            assert_eq!(method_label(m.name), m.name);
        }
        assert_eq!(method_label("ONE.VM.INFO"), "unknown");
    }

    use crate::core::ReadOnlySection;
    use crate::store::Store;

    fn new_core(auth: AuthMode) -> Arc<Core> {
        let settings = Settings {
            auth,
            ..Settings::default()
        };
        Arc::new(Core::open(Store::open_in_memory().unwrap(), settings, "password").unwrap())
    }

    fn call(method: &str, params: Vec<Value>) -> MethodCall {
        MethodCall {
            method: method.into(),
            params,
        }
    }

    fn info(session: &str) -> MethodCall {
        call(
            "one.vmpool.info",
            vec![
                session.into(),
                Value::Int(-2),
                Value::Int(-1),
                Value::Int(-1),
                Value::Int(-1),
            ],
        )
    }

    fn multicall(calls: &[MethodCall]) -> MethodCall {
        let entries = calls
            .iter()
            .map(|c| {
                Value::Struct(vec![
                    ("methodName".into(), Value::String(c.method.clone())),
                    ("params".into(), Value::Array(c.params.clone())),
                ])
            })
            .collect();
        call("system.multicall", vec![Value::Array(entries)])
    }

    /// The first call of an unknown user registers them (StratusLab's default driver) and a
    /// multicall may hold writes: both are commands awaited on the runtime, where a blocking
    /// write would be refused ([`ReadOnlySection`]), so all of it runs on one runtime thread.
    #[tokio::test(flavor = "current_thread")]
    async fn writes_are_awaited_commands_even_in_a_multicall() {
        let core = new_core(AuthMode::Stratuslab);
        let allocate = call(
            "one.vm.allocate",
            vec!["newcomer:secret".into(), "MEMORY=64 CPU=0.1".into()],
        );
        let reply = dispatch(&core, &multicall(&[info("newcomer:secret"), allocate])).await;
        let Reply::Value(Value::Array(results)) = reply else {
            panic!("multicall answered {reply:?}");
        };
        for result in &results {
            let Value::Array(inner) = result else {
                panic!("inner result {result:?}");
            };
            let Some(Value::Array(answer)) = inner.first() else {
                panic!("inner result {inner:?}");
            };
            assert_eq!(answer.first(), Some(&Value::Bool(true)), "{answer:?}");
        }
        let state = core.read();
        let user = state.user_by_name("newcomer").expect("registered");
        assert_eq!(state.vms.values().filter(|vm| vm.uid == user.id).count(), 1);
    }

    #[test]
    fn a_blocking_write_on_the_read_only_path_is_refused_and_changes_nothing() {
        let core = new_core(AuthMode::Stratuslab);
        let before = core.store_fingerprint().unwrap();
        {
            let _read_only = ReadOnlySection::enter();
            assert!(core.authenticate("newcomer:secret").is_err());
            assert!(core
                .vm_allocate(&crate::core::auth::Caller::oneadmin(), "MEMORY=64")
                .is_err());
        }
        assert_eq!(core.store_fingerprint().unwrap(), before);
        assert!(core.read().user_by_name("newcomer").is_none());
        // Off that path the same call registers the user.
        core.authenticate("newcomer:secret").unwrap();
        assert!(core.read().user_by_name("newcomer").is_some());
    }
}
