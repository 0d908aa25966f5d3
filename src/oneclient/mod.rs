//! The XML-RPC client of oned's API that stratusd's own commands use (`stratusd site-setup`,
//! the admin command line, `stratusd accounting`): the `dxr` crate encodes the calls and
//! decodes the answers, `dxr_client` sends them over HTTP.
//!
//! oned answers every `one.*` call with an array `[ok, value, code]`: `ok` a boolean, `value`
//! the document (a string) or an id (`<i4>`), `code` an `<i4>` (0 on success, oned's error
//! code otherwise). dxr takes both `<i4>` and `<int>`, strings with and without `<string>`
//! (`<value>text</value>`, `<value></value>`), and faults (`faultCode`/`faultString`).
//!
//! Where the calls go and as whom follows OpenNebula's command line: `ONE_XMLRPC` (default
//! `http://localhost:2633/RPC2`) and the first line of the file named by `ONE_AUTH` (default
//! `~/.one/one_auth`), `user:password`. The session is also sent as HTTP Basic credentials,
//! as the StratusLab clients did (a one-proxy in front of the daemon requires them). oned never
//! spoke TLS, and neither does this client: `https://` endpoints are refused with a clear error.

use dxr::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Default endpoint of OpenNebula's command line.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:2633/RPC2";
/// Connecting must not take longer than this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// An answer must come within this (a 10,000-VM listing page takes milliseconds).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// A parameter of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Str(String),
    Int(i32),
    Bool(bool),
}

impl Param {
    fn to_value(&self) -> Value {
        match self {
            Param::Str(s) => Value::String(s.clone()),
            Param::Int(i) => Value::Integer(*i),
            Param::Bool(b) => Value::Boolean(*b),
        }
    }
}

/// The value of a successful oned answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Scalar {
    /// The document of an answer that carries one.
    pub fn into_text(self) -> String {
        match self {
            Scalar::Str(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::Bool(b) => u8::from(b).to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("endpoint {0:?} is not an http://HOST[:PORT]/PATH URL")]
    BadEndpoint(String),
    #[error("endpoint {0}: oned's API is plain HTTP (put a TLS proxy's plain side here)")]
    TlsEndpoint(String),
    #[error("cannot reach {endpoint}: {message}")]
    Transport { endpoint: String, message: String },
    #[error("malformed answer to {method}: {why}")]
    Malformed { method: String, why: String },
    #[error("{method}: fault {code}: {message}")]
    Fault {
        method: String,
        code: i32,
        message: String,
    },
    /// oned's `[false, message, code]`: the message is what oned's command line printed.
    #[error("{message}")]
    Oned {
        method: String,
        message: String,
        code: i32,
    },
    #[error("cannot read the credentials file {path}: {source}")]
    AuthFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the credentials file {0} must hold `user:password` on its first line")]
    AuthFormat(PathBuf),
    #[error("ONE_AUTH file not present (set ONE_AUTH or create ~/.one/one_auth)")]
    NoAuth,
    #[error("cannot start the client: {0}")]
    Runtime(String),
}

/// `ONE_XMLRPC`, or OpenNebula's default.
pub fn endpoint_from_env() -> String {
    std::env::var("ONE_XMLRPC")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
}

/// The credentials file as OpenNebula's command line finds it: `$ONE_AUTH` when it names a
/// file, else `~/.one/one_auth`.
pub fn auth_file_from_env() -> Result<PathBuf, RpcError> {
    if let Some(path) = std::env::var_os("ONE_AUTH").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        let path = PathBuf::from(home).join(".one/one_auth");
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(RpcError::NoAuth)
}

/// The session string of a credentials file: its first line, `user:password`.
pub fn read_session(path: &std::path::Path) -> Result<String, RpcError> {
    let text = std::fs::read_to_string(path).map_err(|source| RpcError::AuthFile {
        path: path.to_path_buf(),
        source,
    })?;
    let line = text.lines().next().unwrap_or("").trim_end();
    match line.split_once(':') {
        Some((user, pass)) if !user.is_empty() && !pass.is_empty() => Ok(line.to_string()),
        _ => Err(RpcError::AuthFormat(path.to_path_buf())),
    }
}

/// Checks an endpoint: `http://HOST[:PORT]/PATH`, no credentials in it (they come from the
/// credentials file, never from a URL that `ps` shows).
pub fn check_endpoint(endpoint: &str) -> Result<dxr_client::Url, RpcError> {
    let bad = || RpcError::BadEndpoint(endpoint.to_string());
    let url = dxr_client::Url::parse(endpoint).map_err(|_| bad())?;
    match url.scheme() {
        "http" => {}
        "https" => return Err(RpcError::TlsEndpoint(endpoint.to_string())),
        _ => return Err(bad()),
    }
    if url.host_str().is_none_or(str::is_empty)
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(bad());
    }
    Ok(url)
}

