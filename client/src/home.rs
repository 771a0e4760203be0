//! The client's home folder: the saved session (gateway, organisation CA, ticket and the key
//! the session is bound to), written with mode 0600 because together they resume the session,
//! and the lock that lets one process at a time spend the ticket and write its successor.

use crate::{ClientError, ClientKey, ResumeCredential};
use rampart_core::profile::Profile;
use rampart_core::protocol::ResourceInfo;
use rampart_core::secret::Sensitive;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

const SESSION_FILE: &str = "session.json";
const PROFILE_FILE: &str = "profile.json";
/// Held (an advisory lock on the open file) while a process resumes the saved session.
const LOCK_FILE: &str = "session.lock";
/// Present once a login from this home has succeeded.
const LOGGED_IN_BEFORE_FILE: &str = "logged-in-before";

/// The folder holding the client's state.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

/// A logged-in session as saved on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedSession {
    /// Gateway address, `HOST:PORT`, that granted the session.
    pub gateway: String,
    /// Every gateway to fail over to (the profile's, and one named on the command line); tried
    /// after `gateway` in the person's order ([`crate::spread`]). May be empty.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// The organisation CA certificate(s), PEM.
    pub ca_pem: String,
    /// Normalised username.
    pub user: String,
    /// Public session id.
    pub session_id: String,
    /// The session's latest ticket: replaced at every resume, and useless without `key`.
    pub ticket: Sensitive<String>,
    /// The key the session is bound to (every resume is signed with it). Sessions saved by a
    /// client before keys have none and cannot be resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<ClientKey>,
    /// End of the session, unix seconds.
    pub expires_at: i64,
    /// Resources the person may open.
    pub resources: Vec<ResourceInfo>,
}

impl SavedSession {
    /// The gateways to resume on: the one holding the session, then the others in the person's
    /// order ([`crate::spread`]).
    pub fn gateways_in_order(&self) -> Vec<String> {
        crate::spread::starting_with(Some(&self.gateway), &self.user, &self.gateways)
    }

    /// What resumes this session.
    pub fn credential(&self) -> Result<ResumeCredential, ClientError> {
        let key = self.key.clone().ok_or_else(|| {
            ClientError::Local(
                "the saved session comes from an older rampart-connect and cannot be resumed; log in again".into(),
            )
        })?;
        Ok(ResumeCredential {
            session_id: self.session_id.clone(),
            ticket: self.ticket.clone(),
            key,
        })
    }
}

/// While held, no other process resumes the saved session or rewrites its file.
#[derive(Debug)]
pub struct SessionLock {
    _file: std::fs::File,
}

impl Home {
    /// `dir` if given, else `$RAMPART_CONNECT_HOME` (handled by the CLI), else the user's
    /// config directory + `rampart-connect` (on Windows the local, not the roaming, application
    /// data: the session ticket must not travel to a profile server and other machines).
    pub fn resolve(dir: Option<PathBuf>) -> Result<Self, ClientError> {
        #[cfg(windows)]
        let default = dirs::data_local_dir();
        #[cfg(not(windows))]
        let default = dirs::config_dir();
        let dir = match dir {
            Some(d) => d,
            None => default
                .map(|d| d.join("rampart-connect"))
                .ok_or_else(|| ClientError::Local("cannot find a config directory; pass --home".into()))?,
        };
        Ok(Self { dir })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The saved session, if any.
    pub fn load_session(&self) -> Result<Option<SavedSession>, ClientError> {
        let path = self.dir.join(SESSION_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ClientError::Local(format!("cannot read {}: {e}", path.display()))),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ClientError::Local(format!("{} is damaged ({e}); log in again", path.display())))
    }

    /// Saves the session (mode 0600), replacing any previous one atomically.
    pub fn save_session(&self, session: &SavedSession) -> Result<(), ClientError> {
        let json = serde_json::to_vec_pretty(session).map_err(|e| ClientError::Local(e.to_string()))?;
        write_private(&self.dir, SESSION_FILE, &json)
    }

