//! The client side of the warm Python runtime (`python3 -m leoflow_shim serve`, whose
//! module documents the wire protocol): instead of starting a fresh interpreter, the agent
//! hands the fork server the attempt's work dir, environment and three descriptors
//! (stdin, stdout, stderr) over a Unix socket; the server forks a child that is its own
//! session and process group, answers its pid, and later its exit status. The attempt is
//! still its own process; only the interpreter start and the imports are saved.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IoSlice};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use serde_json::{json, Value};

use crate::process::Spec;

/// How long the server may take to fork and answer with the child's pid.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// An attempt the fork server started.
pub struct Forked {
    /// The child's pid, which is also its process group and session id.
    pub pid: u32,
    pub stdout: File,
    pub stderr: File,
    pub exit: ExitReply,
}

/// The connection on which the server reports the child's exit status.
pub struct ExitReply(BufReader<UnixStream>);

impl ExitReply {
    /// Blocks until the server reports how the child ended. A server that goes away
    /// first is an error (the caller ends the child's group either way).
    pub fn wait(mut self) -> io::Result<ExitStatus> {
        self.0.get_ref().set_read_timeout(None)?;
        let reply = read_reply(&mut self.0)?;
        match reply.get("exit").and_then(Value::as_i64) {
            Some(code) => Ok(exit_status(code)),
            None => Err(io::Error::other(format!(
                "the warm runtime answered {reply} instead of an exit status"
            ))),
        }
    }
}

/// Asks the fork server listening on `socket` to run `spec` (the same interpreter
/// arguments a cold start would use: the server runs `leoflow_shim run <workdir>`).
/// `Err` says why the warm path is unavailable; nothing was started then.
pub fn start(socket: &Path, spec: &Spec, workdir: &Path) -> Result<Forked, String> {
    let stream = UnixStream::connect(socket)
        .map_err(|e| format!("cannot reach the warm runtime at {}: {e}", socket.display()))?;
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let stdin = File::open("/dev/null").map_err(|e| format!("cannot open /dev/null: {e}"))?;

    let env: BTreeMap<&str, &str> = spec
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut request = json!({
        "workdir": workdir.display().to_string(),
        "env": env,
        "cwd": spec.cwd.display().to_string(),
    });
    if let Some(dag_file) = spec.warm.as_ref().and_then(|w| w.dag_file.as_ref()) {
        request["dag_file"] = Value::String(dag_file.clone());
    }
    let mut line = request.to_string().into_bytes();
    line.push(b'\n');
    let fds = [stdin.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];
    let rights = [ControlMessage::ScmRights(&fds)];
    let sent = sendmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &[IoSlice::new(&line)],
        &rights,
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("cannot send the request to the warm runtime: {e}"))?;
    if sent < line.len() {
        io::Write::write_all(&mut &stream, &line[sent..])
            .map_err(|e| format!("cannot send the request to the warm runtime: {e}"))?;
    }
    // The child holds its own copies now: ours must close, or the pipes never see EOF.
    drop((stdin, out_w, err_w));

    let mut reply = BufReader::new(stream);
    let answer = read_reply(&mut reply).map_err(|e| format!("the warm runtime: {e}"))?;
    let Some(pid) = answer
        .get("pid")
        .and_then(Value::as_u64)
        .and_then(|p| u32::try_from(p).ok())
    else {
        let why = answer
            .get("error")
            .and_then(Value::as_str)
            .map_or_else(|| answer.to_string(), str::to_string);
        return Err(format!("the warm runtime refused the attempt: {why}"));
    };
    Ok(Forked {
        pid,
        stdout: File::from(out_r),
        stderr: File::from(err_r),
        exit: ExitReply(reply),
    })
}

fn pipe() -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd), String> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("cannot create a pipe: {e}"))
}

fn read_reply(reader: &mut BufReader<UnixStream>) -> io::Result<Value> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed without an answer",
        ));
    }
    serde_json::from_str(&line)
        .map_err(|e| io::Error::other(format!("unreadable answer {line:?}: {e}")))
}

/// The server reports `os.waitstatus_to_exitcode`: the exit code, or −signal.
fn exit_status(code: i64) -> ExitStatus {
    let code = i32::try_from(code).unwrap_or(255);
    if code < 0 {
        ExitStatus::from_raw(-code & 0x7f)
    } else {
        ExitStatus::from_raw((code & 0xff) << 8)
    }
}

#[cfg(test)]
mod tests {
    use super::exit_status;

    #[test]
    fn exit_codes_and_signals_become_wait_statuses() {
        assert_eq!(exit_status(0).code(), Some(0));
        assert_eq!(exit_status(3).code(), Some(3));
        let killed = exit_status(-9);
        assert_eq!(killed.code(), None);
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&killed),
            Some(9)
        );
    }
}
