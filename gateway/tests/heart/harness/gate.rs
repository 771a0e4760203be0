//! A gate in front of the directory, to hold a login in its password check while the test
//! does something else (fills the login slots).

use super::PATIENCE;
use rampart_core::secret::Sensitive;
use rampart_directory::{Directory, DirectoryError, DirectoryUser};
use std::sync::Arc;
use tokio::sync::{Notify, Semaphore};

/// A gate in front of a directory: each password check says it has arrived, then waits
/// until the test opens the gate.
#[derive(Debug)]
pub struct Gate {
    arrived: Notify,
    open: Semaphore,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            arrived: Notify::new(),
            open: Semaphore::new(0),
        }
    }
}

impl Gate {
    /// Waits until a password check has arrived at the gate.
    pub async fn arrived(&self) {
        tokio::time::timeout(PATIENCE, self.arrived.notified())
            .await
            .expect("a password check arrived");
    }

    /// Lets every waiting and later password check through.
    pub fn open(&self) {
        self.open.add_permits(Semaphore::MAX_PERMITS / 2);
    }

    /// `directory` behind this gate.
    pub fn guard(self: &Arc<Self>, directory: Arc<dyn Directory>) -> Arc<dyn Directory> {
        Arc::new(GatedDirectory {
            inner: directory,
            gate: self.clone(),
        })
    }
}

#[derive(Debug)]
struct GatedDirectory {
    inner: Arc<dyn Directory>,
    gate: Arc<Gate>,
}

#[async_trait::async_trait]
impl Directory for GatedDirectory {
    async fn authenticate(
        &self,
        username: &str,
        password: &Sensitive<String>,
    ) -> Result<DirectoryUser, DirectoryError> {
        self.gate.arrived.notify_one();
        let _pass = self.gate.open.acquire().await;
        self.inner.authenticate(username, password).await
    }

    async fn lookup(&self, username: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        self.inner.lookup(username).await
    }

    async fn group_members(&self, group: &str) -> Result<Vec<DirectoryUser>, DirectoryError> {
        self.inner.group_members(group).await
    }
}