    /// Waits for, then holds, the lock on the saved session: a process spends the saved ticket
    /// and writes its successor under it, so processes sharing this home never present a ticket
    /// another one has already replaced.
    pub async fn lock_session(&self) -> Result<SessionLock, ClientError> {
        let file = open_private(&self.dir, LOCK_FILE)?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || file.lock().map(|()| SessionLock { _file: file }))
            .await
            .map_err(|e| ClientError::Local(format!("cannot lock the saved session: {e}")))?
            .map_err(|e| ClientError::Local(format!("cannot lock the saved session in {}: {e}", dir.display())))
    }

    /// After a resume of `credential`'s session on `gateway`, saves its new ticket, the
    /// gateway and the resources the gateway listed. Call with [`lock_session`](Self::lock_session)
    /// held. Does nothing if the saved session is another one by now (a new login); returns
    /// whether it wrote.
    pub fn record_resume(
        &self,
        credential: &ResumeCredential,
        gateway: &str,
        resources: &[ResourceInfo],
    ) -> Result<bool, ClientError> {
        match self.load_session()? {
            Some(mut saved) if saved.session_id == credential.session_id => {
                if saved.gateway != gateway {
                    if !saved.gateways.iter().any(|g| g == &saved.gateway) {
                        saved.gateways.push(saved.gateway.clone());
                    }
                    saved.gateway = gateway.to_owned();
                }
                saved.ticket = credential.ticket.clone();
                saved.resources = resources.to_vec();
                self.save_session(&saved)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Where `setup` saves the profile.
    pub fn profile_path(&self) -> PathBuf {
        self.dir.join(PROFILE_FILE)
    }

    /// The profile imported by `setup`, if any.
    pub fn load_profile(&self) -> Result<Option<Profile>, ClientError> {
        let path = self.profile_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => Profile::parse(&text)
                .map(Some)
                .map_err(|e| ClientError::Local(format!("{}: {e}; run `rampart-connect setup` again", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClientError::Local(format!("cannot read {}: {e}", path.display()))),
        }
    }

    /// Saves the profile (replacing any earlier one).
    pub fn save_profile(&self, profile: &Profile) -> Result<(), ClientError> {
        let json = serde_json::to_vec(profile).map_err(|e| ClientError::Local(e.to_string()))?;
        write_private(&self.dir, PROFILE_FILE, &json)
    }

    /// Whether a login from this home has ever succeeded.
    pub fn logged_in_before(&self) -> bool {
        self.dir.join(LOGGED_IN_BEFORE_FILE).exists()
    }

    /// Remembers that a login succeeded.
    pub fn mark_logged_in(&self) -> Result<(), ClientError> {
        write_private(&self.dir, LOGGED_IN_BEFORE_FILE, b"")
    }

    /// Forgets the saved session.
    pub fn clear_session(&self) -> Result<(), ClientError> {
        match std::fs::remove_file(self.dir.join(SESSION_FILE)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ClientError::Local(format!("cannot remove the saved session: {e}"))),
        }
    }
}

/// Opens (creating it, 0600, in a 0700 folder) a file that is only ever locked, never written.
fn open_private(dir: &Path, name: &str) -> Result<std::fs::File, ClientError> {
    let local = |what: &str, e: std::io::Error| ClientError::Local(format!("cannot {what} in {}: {e}", dir.display()));
    create_private_dir(dir).map_err(|e| local("create the folder", e))?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(dir.join(name)).map_err(|e| local("open the lock file", e))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn write_private(dir: &Path, name: &str, content: &[u8]) -> Result<(), ClientError> {
    let local = |what: &str, e: std::io::Error| ClientError::Local(format!("cannot {what} in {}: {e}", dir.display()));
    create_private_dir(dir).map_err(|e| local("create the folder", e))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(|e| local("write", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| local("protect", e))?;
    }
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(|e| local("write", e))?;
    std::fs::rename(&tmp, dir.join(name)).map_err(|e| local("save", e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn session_round_trip_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::resolve(Some(dir.path().join("h"))).unwrap();
        assert!(home.load_session().unwrap().is_none());
        let session = SavedSession {
            gateway: "127.0.0.1:4433".into(),
            gateways: vec![],
            ca_pem: "pem".into(),
            user: "alice".into(),
            session_id: "s".into(),
            ticket: Sensitive::new("t".into()),
            key: None,
            expires_at: 5,
            resources: vec![],
        };
        home.save_session(&session).unwrap();
        let back = home.load_session().unwrap().unwrap();
        assert_eq!(back.ticket.expose(), "t");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(home.dir().join(SESSION_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        home.clear_session().unwrap();
        assert!(home.load_session().unwrap().is_none());
    }

    #[test]
    fn a_resume_is_recorded_only_for_the_same_session() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::resolve(Some(dir.path().join("h"))).unwrap();
        let key = ClientKey::generate().unwrap();
        let session = SavedSession {
            gateway: "a:4433".into(),
            gateways: vec!["a:4433".into(), "b:4433".into()],
            ca_pem: "pem".into(),
            user: "alice".into(),
            session_id: "s1".into(),
            ticket: Sensitive::new("t1".into()),
            key: Some(key.clone()),
            expires_at: 5,
            resources: vec![],
        };
        home.save_session(&session).unwrap();
        let mut credential = home.load_session().unwrap().unwrap().credential().unwrap();
        assert_eq!(credential.key, key, "the key is saved with the session");
        credential.ticket = Sensitive::new("t2".into());
        let other = ResumeCredential {
            session_id: "s0".into(),
            ..credential.clone()
        };
        assert!(!home.record_resume(&other, "b:4433", &[]).unwrap(), "another session");
        assert!(home.record_resume(&credential, "b:4433", &[]).unwrap());
        let back = home.load_session().unwrap().unwrap();
        assert_eq!(back.gateway, "b:4433");
        assert_eq!(back.gateways, session.gateways);
        assert_eq!(back.ticket.expose(), "t2", "the new ticket replaced the spent one");
    }

    #[test]
    fn a_session_saved_without_a_key_asks_for_a_new_login() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(SESSION_FILE),
            r#"{"gateway":"a:1","ca_pem":"","user":"u","session_id":"s","ticket":"t","expires_at":1,"resources":[]}"#,
        )
        .unwrap();
        let saved = Home::resolve(Some(dir.path().into()))
            .unwrap()
            .load_session()
            .unwrap()
            .unwrap();
        let err = saved.credential().unwrap_err();
        assert!(err.to_string().contains("log in again"), "{err}");
    }

    #[test]
    fn damaged_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SESSION_FILE), "{").unwrap();
        let err = Home::resolve(Some(dir.path().into()))
            .unwrap()
            .load_session()
            .unwrap_err();
        assert!(err.to_string().contains("log in again"));
    }
}
