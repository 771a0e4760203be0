//! What `rampart-connect` asks at the terminal: the username, the password (hidden, or from
//! standard input or `RAMPART_PASSWORD` for scripts) and the code. Without a terminal nothing is
//! asked: the error names the option to pass instead.

use crate::ClientError;
use rampart_core::secret::Sensitive;
use std::io::{BufRead, IsTerminal, Write};

/// The password: one line of standard input with `from_stdin`, else `RAMPART_PASSWORD`, else a
/// hidden prompt at the terminal.
pub fn read_password(from_stdin: bool) -> Result<Sensitive<String>, ClientError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| ClientError::Local(format!("cannot read the password from standard input: {e}")))?;
        let trimmed = line.trim_end_matches(['\n', '\r']).to_owned();
        zeroize::Zeroize::zeroize(&mut line);
        return Ok(Sensitive::new(trimmed));
    }
    if let Ok(password) = std::env::var("RAMPART_PASSWORD") {
        return Ok(Sensitive::new(password));
    }
    if !std::io::stdin().is_terminal() {
        return Err(ClientError::Local(
            "no password: use --password-stdin or RAMPART_PASSWORD, or run in a terminal".into(),
        ));
    }
    rpassword::prompt_password("Password: ")
        .map(Sensitive::new)
        .map_err(|e| ClientError::Local(format!("cannot read the password: {e}")))
}

/// Asks for the current code at the terminal.
pub fn ask_code() -> Result<String, ClientError> {
    prompt("Code from your authenticator app: ")
}

/// Asks `question` on standard error and reads one line of the terminal, trimmed.
pub fn prompt(question: &str) -> Result<String, ClientError> {
    if !std::io::stdin().is_terminal() {
        return Err(ClientError::Local(format!(
            "cannot ask {question:?} without a terminal: pass it as an option"
        )));
    }
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| ClientError::Local(e.to_string()))?;
    Ok(line.trim().to_owned())
}
