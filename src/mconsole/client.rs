//! A client for one instance's socket: send a command, gather the chunks
//! of its answer. What `umlctl` and the tests use.

use std::path::Path;
use std::time::Duration;

use thiserror::Error;

use super::protocol::{encode_request, parse_reply, MAX_DATA};
use crate::host::mcsock::DgramClient;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("command longer than {} bytes", MAX_DATA - 1)]
    TooLong,
    #[error("{path}: {source}")]
    Send {
        path: String,
        source: std::io::Error,
    },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("receiving the answer: {0}")]
    Recv(std::io::Error),
    #[error("malformed answer: {0}")]
    Malformed(#[from] super::protocol::ReplyError),
}

/// The whole answer to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub err: bool,
    pub text: String,
}

/// Sends `command` to the socket at `path` and gathers its answer.
pub fn request(path: &Path, command: &str, timeout: Duration) -> Result<Answer, ClientError> {
    let d = encode_request(command).ok_or(ClientError::TooLong)?;
    let c = DgramClient::new().map_err(ClientError::Recv)?;
    c.send_to(path, &d).map_err(|source| ClientError::Send {
        path: path.display().to_string(),
        source,
    })?;
    let mut text = Vec::new();
    let mut err = false;
    let mut first = true;
    loop {
        let d = c.recv(timeout).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                ClientError::Timeout(timeout)
            }
            _ => ClientError::Recv(e),
        })?;
        let r = parse_reply(&d)?;
        if first {
            err = r.err;
            first = false;
        }
        text.extend_from_slice(&r.data);
        if !r.more {
            break;
        }
    }
    Ok(Answer {
        err,
        text: String::from_utf8_lossy(&text).into_owned(),
    })
}