/// Calls oned's methods with one session string.
pub struct OneClient {
    client: dxr_client::Client,
    runtime: tokio::runtime::Runtime,
    session: String,
}

impl std::fmt::Debug for OneClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the session: it holds a password.
        f.debug_struct("OneClient").finish_non_exhaustive()
    }
}

impl OneClient {
    /// A client of `endpoint` calling as `session` (`user:password`); `user_agent` names the
    /// command in the daemon's logs.
    pub fn new(
        endpoint: &str,
        session: String,
        user_agent: &'static str,
    ) -> Result<OneClient, RpcError> {
        let url = check_endpoint(endpoint)?;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("text/xml"),
        );
        headers.insert(
            reqwest::header::USER_AGENT,
            reqwest::header::HeaderValue::from_static(user_agent),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(ANSWER_TIMEOUT)
            .build()
            .map_err(|e| RpcError::Runtime(e.to_string()))?;
        let (user, password) = match session.split_once(':') {
            Some((u, p)) => (u.to_string(), Some(p.to_string())),
            None => (session.clone(), None),
        };
        let client = dxr_client::Client::with_client_basic_auth(url, http, Some(user), password);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RpcError::Runtime(e.to_string()))?;
        Ok(OneClient {
            client,
            runtime,
            session,
        })
    }

    /// A client as OpenNebula's command line makes one: `ONE_XMLRPC` and `ONE_AUTH`.
    pub fn from_env(user_agent: &'static str) -> Result<OneClient, RpcError> {
        let session = read_session(&auth_file_from_env()?)?;
        OneClient::new(&endpoint_from_env(), session, user_agent)
    }

    /// `method(session, params...)`: the value of oned's `[true, value, 0]`, or its
    /// `[false, message, code]` as [`RpcError::Oned`].
    pub fn call(&self, method: &str, params: &[Param]) -> Result<Scalar, RpcError> {
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(Value::String(self.session.clone()));
        all.extend(params.iter().map(Param::to_value));
        let answer: Value = self
            .runtime
            .block_on(self.client.call(method, all))
            .map_err(|e| self.error(method, e))?;
        oned_result(method, &answer)
    }

    fn error(&self, method: &str, e: dxr_client::Error) -> RpcError {
        match e {
            dxr_client::Error::Fault { fault } => RpcError::Fault {
                method: method.to_string(),
                code: fault.code(),
                message: fault.string().to_string(),
            },
            dxr_client::Error::RPC { error } => RpcError::Malformed {
                method: method.to_string(),
                why: error.to_string().chars().take(300).collect(),
            },
            dxr_client::Error::Net { error } => RpcError::Transport {
                endpoint: error
                    .url()
                    .map(|u| u.to_string())
                    .unwrap_or_else(|| "the daemon".into()),
                message: transport_reason(&error),
            },
        }
    }
}

/// The innermost cause of a transport error ("Connection refused (os error 111)").
fn transport_reason(e: &reqwest::Error) -> String {
    let mut reason = e.to_string();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        reason = s.to_string();
        source = s.source();
    }
    if e.is_timeout() {
        reason = format!("timed out ({reason})");
    }
    reason
}

/// oned's `[ok, value, code]` answer: the value when ok.
pub fn oned_result(method: &str, answer: &Value) -> Result<Scalar, RpcError> {
    let malformed = |why: &str| RpcError::Malformed {
        method: method.to_string(),
        why: why.to_string(),
    };
    let Value::Array(items) = answer else {
        return Err(malformed("not oned's [ok, value, code] array"));
    };
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(Scalar::Str(s.clone())),
        Value::Integer(i) => Some(Scalar::Int(i64::from(*i))),
        Value::Boolean(b) => Some(Scalar::Bool(*b)),
        _ => None,
    };
    match items.as_slice() {
        [Value::Boolean(true), value, ..] => {
            scalar(value).ok_or_else(|| malformed("the value is not a string, int or boolean"))
        }
        [Value::Boolean(false), Value::String(message), rest @ ..] => Err(RpcError::Oned {
            method: method.to_string(),
            message: message.clone(),
            code: match rest.first() {
                Some(Value::Integer(c)) => *c,
                _ => 0,
            },
        }),
        _ => Err(malformed("not oned's [ok, value, code] array")),
    }
}

#[cfg(test)]
mod tests;
