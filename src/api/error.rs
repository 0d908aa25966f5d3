//! The one place where typed errors become oned's answers: `[false, "[<Class>] msg", code]`
//! for application errors, or an XML-RPC fault for parameter-level errors.

use crate::core::Error;
use crate::xmlrpc::Fault;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("fault {}: {}", .0.code, .0.message)]
    Fault(Fault),
    #[error(transparent)]
    Core(#[from] Error),
}

impl From<Fault> for ApiError {
    fn from(f: Fault) -> Self {
        ApiError::Fault(f)
    }
}

/// `[<class>] <message>` and the code, as 3.2's `Request::failure_response` builds them.
pub fn oned_message(class: &str, err: &Error) -> (String, i32) {
    if let Error::Internal(detail) = err {
        tracing::error!(%class, %detail, "internal error");
    }
    let msg = if err.has_prefix() {
        format!("[{class}] {}", err.message())
    } else {
        err.message()
    };
    (msg, err.code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    #[test]
    fn messages_as_oned() {
        assert_eq!(
            oned_message("UserInfo", &Error::Authentication),
            (
                "[UserInfo] User couldn't be authenticated, aborting call.".to_string(),
                256
            )
        );
        assert_eq!(
            oned_message(
                "VirtualMachineInfo",
                &Error::Authorization {
                    uid: 2,
                    reasons: vec![crate::core::messages::Denial::NotAuthorizedOn {
                        op: "USE",
                        kind: "VM",
                        id: 0
                    }]
                }
            ),
            (
                "[VirtualMachineInfo] User [2] : Not authorized to perform USE VM [0].".to_string(),
                512
            )
        );
        assert_eq!(
            oned_message(
                "VirtualMachineInfo",
                &Error::NoExists {
                    kind: Kind::Vm,
                    id: 9999
                }
            ),
            (
                "[VirtualMachineInfo] Error getting virtual machine [9999].".to_string(),
                1024
            )
        );
        assert_eq!(
            oned_message(
                "HostAllocate",
                &Error::alloc(
                    Kind::Host,
                    crate::core::messages::AllocDetail::NameTaken {
                        kind: "HOST",
                        id: 0
                    }
                )
            ),
            (
                "[HostAllocate] Error allocating a new host. NAME is already taken by HOST 0."
                    .to_string(),
                8192
            )
        );
        assert_eq!(
            oned_message("TemplateAllocate", &Error::AllocateParse { kind: Kind::Template, message: "syntax error".into() }),
            ("[TemplateAllocate] Error allocating a new virtual machine template. Parse error: syntax error".to_string(), 8192)
        );
    }
}
